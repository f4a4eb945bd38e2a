from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .._docs import inject_docs
from .._keys import NODES_KEY
from .._results import stored_result


@inject_docs
def nodes_df(adata: AnnData, key: str = NODES_KEY, *, include_dead: bool = True) -> pd.DataFrame:
    """The node records of :func:`scdeconv.tl.annotate_nodes`: one row per node.

    Parameters
    ----------
    {result:node_table}
    include_dead
        Keep nodes that are not live (dead, rare); redundant nodes are always kept.

    Returns
    -------
    Columns ``node`` and those of ``node_table`` (see :func:`scdeconv.tl.annotate_nodes`): the
    status, the annotation (best gene set, or ``"novel programme"``), its FDR, the called sets,
    where the node is active, its top genes and stability when computed; in node order.
    """
    table = stored_result(adata, key, "node_table")["node_table"].copy()
    if not include_dead:
        table = table[table["status"].isin(["live", "redundant"])]
    table.index.name = "node"
    return table.reset_index()
