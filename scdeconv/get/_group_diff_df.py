from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._keys import GROUP_DIFF_KEY
from ..scoring import minmax_per_set
from ..tl._group_diff import PANEL_E_THRESHOLD, stored_impact


def group_diff_df(adata: AnnData, key: str = GROUP_DIFF_KEY, threshold: float = PANEL_E_THRESHOLD) -> pd.DataFrame:
    """Long table of the (node, set) differences the paper's panel e shows, largest first.

    Rows where the whole-data scaled impact exceeds ``threshold``, with columns ``node``,
    ``gene_set``, ``scaled_impact``, ``diff`` and ``scaled_diff``.
    """
    if key not in adata.uns:
        raise KeyError(f"Did not find adata.uns[{key!r}]. Run `sd.tl.group_diff(adata, ...)` first.")
    result = adata.uns[key]
    stored = stored_impact(adata, result["params"]["impact_key"])
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
