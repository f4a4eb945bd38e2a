"""The common output every method is turned into, and the shared enrichment of loadings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

from scdeconv.genesets import resolve_gene_sets
from scdeconv.scoring import profile_enrichment

from .config import TOP


@dataclass
class Output:
    """What a method is turned into (genes in the panel's order, sets by name)."""

    name: str
    embedding: np.ndarray | None = None  # cells x d
    importance: np.ndarray | None = None  # components x genes, >= 0
    set_scores: pd.Series | None = None  # per set: higher = more likely a planted program
    activity: pd.DataFrame | None = None  # cells x sets
    top_genes: list[set[str]] = field(default_factory=list)  # per component
    seconds: float = np.nan
    peak_mb: float = np.nan
    extra: dict = field(default_factory=dict)


def lognorm(adata: AnnData) -> np.ndarray:
    """log1p of counts normalised to 10^4 per cell, dense (the peers' and the metrics' input)."""
    data = AnnData(adata.X.astype(np.float32))
    sc.pp.normalize_total(data, target_sum=1e4)
    sc.pp.log1p(data)
    x = data.X
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x)


def set_columns(genes: np.ndarray, species: str | None = None) -> dict[str, np.ndarray]:
    indices, _, _ = resolve_gene_sets("hallmark", genes, species=species, min_size=3)
    return indices


def enrichment_scores(importance: np.ndarray, bins: np.ndarray, sets: dict[str, np.ndarray]) -> pd.DataFrame:
    """components x sets: the same Stouffer enrichment of expression-binned z-scores scdeconv uses."""
    return pd.DataFrame(profile_enrichment(importance, bins, list(sets.values())), columns=list(sets))


def top_genes(importance: np.ndarray, genes: np.ndarray, n: int = TOP) -> list[set[str]]:
    """Each component's ``n`` most important genes; a NaN importance (an unlisted gene) is never one."""
    order = np.argsort(-importance, axis=1, kind="stable")[:, :n]  # NaN sorts last
    listed = np.isfinite(np.take_along_axis(importance, order, axis=1))
    return [set(genes[row[keep]]) for row, keep in zip(order, listed, strict=True)]


def reconstruction_activity(recon: np.ndarray, sets: dict[str, np.ndarray]) -> pd.DataFrame:
    """Cells x sets: the mean over each set of the reconstruction, every gene standardised over cells."""
    sd_gene = recon.std(axis=0)
    z = (recon - recon.mean(axis=0)) / np.where(sd_gene > 0, sd_gene, 1)
    return pd.DataFrame({s: z[:, cols].mean(axis=1) for s, cols in sets.items()})


def from_components(
    name: str, embedding: np.ndarray, importance: np.ndarray, ctx: dict, recon: np.ndarray | None
) -> Output:
    """Components x genes importance (higher = more the component's gene) as an Output."""
    enr = enrichment_scores(importance, ctx["bins"], ctx["sets"])
    return Output(
        name,
        embedding=embedding,
        importance=importance,
        set_scores=enr.max(axis=0),
        activity=None if recon is None else reconstruction_activity(recon, ctx["sets"]),
        top_genes=top_genes(importance, ctx["genes"]),
    )


def from_loadings(name: str, scores: np.ndarray, loadings: np.ndarray, ctx: dict, recon: np.ndarray) -> Output:
    """A linear factorisation (cells x k scores, k x genes loadings) as an Output: importance = |loadings|."""
    return from_components(name, scores, np.abs(loadings), ctx, recon)


def node_gene_matrix(adata: AnnData, *, model_key: str, rank_by: str, method: str = "grad_x_input") -> np.ndarray:
    """Nodes x genes (model gene order): the score ``sd.tl.node_genes`` ranks by, for every gene."""
    import scdeconv as sd

    genes = pd.Index(np.asarray(adata.uns[model_key]["var_names"]).astype(str))
    ranked = sd.tl.node_genes(adata, n_top=len(genes), rank_by=rank_by, method=method, model_key=model_key,
                              progress=False, copy=True).uns["scdeconv_node_genes"]  # fmt: skip
    # Genes a node does not list (score <= 0, or a dead node) stay NaN: no top gene of it.
    matrix = np.full((ranked["names"].shape[1], len(genes)), np.nan)
    for j, node in enumerate(ranked["names"].columns):
        names = ranked["names"][node].astype(str).to_numpy()
        listed = names != ""
        matrix[j, genes.get_indexer(names[listed])] = ranked["scores"][node].to_numpy()[listed]
    return matrix
