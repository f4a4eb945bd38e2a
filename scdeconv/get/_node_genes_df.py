from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from anndata import AnnData

from .._keys import NODE_GENES_KEY


def node_genes_df(
    adata: AnnData, key: str = NODE_GENES_KEY, *, nodes: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Saliency-ranked genes per node (:func:`scdeconv.tl.node_genes`) as a tidy long DataFrame.

    The counterpart of ``sc.get.rank_genes_groups_df``.

    Parameters
    ----------
    adata
        AnnData with ``adata.uns[key]`` from :func:`scdeconv.tl.node_genes`.
    key
        ``uns`` key of the ranking.
    nodes
        A node (``"node_3"``) or list of nodes; ``None`` gives all.

    Returns
    -------
    Columns ``node``, ``rank`` (1 = the gene that drives the node most), ``gene`` and ``score``
    (the gene's expression-matched attribution z-score); ordered by node, then rank.
    """
    if key not in adata.uns:
        raise KeyError(f"Did not find adata.uns[{key!r}]. Run `sd.tl.node_genes(adata)` first.")
    result = adata.uns[key]
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
    return table
