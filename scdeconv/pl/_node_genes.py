"""``sd.pl.node_genes``: ranked genes per node, like ``sc.pl.rank_genes_groups``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes

from .._docs import inject_docs
from .._keys import NODE_GENES_KEY
from .._results import stored_result
from ..get._node_genes_df import node_genes_df
from ._utils import savefig_or_show

__all__ = ["node_genes"]

# y-axis label per sd.tl.node_genes ranking
SCORE_LABELS = {
    "expression": "shift in active cells (SD)",
    "contrast": "attribution contrast z",
    "active": "attribution z (active cells)",
    "mean": "attribution z",
}


@inject_docs
def node_genes(
    adata: AnnData,
    *,
    key: str = NODE_GENES_KEY,
    nodes: str | Sequence[str] | None = None,
    n_genes: int = 10,
    ncols: int = 4,
    fontsize: float = 8,
    sharey: bool = False,
    figsize: tuple[float, float] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> list[Axes]:
    """The top genes of each node, ranked, one panel per node (as ``sc.pl.rank_genes_groups``).

    Each panel writes the top ``n_genes`` gene names at their rank (x) and score (y): the score
    :func:`scdeconv.tl.node_genes` ranked by (by default, the gene's expression shift in the
    node's active cells, in SDs).

    Parameters
    ----------
    {result:node_genes}
    nodes
        A node or list of nodes to show; ``None`` shows every ranked node.
    n_genes
        Genes per panel (at most the ``n_top`` that was ranked).
    ncols
        Panels per row.
    fontsize
        Font size of the gene names.
    sharey
        Share the y axis across panels.
    figsize
        Figure size when a new figure is made.
    ax
        An Axes (one node) or a sequence of Axes (one per node) to draw into.
    {show_save}

    Returns
    -------
    The Axes, one per node, titled with the node name; the gene names are the Axes' texts.

    Examples
    --------
    >>> sd.tl.node_genes(adata, n_top=20)  # doctest: +SKIP
    >>> sd.pl.node_genes(adata, nodes=["node_3", "node_7"])  # doctest: +SKIP
    """
    result = stored_result(adata, key, "node_genes")
    rank_by = result.get("params", {}).get("rank_by", "mean")
    if n_genes < 1:
        raise ValueError(f"n_genes must be at least 1, not {n_genes}.")
    table = node_genes_df(adata, key, nodes=nodes)
    table = table[table["rank"] <= n_genes]
    shown = list(dict.fromkeys(table["node"].astype(str)))
    if not shown:
        raise ValueError(
            "No node lists any gene: dead or rare nodes and genes with a score at or below 0 are never "
            "listed (see adata.uns[key]['node_status']); pick live nodes."
        )
    owns_figure = ax is None
    if ax is None:
        ncols = max(1, min(ncols, len(shown)))
        nrows = int(np.ceil(len(shown) / ncols))
        fig, grid = plt.subplots(
            nrows,
            ncols,
            figsize=figsize or (2.6 * ncols, 2.6 * nrows),
            sharey=sharey,
            squeeze=False,
            layout="constrained",
        )
        axes = list(grid.ravel())
        for extra in axes[len(shown) :]:
            extra.set_visible(False)
        axes = axes[: len(shown)]
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != len(shown):
            raise ValueError(f"Got {len(axes)} Axes for {len(shown)} nodes; pass one Axes per node.")
        fig = axes[0].figure
    for panel, node in zip(axes, shown, strict=True):
        rows = table[table["node"] == node]
        scores = rows["score"].to_numpy()
        for rank, gene, score in zip(rows["rank"], rows["gene"], scores, strict=True):
            panel.text(rank, score, gene, rotation=90, va="bottom", ha="center", fontsize=fontsize)
        low, high = float(np.min(scores)), float(np.max(scores))
        pad = 0.3 * max(high - low, 1e-9)
        panel.set_xlim(0.3, len(rows) + 0.7)
        panel.set_ylim(min(low - 0.1 * pad, 0.0 if low >= 0 else low - pad), high + 1.6 * pad)
        panel.set_title(node)
        panel.set_xlabel("ranking")
        panel.set_xticks([])
    axes[0].set_ylabel(SCORE_LABELS.get(rank_by, "score"))
    savefig_or_show(fig, "node_genes", show=show, save=save, owns_figure=owns_figure)
    return axes
