from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from anndata import AnnData

from .._choices import DiffLevel, check_choice
from .._defaults import PANEL_E_THRESHOLD
from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY
from .._results import stored_result
from ..scoring import direction, minmax_per_set


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
        ``"node"``: the node-level differences of the paper's panel e, with their tests. ``"set"``:
        the test of every gene set on per-cell activity (``set_tests``), with the statistics.

    Returns
    -------
    ``level="node"``: columns ``node``, ``gene_set``, ``scaled_impact``, ``diff``, ``scaled_diff``
    and, from ``node_set_tests``, ``effect``, ``pvalue``, ``fdr`` and ``direction`` (``"up"`` where
    the effect is positive, i.e. higher in ``group1``, ``"down"`` where negative); largest
    ``|diff|`` first.

    ``level="set"``: columns ``gene_set``, ``effect`` (positive = higher in ``group1``),
    ``mean_activity1``, ``mean_activity2``, the self-contained p-value (``pvalue_mw`` over cells, or
    ``statistic`` and ``pvalue_samples`` over samples), ``null_z``, ``pvalue_competitive``,
    ``pvalue`` (the larger of the two tests'), ``fdr``, ``direction``, plus ``group1`` and
    ``group2`` (labels from ``params``) and ``replicates`` (``"cells"`` or ``"samples"``); sorted by
    FDR.

    With ``group1="all"`` both tables hold every category's comparison with the rest: a ``group``
    column first, and ``group1`` is that category.
    """
    check_choice("level", level, DiffLevel)
    result = stored_result(adata, key, "group_diff")
    params = result["params"]
    every = isinstance(result["diff"], Mapping)  # group1="all": one comparison per category
    if level == "set":
        table = result["set_tests"].copy()
        if not every:
            table.index.name = "gene_set"
            table = table.reset_index()
        table["group1"] = table["group"] if every else params["group1"]
        table["group2"] = params["group2"]
        table["replicates"] = params.get("replicates", "cells")
        return table
    stored = stored_result(adata, params["impact_key"], "impact")
    live = ~stored["node_stats"]["dead"].to_numpy()
    scaled = minmax_per_set(stored["impact"]).loc[live]
    if not every:
        return _node_table(result, scaled, threshold)
    tables = [
        _node_table({name: result[name][group] for name in _NODE_TABLES}, scaled, threshold).assign(group=group)
        for group in result["diff"]
    ]
    table = pd.concat(tables, ignore_index=True)
    table = table[["group", *[c for c in table if c != "group"]]]
    return table.reindex(table["diff"].abs().sort_values(ascending=False).index).reset_index(drop=True)


_NODE_TABLES = ("diff", "scaled_diff", "node_set_tests")


def _node_table(result, scaled: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One comparison's (node, set) rows where the whole-data scaled impact exceeds ``threshold``."""
    columns = {
        "scaled_impact": scaled.stack(),
        "diff": result["diff"].loc[scaled.index].stack(),
        "scaled_diff": result["scaled_diff"].loc[scaled.index].stack(),
    }
    tests = result.get("node_set_tests", {})
    for name in ("effect", "pvalue", "fdr"):
        if name in tests:
            columns[name] = tests[name].loc[scaled.index].stack(future_stack=True)
    table = pd.DataFrame(columns)
    table.index.names = ["node", "gene_set"]
    table = table[table["scaled_impact"] > threshold].reset_index()
    if "effect" in table:
        table["direction"] = direction(table["effect"].to_numpy())
    return table.reindex(table["diff"].abs().sort_values(ascending=False).index).reset_index(drop=True)
