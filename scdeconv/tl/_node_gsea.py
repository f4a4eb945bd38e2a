from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from tqdm import tqdm

from .._docs import inject_docs
from .._keys import GSEA_KEY, IMPACT_KEY
from .._logging import logger
from .._module.config import StreamOptions
from .._results import claim_uns_key, stored_result
from ..scoring import benjamini_hochberg
from ._node_genes import impact_zscores


@inject_docs
def node_gsea(
    adata: AnnData,
    *,
    impact_key: str = IMPACT_KEY,
    n_perm: int = 1000,
    min_size: int = 5,
    seed: int = 0,
    threads: int = 1,
    progress: bool = True,
    key_added: str = GSEA_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Preranked GSEA (gseapy) of each node's gene ranking: a second statistic beside the impact.

    Each live node ranks the model's genes by the expression-matched z-scores that
    :func:`scdeconv.tl.module_impact` summed over each set (of the profile it scored: by default
    the expression shift of the node's active cells); :func:`gseapy.prerank` then tests every gene set of the
    impact result against that ranking by gene-set permutation. Unlike the Stouffer enrichment of
    :func:`scdeconv.tl.module_impact`, GSEA looks at where the set's genes fall along the whole
    ranking, so the two agree on strong programmes and differ on diffuse ones.

    Parameters
    ----------
    adata
        AnnData with a trained model and :func:`scdeconv.tl.module_impact` results (its gene
        sets, profile, attribution method and expression bins are reused).
    impact_key
        ``uns`` key of the impact result.
    n_perm
        Gene-set permutations per node.
    min_size
        Smallest gene set tested.
    seed
        Seeds gseapy's permutations.
    threads
        Threads for gseapy.
    progress
        Show a progress bar over nodes.
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_gsea' | key_added]``:
    ``nes`` (normalised enrichment score), ``pvalue`` (gseapy's nominal p) and ``fdr`` (BH over
    all live (node, set) pairs), DataFrames nodes x gene sets with NaN for dead nodes, and
    ``params``.
    """
    import gseapy

    adata = adata.copy() if copy else adata
    stored = stored_result(adata, impact_key, "impact")
    params = stored["params"]
    claim_uns_key(adata, key_added, "gsea", reads=(impact_key, params["model_key"]))
    genes = np.asarray(adata.uns[params["model_key"]]["var_names"]).astype(str)
    z = impact_zscores(adata, stored, StreamOptions(progress=False))  # the gene z-scores the impact summed
    sets = {name: list(np.asarray(members).astype(str)) for name, members in stored["gene_sets"].items()}
    nodes, names = stored["impact"].index, list(sets)
    live = ~stored["node_stats"]["dead"].to_numpy()
    tables = {k: pd.DataFrame(np.nan, index=nodes, columns=names) for k in ("nes", "pvalue")}
    for j in tqdm(np.flatnonzero(live), desc="prerank", unit="node", disable=not progress):
        ranking = pd.Series(z[j], index=genes).sort_values(ascending=False)
        result = gseapy.prerank(
            rnk=ranking, gene_sets=sets, permutation_num=n_perm, min_size=min_size, max_size=len(genes),
            seed=seed, threads=threads, outdir=None, no_plot=True, verbose=False,
        ).res2d.set_index("Term")  # fmt: skip
        tables["nes"].iloc[j] = result["NES"].astype(float).reindex(names)
        tables["pvalue"].iloc[j] = result["NOM p-val"].astype(float).reindex(names)
    tables["fdr"] = pd.DataFrame(benjamini_hochberg(tables["pvalue"].to_numpy()), index=nodes, columns=names)
    adata.uns[key_added] = {
        "params": {"impact_key": impact_key, "n_perm": int(n_perm), "min_size": int(min_size), "seed": int(seed)},
        **tables,
    }
    logger.info("Added adata.uns[%r]: preranked GSEA of %d nodes.", key_added, int(live.sum()))
    return adata if copy else None
