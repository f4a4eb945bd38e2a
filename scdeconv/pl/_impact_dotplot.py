"""``sd.pl.impact_dotplot``: nodes x gene sets, dot size = -log10 FDR, colour = null z-score."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import Colormap

from .._docs import inject_docs
from .._keys import IMPACT_KEY
from .._results import stored_result
from ._dots import DEFAULT_SIZE_CAP, draw_dots, size_legend
from ._impact_heatmap import _select_sets, set_labels
from ._utils import savefig_or_show

__all__ = ["impact_dotplot"]


def dotplot_tables(
    result,
    *,
    fdr: float,
    gene_sets: Sequence[str] | str | None,
    nodes: Sequence[str] | None,
    max_sets: int,
    max_nodes: int,
    color: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (gene sets x nodes) FDR and colour tables the dot plot shows, rows and columns chosen."""
    if "fdr" not in result:
        raise KeyError(
            "The impact result has no 'fdr': run `sd.tl.module_impact(adata, score='enrichment', n_null=1000)` "
            "(the default) for the null model."
        )
    if color not in result:
        raise KeyError(f"The impact result has no {color!r}; use color='null_z' or 'impact'.")
    dead = result["node_stats"]["dead"].to_numpy()
    fdr_table = result["fdr"].loc[~dead]
    if gene_sets is None:
        stats = result.get("set_stats")
        ranked = list(stats.index) if stats is not None else list(fdr_table.min(axis=0).sort_values().index)
        significant = [s for s in ranked if fdr_table[s].min() <= fdr]
        sets = (significant or ranked)[:max_sets]
    else:
        sets = _select_sets(fdr_table.columns, gene_sets)
    if nodes is None:
        best = fdr_table[sets].min(axis=1)
        chosen = best[best <= fdr]
        if chosen.empty:
            chosen = fdr_table[sets].idxmin(axis=0).drop_duplicates()
            chosen = best.loc[list(chosen)]
        nodes = list(chosen.sort_values(kind="stable").index[:max_nodes])
        nodes = sorted(nodes, key=lambda n: int(str(n).rsplit("_", 1)[-1]) if str(n)[-1].isdigit() else 0)
    else:
        unknown = [n for n in nodes if n not in result["impact"].index]
        if unknown:
            raise ValueError(f"Unknown nodes {unknown}; the impact table has {list(result['impact'].index[:3])}...")
        nodes = list(nodes)
    # Rows: gene sets, ordered by the node where each is strongest, so the plot reads diagonally.
    values = result[color].loc[nodes, sets]
    strongest = pd.Series(np.nan_to_num(values.to_numpy(), nan=-np.inf).argmax(axis=0), index=sets)
    sets = list(strongest.sort_values(kind="stable").index)
    return result["fdr"].loc[nodes, sets].T, result[color].loc[nodes, sets].T


@inject_docs
def impact_dotplot(
    adata: AnnData,
    *,
    key: str = IMPACT_KEY,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    fdr: float = 0.05,
    gene_sets: Sequence[str] | str | None = None,
    nodes: Sequence[str] | None = None,
    max_sets: int = 20,
    max_nodes: int = 30,
    color: str = "null_z",
    strip_prefix: bool = True,
    cmap: str | Colormap = "RdBu_r",
    dot_max: float = 120.0,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes:
    """Dot plot of gene sets x nodes: dot size = -log10 FDR, colour = effect (null z-score).

    The statistics of the null model of :func:`scdeconv.tl.module_impact`, in the layout of
    ``sc.pl.dotplot``: one row per gene set, one column per node. A dot's area grows with
    ``-log10(fdr)`` (full size at FDR ``1e-3``, the floor of the default null model); its colour
    is the (node, set) ``null_z`` (how many null standard deviations the score lies above
    matched random sets; under the co-expression null the smaller of its two standardised
    scores). Dots with FDR <= ``fdr`` get a black edge. Dead and rare nodes are never shown.

    Parameters
    ----------
    {result:impact}
    {figure}
    fdr
        Significance level: by default the plot shows the gene sets with some node at
        FDR <= ``fdr`` (best first by ``set_stats``) and the nodes significant for some shown
        set; when nothing is significant, the best sets and their best nodes.
    gene_sets
        Show these gene sets (full names, or without the ``HALLMARK_`` prefix).
    nodes
        Show these nodes (``"node_3"``, ...), in this order.
    max_sets
        At most this many gene sets (rows) when they are chosen automatically.
    max_nodes
        At most this many nodes (columns) when they are chosen automatically.
    color
        ``uns`` table for the colour: ``"null_z"`` (default) or ``"impact"``.
    strip_prefix
        Drop the ``HALLMARK_`` prefix from the gene-set labels.
    cmap
        Diverging colormap, centred at 0.
    dot_max
        Marker area (points^2) of the largest dot.
    {ax_show_save}

    Returns
    -------
    The Axes: node names as x tick labels, gene sets as y tick labels, a colorbar labelled
    with ``color`` and a legend of dot sizes (FDR 0.05, 0.01, 0.001).

    Examples
    --------
    >>> sd.tl.module_impact(adata)  # doctest: +SKIP
    >>> sd.pl.impact_dotplot(adata, fdr=0.05)  # doctest: +SKIP
    """
    result = stored_result(adata, key, "impact")
    fdr_table, colour = dotplot_tables(
        result, fdr=fdr, gene_sets=gene_sets, nodes=nodes, max_sets=max_sets, max_nodes=max_nodes, color=color
    )
    labels = set_labels(fdr_table.index, strip_prefix)
    owns_figure = ax is None
    if ax is None:
        width = 2.5 + 0.32 * fdr_table.shape[1] + 0.06 * max((len(s) for s in labels), default=0)
        height = 1.6 + 0.28 * fdr_table.shape[0]
        _, ax = plt.subplots(figsize=figsize or (max(width, 4.0), max(height, 2.5)), layout="constrained")
    n_rows, n_cols = fdr_table.shape
    # Full size at FDR 1e-3, the floor of FDRs from the default 1,000 random sets.
    cap, called = DEFAULT_SIZE_CAP, fdr_table.to_numpy(dtype=float) <= fdr
    dots = draw_dots(ax, fdr_table.to_numpy(), colour.to_numpy(), called=called, cap=cap, dot_max=dot_max, cmap=cmap)
    ax.set_xticks(np.arange(n_cols), list(fdr_table.columns), rotation=90)
    ax.set_yticks(np.arange(n_rows), labels)
    ax.set_xlabel("node")
    ax.figure.colorbar(dots, ax=ax, label=color, shrink=0.6)
    size_legend(ax, cap, dot_max, x_anchor=1.25)
    ax.set_title(title if title is not None else "gene-set impact on nodes")
    savefig_or_show(ax.figure, "impact_dotplot", show=show, save=save, owns_figure=owns_figure)
    return ax
