from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from anndata import AnnData

from .._docs import inject_docs
from .._keys import NODE_GENES_KEY
from .._results import stored_result


@inject_docs
def node_genes_df(
    adata: AnnData, key: str = NODE_GENES_KEY, *, nodes: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """The ranked genes of each node (:func:`scdeconv.tl.node_genes`) as a tidy long DataFrame.

    The counterpart of ``sc.get.rank_genes_groups_df``.

    Parameters
    ----------
    {result:node_genes}
    nodes
        A node (``"node_3"``) or list of nodes; ``None`` gives all.

    Returns
    -------
    Columns ``node``, ``rank`` (1 = the node's top gene), ``gene`` and ``score`` (what
    :func:`scdeconv.tl.node_genes` ranked by, recorded in its ``params["rank_by"]``: by default
    the gene's expression shift in the node's active cells, in SDs; or an attribution z-score);
    ordered by node, then rank. Only listed genes appear: none of a dead or rare node, none with
    a score at or below 0.
    """
    result = stored_result(adata, key, "node_genes")
    names, scores = result["names"], result["scores"]
    if nodes is not None:
        nodes = [nodes] if isinstance(nodes, str) else list(nodes)
        unknown = [n for n in nodes if n not in names.columns]
        if unknown:
            raise KeyError(f"Unknown nodes {unknown}; adata.uns[{key!r}] ranks {list(names.columns[:3])}...")
        names, scores = names[nodes], scores[nodes]
    table = pd.DataFrame(
        {
            "node": pd.Categorical(names.columns.repeat(len(names)), categories=list(names.columns)),
            "rank": list(range(1, len(names) + 1)) * names.shape[1],
            "gene": names.to_numpy().T.ravel().astype(str),
            "score": scores.to_numpy().T.ravel().astype(float),
        }
    )
    return table[table["gene"] != ""].reset_index(drop=True)
