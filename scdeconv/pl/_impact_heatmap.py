"""``sd.pl.impact_heatmap``: nodes x gene sets, the paper's panel (d): its calls, or the paper's view."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from scipy.cluster.hierarchy import leaves_list, linkage

from .._choices import PanelView, check_choice
from .._defaults import FDR, PANEL_D_THRESHOLD
from .._docs import inject_docs
from .._keys import HALLMARK_PREFIX, IMPACT_KEY
from .._results import carrying_modules, stored_result
from ..scoring import minmax_per_set, visible_nodes
from ._calls import call_order, called_table, calls_figsize, draw_calls, no_calls, star_legend
from ._utils import savefig_or_show

__all__ = ["impact_heatmap"]

# Text of a drawn cell whose set is not called itself but lies in the node's co-expression module.
MODULE_MARK = "m"


def _leaf_order(values: np.ndarray) -> np.ndarray:
    """Order of the rows of ``values`` by average-linkage clustering (identity below 3 rows)."""
    if values.shape[0] < 3:
        return np.arange(values.shape[0])
    z = linkage(np.nan_to_num(values, nan=0.0), method="average", metric="euclidean", optimal_ordering=True)
    return leaves_list(z)


def _select_sets(columns: pd.Index, gene_sets: Sequence[str] | str) -> list[str]:
    """Resolve ``gene_sets`` to column names; ``"HEME_METABOLISM"`` finds ``"HALLMARK_HEME_METABOLISM"``."""
    if isinstance(gene_sets, str):
        gene_sets = [gene_sets]
    chosen, unknown = [], []
    for name in gene_sets:
        if name in columns:
            chosen.append(name)
        elif HALLMARK_PREFIX + name in columns:
            chosen.append(HALLMARK_PREFIX + name)
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"Gene sets {unknown} are not in the impact table; available: {list(columns)}.")
    return list(dict.fromkeys(chosen))


def heatmap_table(
    adata: AnnData,
    *,
    key: str = IMPACT_KEY,
    threshold: float = PANEL_D_THRESHOLD,
    drop_dead: bool = True,
    cluster: bool = True,
    gene_sets: Sequence[str] | str | None = None,
    values: str = "impact",
) -> pd.DataFrame:
    """The table :func:`impact_heatmap` draws: scaled, filtered and ordered nodes x gene sets.

    Dead nodes are dropped first (``drop_dead``), then each set is min-max scaled across the
    remaining nodes (:func:`scdeconv.scoring.minmax_per_set`), nodes with no scaled score above
    ``threshold`` are hidden (:func:`scdeconv.scoring.visible_nodes`), and rows and columns are
    put in the leaf order of an average-linkage clustering (``cluster``). :func:`group_diff`
    uses the same table, so both heatmaps share their layout.

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` or its ``values`` table is missing.
    ValueError
        If no node is left to show.
    """
    result = stored_result(adata, key, "impact")
    if values not in result:
        raise KeyError(f"Did not find {values!r} in adata.uns[{key!r}]; it holds {list(result)}.")
    impact = pd.DataFrame(result[values]).astype(float)
    if gene_sets is not None:
        impact = impact[_select_sets(impact.columns, gene_sets)]
    if drop_dead and "node_stats" in result:
        dead = pd.Series(result["node_stats"]["dead"]).astype(bool).reindex(impact.index, fill_value=False)
        impact = impact.loc[~dead.to_numpy()]
    scaled = minmax_per_set(impact)
    scaled = scaled.loc[visible_nodes(scaled, threshold)]
    if scaled.empty:
        raise ValueError(
            f"No {'live ' if drop_dead else ''}node has a scaled score above threshold={threshold}; "
            "lower `threshold` (or pass drop_dead=False)."
        )
    if cluster:
        rows = _leaf_order(scaled.to_numpy())
        cols = _leaf_order(scaled.to_numpy().T)
        scaled = scaled.iloc[rows, cols]
    return scaled


def set_labels(names: Sequence[str], strip_prefix: bool) -> list[str]:
    """Tick labels of gene sets, ``"HALLMARK_"`` removed when ``strip_prefix``."""
    return [n.removeprefix(HALLMARK_PREFIX) if strip_prefix else n for n in names]


def default_figsize(table: pd.DataFrame, strip_prefix: bool = True) -> tuple[float, float]:
    """A figure size giving each cell about a quarter inch, plus room for the rotated set labels."""
    n_rows, n_cols = table.shape
    label = max((len(n) for n in set_labels(table.columns, strip_prefix)), default=0)
    return (min(3.0 + 0.25 * n_cols, 24.0), min(1.5 + 0.25 * n_rows + 0.08 * label, 24.0))


def draw_table(ax: Axes, table: pd.DataFrame, *, strip_prefix: bool, **imshow_kwargs) -> None:
    """Draw ``table`` (nodes x sets) with ``imshow`` and label its rows and columns."""
    ax.imshow(table.to_numpy(), aspect="auto", interpolation="nearest", **imshow_kwargs)
    ax.set_xticks(np.arange(table.shape[1]))
    ax.set_xticklabels(set_labels(table.columns, strip_prefix), rotation=90, fontsize="small")
    ax.set_yticks(np.arange(table.shape[0]))
    ax.set_yticklabels(table.index, fontsize="small")
    ax.set_xlabel("gene set")
    ax.set_ylabel("node")


def mark_significant(ax: Axes, significant: np.ndarray, fdr: float) -> None:
    """Dot the table cells where ``significant`` is true, with a legend "FDR < fdr" below the axes."""
    rows, cols = np.nonzero(significant)
    ax.scatter(cols, rows, s=6, c="white", edgecolors="black", linewidths=0.4, label=f"FDR < {fdr:g}")
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.02), fontsize="small", frameon=False)


def calls_of_impact(
    adata: AnnData,
    *,
    key: str = IMPACT_KEY,
    fdr: float = FDR,
    gene_sets: Sequence[str] | str | None = None,
    values: str = "impact",
    cluster: bool = True,
    modules: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The table the significant view of :func:`impact_heatmap` draws, its FDRs and its module marks.

    ``values`` of the live nodes where the null model's FDR is below ``fdr`` (NaN elsewhere), only
    nodes and sets with at least one call, ordered by :func:`scdeconv.pl._calls.call_order`. With
    ``modules``, also the sets that make up a node's strongest called co-expression module
    (:func:`scdeconv._results.carrying_modules`): the marks table holds :data:`MODULE_MARK` there
    (``""`` elsewhere), so a node named by its module is drawn, not left out.

    Raises
    ------
    KeyError
        If the result has no null model (``fdr``) or no ``values`` table.
    """
    result = stored_result(adata, key, "impact")
    if "fdr" not in result:
        raise KeyError(
            f"adata.uns[{key!r}] has no 'fdr', which the significant view draws: run "
            "`sd.tl.module_impact(adata, score='enrichment')` with n_null > 0, or pass view='paper'."
        )
    if values not in result:
        raise KeyError(f"Did not find {values!r} in adata.uns[{key!r}]; it holds {list(result)}.")
    table = pd.DataFrame(result[values]).astype(float)
    if gene_sets is not None:
        table = table[_select_sets(table.columns, gene_sets)]
    live = ~pd.Series(result["node_stats"]["dead"]).astype(bool).reindex(table.index, fill_value=True).to_numpy()
    fdr_table = pd.DataFrame(result["fdr"]).astype(float)
    carried = carrying_modules(result, fdr=fdr).reindex(columns=table.columns) != "" if modules else None
    called = called_table(table.loc[live], fdr_table, fdr, also=carried)
    marks = pd.DataFrame("", index=called.index, columns=called.columns)
    if carried is not None:
        marks = marks.mask(carried.reindex(index=called.index, columns=called.columns), MODULE_MARK)
    if called.empty:
        return called, fdr_table, marks
    ordered = call_order(called, cluster=cluster)
    return ordered, fdr_table, marks.loc[ordered.index, ordered.columns]


def _value_label(adata: AnnData, key: str, values: str) -> str:
    """Colour-bar label of a drawn impact table."""
    if values != "impact":
        return values
    score = stored_result(adata, key, "impact").get("params", {}).get("score")
    return "impact (enrichment z)" if score == "enrichment" else "impact"


@inject_docs
def impact_heatmap(
    adata: AnnData,
    *,
    key: str = IMPACT_KEY,
    view: PanelView = "significant",
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    threshold: float = PANEL_D_THRESHOLD,
    drop_dead: bool = True,
    cluster: bool = True,
    gene_sets: Sequence[str] | str | None = None,
    strip_prefix: bool = True,
    values: str = "impact",
    fdr: float | None = None,
    only_significant: bool = False,
    modules: bool = True,
    cmap: str | Colormap | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes:
    """Heatmap of gene-set impact on the representation nodes (the paper's panel d).

    ``view="significant"`` (default) draws only what the null model of
    :func:`scdeconv.tl.module_impact` supports: the (node, set) cells whose FDR is below ``fdr``,
    on live nodes (dead and rare ones never), and only nodes and gene sets with at least one call.
    Nodes (rows) are ordered by hierarchical clustering of their calls and each set is put under
    the node where it is strongest, so the calls run along the diagonal. The colour is the score
    itself (``values``), its colour bar spanning the drawn values; stars give the FDR
    (``*`` < 0.05, ``**`` < 0.01, ``***`` < 0.001); cells without a call are light grey. When
    nothing is called, the axes say so. Under ``null="coexpression"`` a set inside a co-expression
    module cannot stand out from its module mates, so a node whose programme is a whole module
    calls the module instead (:func:`scdeconv.tl.annotate_nodes` names it so); with ``modules``,
    the sets that module is made of are drawn on that node too, marked ``m``.

    ``view="paper"`` is the paper's figure: each gene set min-max scaled across nodes, nodes with
    no scaled score above ``threshold`` hidden, dead nodes dropped, rows and columns clustered.
    Every set then has a bright cell, significant or not: mark the calls with ``fdr``.

    Parameters
    ----------
    {result:impact}
    view
        ``"significant"`` (calls only) or ``"paper"`` (min-max scaled, as published).
    {figure}
    threshold
        Paper view: show only nodes with at least one scaled score above this value (paper:
        0.7). ``0`` shows every node that has any non-minimal score.
    drop_dead
        Paper view: drop nodes flagged ``dead`` (dead or rare) in
        ``adata.uns[key]["node_stats"]`` before scaling. The significant view always does.
    cluster
        Order nodes (and, in the paper view, gene sets) by average-linkage hierarchical
        clustering (Euclidean distance, optimal leaf ordering); ``False`` keeps the stored order.
    gene_sets
        Show only these gene sets (full names, or without the ``HALLMARK_`` prefix).
    strip_prefix
        Drop the ``HALLMARK_`` prefix from the gene-set labels.
    values
        Which nodes x sets table of ``adata.uns[key]`` to draw (default the impact score;
        ``"null_z"`` for the null model's z-score).
    fdr
        Significant view: the FDR below which a (node, set) pair is a call (default 0.05).
        Paper view: mark with a dot the cells whose FDR is below this value (``None``: no marks).
    only_significant
        Paper view, with ``fdr``: blank the cells that are not significant instead of marking
        the others.
    modules
        Significant view: also draw, marked ``m``, the sets of each node's strongest called
        co-expression module (``False``: set calls only).
    cmap
        Colormap of the drawn values (default ``"viridis"``).
    {ax_show_save}

    Returns
    -------
    The heatmap's Axes (the colorbar is a separate Axes of the same figure). Tick labels give
    the shown nodes (y) and gene sets (x) in plotted order. In the significant view,
    ``ax.images[0]`` holds the drawn values, masked where there is no call, and the stars (and
    ``m`` marks) are the Axes' texts; with no call, the Axes holds only the message.

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` is missing (run ``sd.tl.module_impact(adata)`` first), or the
        significant view finds no null model (pass ``view="paper"``).
    ValueError
        If no node passes the paper view's filters, or ``gene_sets`` names unknown sets.

    Examples
    --------
    >>> import scdeconv as sd
    >>> sd.pl.impact_heatmap(adata)  # doctest: +SKIP
    >>> sd.pl.impact_heatmap(adata, view="paper", threshold=0.7)  # doctest: +SKIP
    """
    check_choice("view", view, PanelView)
    cmap = "viridis" if cmap is None else cmap
    if view == "significant":
        return _significant_heatmap(
            adata,
            key=key,
            title=title,
            figsize=figsize,
            cluster=cluster,
            gene_sets=gene_sets,
            strip_prefix=strip_prefix,
            values=values,
            fdr=FDR if fdr is None else fdr,
            modules=modules,
            cmap=cmap,
            ax=ax,
            show=show,
            save=save,
        )
    table = heatmap_table(
        adata, key=key, threshold=threshold, drop_dead=drop_dead, cluster=cluster, gene_sets=gene_sets, values=values
    )
    owns_figure = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or default_figsize(table, strip_prefix), layout="constrained")
    significant = None
    if fdr is not None:
        result = stored_result(adata, key, "impact")
        if "fdr" not in result:
            raise KeyError(
                f"adata.uns[{key!r}] has no 'fdr': run `sd.tl.module_impact(adata, score='enrichment')` "
                "with n_null > 0."
            )
        significant = pd.DataFrame(result["fdr"]).loc[table.index, table.columns].to_numpy() < fdr
        if only_significant:
            table = table.where(significant)
    draw_table(ax, table, strip_prefix=strip_prefix, cmap=cmap, vmin=0.0, vmax=1.0)
    if significant is not None and not only_significant:
        mark_significant(ax, significant, fdr)
    colorbar = ax.figure.colorbar(ax.images[-1], ax=ax, shrink=0.6)
    colorbar.set_label(f"scaled {values} (min-max per set)")
    ax.set_title("gene-set impact per node" if title is None else title)
    savefig_or_show(ax.figure, "impact_heatmap", show=show, save=save, owns_figure=owns_figure)
    return ax


def _significant_heatmap(
    adata: AnnData,
    *,
    key: str,
    title: str | None,
    figsize: tuple[float, float] | None,
    cluster: bool,
    gene_sets,
    strip_prefix: bool,
    values: str,
    fdr: float,
    modules: bool,
    cmap,
    ax: Axes | None,
    show: bool | None,
    save,
) -> Axes:
    """The significant view of :func:`impact_heatmap`."""
    table, fdr_table, marks = calls_of_impact(
        adata, key=key, fdr=fdr, gene_sets=gene_sets, values=values, cluster=cluster, modules=modules
    )
    owns_figure = ax is None
    if ax is None:
        size = figsize or (calls_figsize(table, strip_prefix, extra_width=1.2) if not table.empty else (6.0, 3.0))
        _, ax = plt.subplots(figsize=size, layout="constrained")
    heading = "gene sets called per node" if title is None else title
    if table.empty:
        no_calls(ax, f"No (node, gene set) pair at FDR < {fdr:g} on a live node:\nnothing to show.")
        ax.set_title(heading)
    else:
        drawn = table.to_numpy(dtype=float)
        low, high = float(np.nanmin(drawn)), float(np.nanmax(drawn))
        low = min(low, 0.0)
        norm = Normalize(vmin=low, vmax=high if high > low else low + 1.0)
        image = draw_calls(
            ax, table, fdr_table, cmap=cmap, norm=norm, set_labels=set_labels(table.columns, strip_prefix), marks=marks
        )
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.6)
        bar.set_label(_value_label(adata, key, values))
        marked = (marks == MODULE_MARK).to_numpy().any()
        module_key = f"; {MODULE_MARK}: in the node's co-expression module" if marked else ""
        ax.set_title(f"{heading}\n({star_legend()}{module_key}; grey: no call)", fontsize="medium")
    savefig_or_show(ax.figure, "impact_heatmap", show=show, save=save, owns_figure=owns_figure)
    return ax
