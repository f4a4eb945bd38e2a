from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._docs import inject_docs
from .._keys import IMPACT_KEY
from .._results import carrying_modules, stored_result
from ..scoring import minmax_per_set


@inject_docs
def impact_df(adata: AnnData, key: str = IMPACT_KEY, *, drop_dead: bool = True) -> pd.DataFrame:
    """The impact table of :func:`scdeconv.tl.module_impact` as a tidy long DataFrame.

    One row per (node, gene set), for pandas, seaborn or a spreadsheet:
    ``sd.get.impact_df(adata).query("fdr < 0.05")``.

    Parameters
    ----------
    {result:impact}
    drop_dead
        Leave out dead nodes (``node_stats["dead"]``).

    Returns
    -------
    Columns ``node``, ``gene_set``, ``impact`` (the score: enrichment z-sum, or the paper's
    median), ``direction`` (``"up"``/``"down"``: the set's genes higher or lower in the node's
    active cells; results written before it existed have none), ``scaled`` (min-max per set
    across nodes, as in the heatmap), ``rank`` (1 = the set's strongest node), ``n_present``
    (genes of the set scored) and, when the null model was run, ``null_z``, ``pvalue``,
    ``pvalue_empirical``, ``fdr`` and the conditional test of overlapping sets,
    ``pvalue_conditional`` and ``fdr_conditional`` (the pair re-tested on the genes it does not
    share with a stronger set called on the node); with ``null="coexpression"``, ``module``: the
    node's strongest called co-expression module when the set is part of it, or ``""`` (the set
    cannot stand out from its own module, so the module stands for it); sorted by ``scaled`` then
    ``impact``, largest first.
    """
    stored = stored_result(adata, key, "impact")
    impact = stored["impact"]
    live = ~stored["node_stats"]["dead"].to_numpy() if drop_dead else slice(None)
    impact = impact.loc[live]
    columns = {"impact": impact.stack(), "scaled": minmax_per_set(impact).stack()}
    if "direction" in stored:
        columns["direction"] = stored["direction"].loc[live].stack()
    for name in ("null_z", "pvalue", "pvalue_empirical", "fdr", "pvalue_conditional", "fdr_conditional"):
        if name in stored:
            columns[name] = stored[name].loc[live].stack(future_stack=True)
    if "module_fdr" in stored:
        columns["module"] = carrying_modules(stored).loc[impact.index].stack()
    table = pd.DataFrame(columns)
    table.index.names = ["node", "gene_set"]
    table = table.reset_index()
    table["rank"] = table.groupby("gene_set")["impact"].rank(ascending=False, method="min").astype(int)
    sizes = stored.get("gene_set_sizes")
    if sizes is not None and "n_present" in sizes:
        table["n_present"] = table["gene_set"].map(sizes["n_present"]).astype(int)
    order = ["node", "gene_set", "impact", "direction", "scaled", "rank", "n_present", "null_z", "pvalue"]
    order += ["pvalue_empirical"]
    table = table[[c for c in order if c in table] + [c for c in table if c not in order]]
    return table.sort_values(["scaled", "impact"], ascending=False, ignore_index=True)
