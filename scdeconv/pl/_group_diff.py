"""``sd.pl.group_diff``: a two-group difference overlaid on the general heatmap, panel (e)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap

from .._defaults import PANEL_D_THRESHOLD, PANEL_E_THRESHOLD
from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY, IMPACT_KEY
from .._results import stored_result
from ..scoring import scaled_difference
from ._impact_heatmap import default_figsize, draw_table, heatmap_table, mark_significant
from ._utils import savefig_or_show

__all__ = ["group_diff"]


def overlay_values(background: pd.DataFrame, scaled_diff: pd.DataFrame, threshold: float) -> np.ma.MaskedArray:
    """The scaled difference in the layout of ``background``, masked where it is not drawn.

    A cell is drawn when the whole-data scaled impact exceeds ``threshold`` and the difference
    is known; nodes or sets absent from ``scaled_diff`` are masked.
    """
    diff = scaled_diff.reindex(index=background.index, columns=background.columns).to_numpy(dtype=float)
    mask = ~(background.to_numpy(dtype=float) > threshold) | np.isnan(diff)
    return np.ma.masked_array(np.nan_to_num(diff, nan=0.0), mask=mask)


@inject_docs
def group_diff(
    adata: AnnData,
    *,
    key: str = GROUP_DIFF_KEY,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    impact_key: str | None = None,
    threshold: float = PANEL_E_THRESHOLD,
    heatmap_threshold: float = PANEL_D_THRESHOLD,
    fdr: float | None = None,
    drop_dead: bool = True,
    cluster: bool = True,
    gene_sets: Sequence[str] | str | None = None,
    strip_prefix: bool = True,
    cmap: str | Colormap = "RdBu_r",
    background_cmap: str | Colormap | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes:
    """Difference of gene-set impact between two groups, over the general heatmap (panel e).

    The background is the whole-data heatmap of :func:`scdeconv.pl.impact_heatmap` (same
    nodes, sets and order) in grey. On top, in cells where the whole-data scaled impact is
    above ``threshold``, the scaled difference ``(group1 - group2) / max|group1 - group2|`` is
    drawn blue-white-red with limits -1..1: red means higher impact in ``group1``. With ``fdr``,
    only differences that the per-(node, set) tests call significant are drawn, and dotted.

    Parameters
    ----------
    {result:group_diff}
    {figure}
    impact_key
        Key of the whole-data impact result; default the one recorded in
        ``adata.uns[key]["params"]["impact_key"]`` (else ``"scdeconv_impact"``).
    threshold
        Overlay the difference only where the whole-data scaled impact exceeds this (paper: 0.85).
    fdr
        With the per-(node, set) tests of :func:`scdeconv.tl.group_diff` (``node_set_tests``),
        draw the difference only where their FDR is below this, and mark those cells with a dot.
        ``None`` (default) draws the paper's overlay, untested.
    heatmap_threshold
        Node filter of the background heatmap, as ``threshold`` of
        :func:`~scdeconv.pl.impact_heatmap` (0.7 gives the same layout as its default).
    drop_dead
        Drop nodes flagged dead, as in :func:`~scdeconv.pl.impact_heatmap`.
    cluster
        Order nodes and sets by hierarchical clustering of the whole-data scaled impact.
    gene_sets
        Show only these gene sets (full names, or without the ``HALLMARK_`` prefix).
    strip_prefix
        Drop the ``HALLMARK_`` prefix from the gene-set labels.
    cmap
        Diverging colormap of the scaled difference (centred at 0, limits -1..1).
    background_cmap
        Colormap of the whole-data scaled impact underneath (limits 0..1); default light to
        dark grey, so that a white (no difference) overlaid cell stands out from the background.
    {ax_show_save}

    Returns
    -------
    The heatmap's Axes. ``ax.images[0]`` is the grey background (whole-data scaled impact),
    ``ax.images[1]`` the overlay, whose masked array hides the cells not drawn. Two colorbars
    ("scaled impact", "scaled difference") are separate Axes of the same figure.

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` is missing (run ``sd.tl.group_diff(adata, groupby, group1)``
        first) or the whole-data impact is missing (run ``sd.tl.module_impact(adata)``).

    Examples
    --------
    >>> import scdeconv as sd
    >>> sd.tl.group_diff(adata, "cell_type", "MEP", "GMP")  # doctest: +SKIP
    >>> sd.pl.group_diff(adata)  # doctest: +SKIP
    """
    result = stored_result(adata, key, "group_diff")
    params = dict(result.get("params", {}))
    if "scaled_diff" in result:
        scaled_diff = pd.DataFrame(result["scaled_diff"]).astype(float)
    elif "diff" in result:
        scaled_diff = scaled_difference(pd.DataFrame(result["diff"]).astype(float))
    else:
        raise KeyError(f"adata.uns[{key!r}] holds no 'scaled_diff' or 'diff'. Rerun `sd.tl.group_diff`.")
    if impact_key is None:
        impact_key = params.get("impact_key", IMPACT_KEY)
    background = heatmap_table(
        adata, key=impact_key, threshold=heatmap_threshold, drop_dead=drop_dead, cluster=cluster, gene_sets=gene_sets
    )
    overlay = overlay_values(background, scaled_diff, threshold)
    significant = None
    if fdr is not None:
        if "node_set_tests" not in result:
            raise KeyError(f"adata.uns[{key!r}] has no 'node_set_tests': rerun `sd.tl.group_diff`.")
        tested = pd.DataFrame(result["node_set_tests"]["fdr"]).astype(float)
        tested = tested.reindex(index=background.index, columns=background.columns).to_numpy()
        significant = (tested < fdr) & ~overlay.mask
        overlay.mask |= ~significant

    owns_figure = ax is None
    if ax is None:
        width, height = default_figsize(background, strip_prefix)
        _, ax = plt.subplots(figsize=figsize or (width + 1.0, height), layout="constrained")
    if background_cmap is None:
        background_cmap = ListedColormap(plt.get_cmap("Greys")(np.linspace(0.15, 0.8, 256)), name="grey")
    draw_table(ax, background, strip_prefix=strip_prefix, cmap=background_cmap, vmin=0.0, vmax=1.0)
    ax.imshow(overlay, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-1.0, vmax=1.0)
    if significant is not None:
        mark_significant(ax, significant, fdr)
    group1, group2 = params.get("group1", "group1"), params.get("group2", "rest")
    bar = ax.figure.colorbar(ax.images[1], ax=ax, shrink=0.6)
    bar.set_label(f"scaled difference ({group1} - {group2})")
    bar = ax.figure.colorbar(ax.images[0], ax=ax, shrink=0.6)
    bar.set_label(f"scaled impact, all cells (overlay > {threshold})")
    ax.set_title(f"{group1} vs {group2}" if title is None else title)
    savefig_or_show(ax.figure, "group_diff", show=show, save=save, owns_figure=owns_figure)
    return ax
