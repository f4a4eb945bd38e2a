"""``sd.tl.node_genes``: each node's module as ranked genes, like ``sc.tl.rank_genes_groups``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._choices import AttributionRanking, Method, RankBy, check_choice
from .._defaults import N_BINS
from .._docs import inject_docs
from .._keys import MODEL_KEY, NODE_GENES_KEY, node_names
from .._logging import logger
from .._model_store import load_model, stored_model
from .._module.config import StreamOptions
from .._results import claim_uns_key, scored_profile
from .._rows import DEFAULT_CHUNK_SIZE, ChunkedRows
from .._utils import check_not_backed_copy
from ..scoring import active_cells, active_expression_shift, binned_zscores, expression_bins, log_ratio, node_status
from ._saliency_pass import gene_means, model_counts, saliency_pass, stored_latent


def impact_ranking(impact_params: dict) -> str:
    """The ``rank_by`` whose gene z-scores are the ones a module_impact result summed over its sets."""
    return "active" if impact_params["node_cells"] == "active" else "mean"


def attribution_zscores(
    adata: AnnData, *, model_key: str, method: str, n_bins: int, rank_by: str, options: StreamOptions
) -> np.ndarray:
    """Nodes x genes: each gene's |attribution| to each node, z-scored within expression bins.

    ``rank_by="mean"``: mean over all cells. ``"active"``: mean over the node's active cells (top
    quarter by activation). ``"contrast"``: log ratio of the two.
    """
    from .._module.reducers import AttributionProfile

    check_choice("rank_by", rank_by, AttributionRanking)
    entry = stored_model(adata, model_key)
    n_nodes, n_genes = int(entry["params"]["n_latent"]), len(entry["var_names"])
    overall = AttributionProfile(1, n_nodes, n_genes) if rank_by != "active" else None
    active = None
    if rank_by != "mean":
        active = AttributionProfile(1, n_nodes, n_genes, node_weights=active_cells(stored_latent(adata, model_key)))
    reducers = [r for r in (overall, active) if r is not None]
    labels = np.zeros(adata.n_obs, dtype=np.int64)
    saliency_pass(adata, reducers, model_key=model_key, labels=labels, n_groups=1, method=method, options=options)
    bins = expression_bins(gene_means(adata, model_key, options), n_bins)
    if rank_by == "mean":
        return binned_zscores(overall.pooled(), bins)
    if rank_by == "active":
        return binned_zscores(active.pooled(), bins)
    return binned_zscores(log_ratio(active.pooled(), overall.pooled()), bins)


def expression_shifts(adata: AnnData, *, model_key: str, options: StreamOptions) -> np.ndarray:
    """Nodes x genes: each gene's mean encoder input in the node's active cells minus its mean, in SDs.

    One streamed pass over the cells (the encoder input: log1p of library-normalised counts).
    """
    from .._module.inference import weighted_input_sums
    from .._module.training import resolve_device

    module, _ = load_model(adata, model_key)
    counts, _ = model_counts(adata, model_key, options.chunk_size)
    weights = active_cells(stored_latent(adata, model_key))
    on_disk = isinstance(counts, ChunkedRows)
    sums = weighted_input_sums(
        module,
        counts,
        weights,
        batch_size=options.batch_size or (counts.chunk_size if on_disk else 1024),
        device=resolve_device(options.device),
        progress=options.progress,
    )
    return active_expression_shift(sums["sum"], sums["squares"], sums["weighted"], weights.sum(axis=0), adata.n_obs)


def impact_zscores(adata: AnnData, impact: dict, options: StreamOptions) -> np.ndarray:
    """Nodes x genes: the binned z-scores a :func:`~scdeconv.tl.module_impact` result summed over its sets.

    Follows the result's recorded profile (``scored_profile``).
    """
    params = impact["params"]
    model_key, n_bins = params["model_key"], int(params["n_bins"])
    if scored_profile(params) == "expression":
        shift = expression_shifts(adata, model_key=model_key, options=options)
        return binned_zscores(shift, expression_bins(np.asarray(impact["gene_mean"]), n_bins))
    return attribution_zscores(
        adata,
        model_key=model_key,
        method=params["method"],
        n_bins=n_bins,
        rank_by=impact_ranking(params),
        options=options,
    )


def node_gene_scores(
    adata: AnnData, *, model_key: str, rank_by: str, method: str, n_bins: int, options: StreamOptions
) -> np.ndarray:
    """Nodes x genes: the score :func:`node_genes` ranks by."""
    if rank_by == "expression":
        return expression_shifts(adata, model_key=model_key, options=options)
    return attribution_zscores(
        adata, model_key=model_key, method=method, n_bins=n_bins, rank_by=rank_by, options=options
    )


@inject_docs
def node_genes(
    adata: AnnData,
    *,
    n_top: int = 20,
    method: Method = "grad_x_input",
    n_bins: int = N_BINS,
    rank_by: RankBy = "expression",
    model_key: str = MODEL_KEY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
    key_added: str = NODE_GENES_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Rank the genes of each node's module, as ``sc.tl.rank_genes_groups`` ranks marker genes.

    This is how to find modules outside the known gene sets. Each node is active in some cells
    (its top quarter by activation, as in :func:`scdeconv.tl.module_impact`). By default
    (``rank_by="expression"``) a gene scores by how far its mean expression (the encoder's input,
    log1p of library-normalised counts) in those cells sits above its mean over all cells, in
    standard deviations over all cells: the node's marker genes. Attributions say which genes the
    encoder *reads* to set the node, and it reads a few of a block's correlated genes; the
    expression shift says which genes *move with* the node, the whole block, which is why it is
    the default (the comparison is in ``benchmarks/RESULTS.md``).

    The attribution rankings remain: ``"contrast"`` ranks a gene high when it drives the node more
    in its active cells than over all cells (log ratio of the two mean |attributions|, z-scored
    among genes of similar mean expression).

    Parameters
    ----------
    adata
        The AnnData the model was trained on.
    n_top
        Genes kept per node.
    method
        Attribution, as in :func:`scdeconv.tl.module_impact` (attribution rankings only).
    n_bins
        Expression bins for the attribution z-scores (attribution rankings only).
    rank_by
        ``"expression"`` (default, above); ``"contrast"`` (above); ``"active"`` (mean
        |attribution| over the node's active cells) or ``"mean"`` (over all cells, the per-gene
        part of ``score="enrichment"`` in :func:`scdeconv.tl.module_impact` with
        ``node_cells="all"``), both z-scored within expression bins.
    model_key
        ``uns`` key of the model.
    {stream}
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_node_genes' | key_added]``:
    ``names`` and ``scores`` (DataFrames, ``n_top`` rows x nodes, best first: the expression shift
    in SDs, or the attribution z-score), ``node_status`` (a DataFrame, column ``status``: ``"live"``, ``"dead"`` or
    ``"rare"`` per node, :func:`scdeconv.scoring.node_status`) and ``params``. Only genes with a positive score on a
    live node are listed; the other entries are ``""`` (score NaN), so a dead or rare node lists
    no genes and a node never lists genes tied at 0.
    """
    check_choice("rank_by", rank_by, RankBy)
    check_choice("method", method, Method)
    if n_top < 1:
        raise ValueError(f"n_top must be at least 1, not {n_top}.")
    check_not_backed_copy(adata, copy)
    adata = adata.copy() if copy else adata
    entry = stored_model(adata, model_key)
    claim_uns_key(adata, key_added, "node_genes", reads=(model_key,))
    genes = np.asarray(entry["var_names"]).astype(str)
    options = StreamOptions(chunk_size=chunk_size, batch_size=batch_size, device=device, progress=progress)
    z = node_gene_scores(adata, model_key=model_key, rank_by=rank_by, method=method, n_bins=n_bins, options=options)
    n_top = min(n_top, len(genes))
    order = np.argsort(-z, axis=1, kind="stable")[:, :n_top]
    nodes = node_names(z.shape[0])
    status = node_status(stored_latent(adata, model_key))
    top_scores = np.take_along_axis(z, order, axis=1)
    # Only positive scores of live nodes are listed: a gene that does not rise with the node is no
    # marker of it, and ties at 0 would list the alphabetically first genes.
    listed = (top_scores > 0) & (status == "live")[:, None]
    names = np.where(listed, genes[order], "")
    top_scores = np.where(listed, top_scores, np.nan)
    adata.uns[key_added] = {
        "params": {
            "n_top": int(n_top),
            "method": method,
            "n_bins": int(n_bins),
            "rank_by": rank_by,
            "model_key": model_key,
        },
        "names": pd.DataFrame(names.T, columns=nodes),
        "scores": pd.DataFrame(top_scores.T, columns=nodes),
        "node_status": pd.DataFrame({"status": status}, index=pd.Index(nodes, name="node")),
    }
    n_quiet = int((status != "live").sum())
    logger.info(
        "Added adata.uns[%r]: top %d genes of %d nodes (%d dead or rare nodes list none).",
        key_added,
        n_top,
        len(nodes),
        n_quiet,
    )
    return adata if copy else None
