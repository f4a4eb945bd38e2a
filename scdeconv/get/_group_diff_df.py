from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._choices import DiffLevel, check_choice
from .._defaults import PANEL_E_THRESHOLD
from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY
from .._results import stored_result
from ..scoring import minmax_per_set


@inject_docs
def group_diff_df(
    adata: AnnData,
    key: str = GROUP_DIFF_KEY,
    threshold: float = PANEL_E_THRESHOLD,
    *,
    level: DiffLevel = "node",
) -> pd.DataFrame:
    """The result of :func:`scdeconv.tl.group_diff` as a tidy long DataFrame.

    Parameters
    ----------
    {result:group_diff}
    threshold
        With ``level="node"``: keep (node, set) pairs whose whole-data scaled impact exceeds it
        (the paper's panel e shows differences above 0.85); ``0`` keeps all live pairs.
    level
        ``"node"``: the node-level differences of the paper's panel e. ``"set"``: the test of
        every gene set on per-cell activity (``set_tests``), with the statistics.

    Returns
    -------
    ``level="node"``: columns ``node``, ``gene_set``, ``scaled_impact``, ``diff`` and
    ``scaled_diff``, largest ``|diff|`` first.

    ``level="set"``: columns ``gene_set``, ``effect`` (rank-biserial, positive = higher in
    ``group1``), ``mean_activity1``, ``mean_activity2``, ``pvalue_mw``, ``null_z``,
    ``pvalue_competitive``, ``pvalue`` (the larger of the two tests'), ``fdr``, plus ``group1`` and
    ``group2`` (labels from ``params``); sorted by FDR.
    """
    check_choice("level", level, DiffLevel)
    result = stored_result(adata, key, "group_diff")
    if level == "set":
        table = result["set_tests"].copy()
        table.index.name = "gene_set"
        table = table.reset_index()
        table["group1"] = result["params"]["group1"]
        table["group2"] = result["params"]["group2"]
        return table
    stored = stored_result(adata, result["params"]["impact_key"], "impact")
    live = ~stored["node_stats"]["dead"].to_numpy()
    scaled = minmax_per_set(stored["impact"]).loc[live]
    table = pd.DataFrame(
        {
            "scaled_impact": scaled.stack(),
            "diff": result["diff"].loc[scaled.index].stack(),
            "scaled_diff": result["scaled_diff"].loc[scaled.index].stack(),
        }
    )
    table.index.names = ["node", "gene_set"]
    table = table[table["scaled_impact"] > threshold].reset_index()
    return table.reindex(table["diff"].abs().sort_values(ascending=False).index).reset_index(drop=True)
