"""``sd.pl.group_diff``: two-group differences of impact, panel (e): the tested calls, or the paper's overlay."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, ListedColormap, Normalize

from .._choices import PanelView, check_choice
from .._defaults import FDR, PANEL_D_THRESHOLD, PANEL_E_THRESHOLD
from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY, IMPACT_KEY
from .._results import stored_result
from ..scoring import scaled_difference
from ._calls import call_order, called_table, calls_figsize, draw_calls, no_calls, star_legend
from ._impact_heatmap import _select_sets, default_figsize, draw_table, heatmap_table, mark_significant, set_labels
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


def is_all_groups(result: Mapping) -> bool:
    """Whether a group_diff result compares every category with the rest (``group1="all"``)."""
    return isinstance(result["diff"], Mapping)


def group_comparison(result: Mapping, group: str | None = None, *, key: str = GROUP_DIFF_KEY) -> dict:
    """One comparison of a group_diff result, in the layout of a two-group result.

    A two-group result is returned as it is (``group`` may only name its ``group1``). Of a
    ``group1="all"`` result, ``group`` picks the comparison of that category with the rest: its
    tables, its rows of the long ``set_tests`` (indexed by gene set) and ``params`` with
    ``group1=group``, ``group2="rest"`` and the comparison's cell counts (from ``contrasts``).
    """
    params = dict(result.get("params", {}))
    if not is_all_groups(result):
        if group is None or str(group) == str(params.get("group1")):
            return dict(result)
        raise ValueError(
            f"adata.uns[{key!r}] compares {params.get('group1')!r} with {params.get('group2')!r}, one comparison: "
            f"leave group=None. To draw each category against the rest, run "
            f"`sd.tl.group_diff(adata, {params.get('groupby', 'groupby')!r}, 'all')` first."
        )
    categories = [str(c) for c in result["diff"]]
    if group is None:
        raise ValueError(
            f"adata.uns[{key!r}] compares every category of adata.obs[{params.get('groupby')!r}] with the rest "
            f"(group1='all'): {categories}. Pass group=<one of them> to draw that comparison, e.g. "
            f"group={categories[0]!r}, or draw all of them at once with `sd.pl.group_diff_dotplot(adata)`."
        )
    name = str(group)
    if name not in categories:
        raise ValueError(f"group={group!r} is not a category of this result; pass one of {categories}.")
    one = {
        table: values[name]
        for table, values in result.items()
        if table not in ("params", "contrasts", "set_tests") and isinstance(values, Mapping)
    }
    tests = result["set_tests"]
    tests = tests[tests["group"].astype(str).to_numpy() == name].drop(columns="group")
    one["set_tests"] = tests.set_index("gene_set") if "gene_set" in tests else tests
    counts = {}
    if "contrasts" in result:
        row = pd.DataFrame(result["contrasts"])
        row.index = row.index.astype(str)
        counts = {c: v.item() if hasattr(v, "item") else v for c, v in row.loc[name].dropna().items()}
    one["params"] = {**params, "group1": name, "group2": "rest", **counts}
    return one


def calls_of_difference(
    adata: AnnData,
    *,
    key: str = GROUP_DIFF_KEY,
    group: str | None = None,
    fdr: float = FDR,
    gene_sets: Sequence[str] | str | None = None,
    values: str = "diff",
    cluster: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table the significant view of :func:`group_diff` draws, and its FDRs.

    ``values`` (``"diff"`` or a table of ``node_set_tests`` such as ``"effect"``) of the live nodes
    where the per-(node, set) tests' FDR is below ``fdr`` (NaN elsewhere), only nodes and sets
    with at least one call, ordered by :func:`scdeconv.pl._calls.call_order`. Of a ``group1="all"``
    result, the comparison of category ``group`` with the rest (:func:`group_comparison`).
    """
    result = stored_result(adata, key, "group_diff")
    impact_key = dict(result.get("params", {})).get("impact_key", IMPACT_KEY)
    result = group_comparison(result, group, key=key)
    if "node_set_tests" not in result:
        raise KeyError(
            f"adata.uns[{key!r}] has no 'node_set_tests', which the significant view draws: rerun "
            "`sd.tl.group_diff`, or pass view='paper'."
        )
    tests = result["node_set_tests"]
    source = result if values == "diff" else tests
    if values not in source:
        raise KeyError(f"Did not find {values!r} in adata.uns[{key!r}]; use values='diff' or one of {list(tests)}.")
    table = pd.DataFrame(source[values]).astype(float)
    if gene_sets is not None:
        table = table[_select_sets(table.columns, gene_sets)]
    impact = stored_result(adata, impact_key, "impact")
    dead = pd.Series(impact["node_stats"]["dead"]).astype(bool).reindex(table.index, fill_value=True)
    fdr_table = pd.DataFrame(tests["fdr"]).astype(float)
    called = called_table(table.loc[~dead.to_numpy()], fdr_table, fdr)
    if called.empty:
        return called, fdr_table
    return call_order(called, cluster=cluster), fdr_table


