from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._keys import IMPACT_KEY
from ..scoring import minmax_per_set
from ..tl._group_diff import stored_impact


def impact_df(adata: AnnData, key: str = IMPACT_KEY, *, drop_dead: bool = True) -> pd.DataFrame:
    """The impact table of :func:`scdeconv.tl.module_impact` as a tidy long DataFrame.

    Returns
    -------
    One row per (node, gene set): ``node``, ``gene_set``, ``impact``, ``scaled`` (min-max per
    set across nodes, as in the heatmap), ``rank`` (1 = the set's strongest node) and, when the
    null model was run, ``null_z``, ``pvalue`` and ``fdr``; sorted by ``scaled`` then
    ``impact``, largest first.
    """
    stored = stored_impact(adata, key)
    impact = stored["impact"]
    live = ~stored["node_stats"]["dead"].to_numpy() if drop_dead else slice(None)
    impact = impact.loc[live]
    columns = {"impact": impact.stack(), "scaled": minmax_per_set(impact).stack()}
    for name in ("null_z", "pvalue", "fdr"):
        if name in stored:
            columns[name] = stored[name].loc[live].stack(future_stack=True)
    table = pd.DataFrame(columns)
    table.index.names = ["node", "gene_set"]
    table = table.reset_index()
    table["rank"] = table.groupby("gene_set")["impact"].rank(ascending=False, method="min").astype(int)
    return table.sort_values(["scaled", "impact"], ascending=False, ignore_index=True)