@inject_docs
def group_diff(
    adata: AnnData,
    *,
    key: str = GROUP_DIFF_KEY,
    group: str | None = None,
    view: PanelView = "significant",
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    impact_key: str | None = None,
    threshold: float = PANEL_E_THRESHOLD,
    heatmap_threshold: float = PANEL_D_THRESHOLD,
    fdr: float | None = None,
    values: str = "diff",
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
    """Difference of gene-set impact between two groups (the paper's panel e).

    ``view="significant"`` (default) draws only the differences that the per-(node, set) tests
    of :func:`scdeconv.tl.group_diff` (``node_set_tests``) call at FDR below ``fdr``, on live
    nodes, and only nodes and gene sets with at least one call; nodes are ordered by clustering of
    their calls and each set goes under the node where its difference is largest. The colour is
    the difference itself (``values``, default ``diff``: group 1 minus group 2) on a blue-white-red
    scale symmetric around 0 that spans the drawn values; red means higher in ``group1``. Stars
    give the FDR (``*`` < 0.05, ``**`` < 0.01, ``***`` < 0.001); cells without a call are light
    grey. When nothing is called, the axes say so.

    ``view="paper"`` is the paper's overlay: the whole-data heatmap of
    :func:`scdeconv.pl.impact_heatmap` (``view="paper"``: same nodes, sets and order) in grey and,
    in cells where the whole-data scaled impact is above ``threshold``, the scaled difference
    ``(group1 - group2) / max|group1 - group2|`` with limits -1..1. With ``fdr``, only differences
    the tests call are drawn there, and dotted.

    Parameters
    ----------
    {result:group_diff}
    group
        Of a ``group1="all"`` result (every category against the rest), the category whose
        comparison with the rest to draw; required there (a ValueError lists the categories).
        :func:`~scdeconv.pl.group_diff_dotplot` draws all of them at once. A two-group result
        needs none.
    view
        ``"significant"`` (tested calls only) or ``"paper"`` (the published overlay).
    {figure}
    impact_key
        Key of the whole-data impact result; default the one recorded in
        ``adata.uns[key]["params"]["impact_key"]`` (else ``"scdeconv_impact"``).
    threshold
        Paper view: overlay the difference only where the whole-data scaled impact exceeds this
        (paper: 0.85).
    heatmap_threshold
        Paper view: node filter of the background heatmap, as ``threshold`` of
        :func:`~scdeconv.pl.impact_heatmap` (0.7 gives the same layout as its default).
    fdr
        Significant view: the FDR below which a difference is a call (default 0.05). Paper view:
        draw the difference only where the tests' FDR is below this, and mark those cells with a
        dot; ``None`` draws the paper's overlay, untested.
    values
        Significant view: what the colour shows, ``"diff"`` (default) or a table of
        ``node_set_tests`` (``"effect"``: Cohen's d of the cells' scores).
    drop_dead
        Paper view: drop nodes flagged dead, as in :func:`~scdeconv.pl.impact_heatmap`. The
        significant view always does.
    cluster
        Order nodes (and, in the paper view, sets) by hierarchical clustering.
    gene_sets
        Show only these gene sets (full names, or without the ``HALLMARK_`` prefix).
    strip_prefix
        Drop the ``HALLMARK_`` prefix from the gene-set labels.
    cmap
        Diverging colormap of the difference, centred at 0.
    background_cmap
        Paper view: colormap of the whole-data scaled impact underneath (limits 0..1); default
        light to dark grey, so that a white (no difference) overlaid cell stands out.
    {ax_show_save}

    Returns
    -------
    The heatmap's Axes. Significant view: ``ax.images[0]`` holds the drawn differences, masked
    where there is no call, the stars are the Axes' texts, and one colorbar is a separate Axes;
    with no call, the Axes holds only the message. Paper view: ``ax.images[0]`` is the grey
    background (whole-data scaled impact), ``ax.images[1]`` the overlay, whose masked array hides
    the cells not drawn; two colorbars ("scaled impact", "scaled difference").

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` is missing (run ``sd.tl.group_diff(adata, groupby, group1)``
        first) or the whole-data impact is missing (run ``sd.tl.module_impact(adata)``).
    ValueError
        If the result compares every category with the rest and ``group`` is not one of them.

    Examples
    --------
    >>> import scdeconv as sd
    >>> sd.tl.group_diff(adata, "cell_type", "MEP", "GMP")  # doctest: +SKIP
    >>> sd.pl.group_diff(adata)  # doctest: +SKIP
    >>> sd.pl.group_diff(adata, view="paper")  # doctest: +SKIP
    >>> sd.tl.group_diff(adata, "paul15_clusters", "all")  # doctest: +SKIP
    >>> sd.pl.group_diff(adata, group="7MEP")  # doctest: +SKIP
    """
    check_choice("view", view, PanelView)
    result = group_comparison(stored_result(adata, key, "group_diff"), group, key=key)
    params = dict(result.get("params", {}))
    if impact_key is None:
        impact_key = params.get("impact_key", IMPACT_KEY)
    group1, group2 = params.get("group1", "group1"), params.get("group2", "rest")
    if view == "significant":
        return _significant_diff(
            adata,
            key=key,
            group=group,
            heading=f"{group1} vs {group2}" if title is None else title,
            label=f"{values} ({group1} - {group2})" if values == "diff" else f"{values} ({group1} vs {group2})",
            figsize=figsize,
            fdr=FDR if fdr is None else fdr,
            values=values,
            cluster=cluster,
            gene_sets=gene_sets,
            strip_prefix=strip_prefix,
            cmap=cmap,
            ax=ax,
            show=show,
            save=save,
        )
    if "scaled_diff" in result:
        scaled_diff = pd.DataFrame(result["scaled_diff"]).astype(float)
    elif "diff" in result:
        scaled_diff = scaled_difference(pd.DataFrame(result["diff"]).astype(float))
    else:
        raise KeyError(f"adata.uns[{key!r}] holds no 'scaled_diff' or 'diff'. Rerun `sd.tl.group_diff`.")
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
    bar = ax.figure.colorbar(ax.images[1], ax=ax, shrink=0.6)
    bar.set_label(f"scaled difference ({group1} - {group2})")
    bar = ax.figure.colorbar(ax.images[0], ax=ax, shrink=0.6)
    bar.set_label(f"scaled impact, all cells (overlay > {threshold})")
    ax.set_title(f"{group1} vs {group2}" if title is None else title)
    savefig_or_show(ax.figure, "group_diff", show=show, save=save, owns_figure=owns_figure)
    return ax


def _significant_diff(
    adata: AnnData,
    *,
    key: str,
    group: str | None,
    heading: str,
    label: str,
    figsize,
    fdr: float,
    values: str,
    cluster: bool,
    gene_sets,
    strip_prefix: bool,
    cmap,
    ax: Axes | None,
    show: bool | None,
    save,
) -> Axes:
    """The significant view of :func:`group_diff`."""
    table, fdr_table = calls_of_difference(
        adata, key=key, group=group, fdr=fdr, gene_sets=gene_sets, values=values, cluster=cluster
    )
    owns_figure = ax is None
    if ax is None:
        size = figsize or (calls_figsize(table, strip_prefix, extra_width=1.4) if not table.empty else (6.0, 3.0))
        _, ax = plt.subplots(figsize=size, layout="constrained")
    if table.empty:
        no_calls(ax, f"No (node, gene set) difference at FDR < {fdr:g} on a live node:\nnothing to show.")
        ax.set_title(heading)
    else:
        span = float(np.nanmax(np.abs(table.to_numpy(dtype=float))))
        span = span if span > 0 else 1.0
        norm = Normalize(vmin=-span, vmax=span)
        image = draw_calls(
            ax, table, fdr_table, cmap=cmap, norm=norm, set_labels=set_labels(table.columns, strip_prefix)
        )
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.6)
        # The bar is 0.6 of the Axes' height: a label longer than about 7 characters per inch of it is
        # cut at the figure's edge, so long group names go on a line of their own, then wrap.
        room = max(int(7 * 0.6 * ax.figure.get_figheight()), 16)
        bar.set_label("\n".join(textwrap.wrap(label, room, break_on_hyphens=False)) if len(label) > room else label)
        ax.set_title(f"{heading}\n({star_legend()}; grey: no call)", fontsize="medium")
    savefig_or_show(ax.figure, "group_diff", show=show, save=save, owns_figure=owns_figure)
    return ax
