"""``sd.pl.group_diff_dotplot``: groups x gene sets, dot size = -log10 FDR, colour = signed effect."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import Colormap

from .._defaults import FDR
from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY
from .._results import stored_result
from ._calls import no_calls
from ._dots import draw_dots, size_cap, size_legend
from ._group_diff import is_all_groups
from ._impact_heatmap import _select_sets, set_labels
from ._utils import savefig_or_show

__all__ = ["group_diff_dotplot"]

# What the effect of set_tests is, by kind of replicate.
_EFFECT = {"cells": "rank-biserial r", "samples": "Cohen's d"}


def dotplot_tables(
    result,
    *,
    fdr: float,
    groups: Sequence[str] | None = None,
    gene_sets: Sequence[str] | str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (groups x gene sets) FDR and effect tables of the per-set activity tests the dot plot shows.

    Rows: the categories of a ``group1="all"`` result in their stored order (or ``groups``); a
    two-group result gives one row, ``group1``. Columns: the gene sets with an FDR below ``fdr`` in
    some shown row (or ``gene_sets``), in :func:`diagonal_order`. No call: no columns.
    """
    tests = result["set_tests"]
    if is_all_groups(result):
        long = tests.assign(group=tests["group"].astype(str))
        order = [str(g) for g in result["diff"]]
    else:
        long = tests.rename_axis("gene_set").reset_index().assign(group=str(result["params"].get("group1", "group1")))
        order = [str(result["params"].get("group1", "group1"))]
    missing = {"gene_set", "effect", "fdr"} - set(long.columns)
    if missing:
        raise KeyError(f"The set tests of this result lack {sorted(missing)}: rerun `sd.tl.group_diff`.")
    fdr_table = long.pivot(index="group", columns="gene_set", values="fdr").astype(float)
    effect = long.pivot(index="group", columns="gene_set", values="effect").astype(float)
    if groups is not None:
        unknown = [g for g in map(str, groups) if g not in order]
        if unknown:
            raise ValueError(f"groups {unknown} are not compared in this result; it has {order}.")
        order = [str(g) for g in groups]
    fdr_table, effect = fdr_table.loc[order], effect.loc[order]
    called = fdr_table.to_numpy() < fdr
    if gene_sets is not None:
        sets = _select_sets(fdr_table.columns, gene_sets)
    else:
        sets = list(fdr_table.columns[called.any(axis=0)])
    if not sets:
        return fdr_table[[]], effect[[]]
    sets = diagonal_order(effect[sets], fdr_table[sets] < fdr)
    return fdr_table[sets], effect[sets]


def diagonal_order(effect: pd.DataFrame, called: pd.DataFrame) -> list[str]:
    """Gene sets (columns) under the group (row) where they are called most strongly up, strongest first.

    A groups-vs-rest plot reads as "what each group activates": a set goes under the row of its
    largest called positive effect; sets called only down follow, each by its strongest call.
    """
    values = np.nan_to_num(np.where(called.to_numpy(), effect.to_numpy(dtype=float), 0.0), nan=0.0)
    up = np.clip(values, 0.0, None)
    has_up = up.max(axis=0) > 0
    row = np.where(has_up, up.argmax(axis=0), len(effect) + np.abs(values).argmax(axis=0))
    peak = np.where(has_up, up.max(axis=0), np.abs(values).max(axis=0))
    return [effect.columns[i] for i in np.lexsort((-peak, row))]


@inject_docs
def group_diff_dotplot(
    adata: AnnData,
    *,
    key: str = GROUP_DIFF_KEY,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    fdr: float = FDR,
    groups: Sequence[str] | None = None,
    gene_sets: Sequence[str] | str | None = None,
    strip_prefix: bool = True,
    cmap: str | Colormap = "RdBu_r",
    dot_max: float = 120.0,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes:
    """Dot plot of groups x gene sets: which programmes each group activates, from the set tests.

    The per-set activity tests of :func:`scdeconv.tl.group_diff` (``set_tests``) in the layout of
    ``sc.pl.rank_genes_groups_dotplot``: one row per category of a ``group1="all"`` result (each
    compared with the rest of the cells; a two-group result gives one row, ``group1``), one column
    per gene set called (FDR below ``fdr``) in at least one shown group. A dot's area grows with
    ``-log10(fdr)`` up to full size at the smallest FDR the null resolves (``1 / (1 + n_null)``,
    the floor the tests report; FDR ``1e-3`` without a competitive null). Its colour is the signed
    effect (rank-biserial correlation of the cells' activities, or Cohen's d over samples with a
    ``sample_key``) on a diverging scale symmetric around 0: red where the programme is more
    active in the group than in the rest (``direction == "up"``). Calls get a black edge. Sets
    are ordered along the diagonal: each under the group where it is called most strongly up
    (sets called only down last), so each group's programmes stand together. When no set is
    called, the axes say so.

    Parameters
    ----------
    {result:group_diff}
    {figure}
    fdr
        A set is a call below this FDR; the columns are the sets called in some shown group.
    groups
        Show these categories, in this order (default: all, in the order of ``groupby``).
    gene_sets
        Show these gene sets (full names, or without the ``HALLMARK_`` prefix) instead of the
        called ones.
    strip_prefix
        Drop the ``HALLMARK_`` prefix from the gene-set labels.
    cmap
        Diverging colormap of the effect, centred at 0.
    dot_max
        Marker area (points^2) of the largest dot.
    {ax_show_save}

    Returns
    -------
    The Axes: gene sets as x tick labels, groups as y tick labels, the dots in
    ``ax.collections[0]`` (row by row), a colorbar of the effect (a separate Axes, limits
    symmetric around 0) and a legend of dot sizes. Without a call, the Axes holds only the
    message.

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` is missing: run ``sd.tl.group_diff(adata, groupby, "all")`` first.

    Examples
    --------
    >>> sd.tl.group_diff(adata, "paul15_clusters", "all")  # doctest: +SKIP
    >>> sd.pl.group_diff_dotplot(adata, fdr=0.05)  # doctest: +SKIP
    """
    result = stored_result(adata, key, "group_diff")
    params = dict(result.get("params", {}))
    fdr_table, effect = dotplot_tables(result, fdr=fdr, groups=groups, gene_sets=gene_sets)
    every = is_all_groups(result)
    if title is None:
        title = (
            f"gene-set activity: each {params.get('groupby', 'group')} vs rest"
            if every
            else f"gene-set activity: {params.get('group1', 'group1')} vs {params.get('group2', 'rest')}"
        )
    labels = set_labels(fdr_table.columns, strip_prefix)
    n_rows, n_cols = fdr_table.shape
    owns_figure = ax is None
    if ax is None:
        if n_cols:
            row_label = max((len(g) for g in fdr_table.index), default=0)
            set_label = max((len(s) for s in labels), default=0)
            width = 3.4 + 0.3 * n_cols + 0.07 * row_label
            height = 1.4 + 0.3 * n_rows + 0.075 * set_label
            size = (min(max(width, 5.0), 24.0), min(max(height, 3.0), 24.0))
        else:
            size = (6.0, 3.0)
        _, ax = plt.subplots(figsize=figsize or size, layout="constrained")
    if n_cols == 0:
        no_calls(ax, f"No gene set called at FDR < {fdr:g} in any group\n(per-set activity tests): nothing to show.")
        ax.set_title(title)
        savefig_or_show(ax.figure, "group_diff_dotplot", show=show, save=save, owns_figure=owns_figure)
        return ax
    cap = size_cap(int(params.get("n_null", 0)))
    called = fdr_table.to_numpy(dtype=float) < fdr
    dots = draw_dots(ax, fdr_table.to_numpy(), effect.to_numpy(), called=called, cap=cap, dot_max=dot_max, cmap=cmap)
    ax.set_xticks(np.arange(n_cols), labels, rotation=90, fontsize="small")
    ax.set_yticks(np.arange(n_rows), list(fdr_table.index), fontsize="small")
    ax.set_xlabel("gene set")
    ax.set_ylabel(str(params.get("groupby", "group")) if every else "group")
    replicates = params.get("replicates", "cells")
    bar = ax.figure.colorbar(dots, ax=ax, shrink=0.6 if n_rows > 6 else 0.9, pad=0.02)
    against = "group vs rest" if every else f"{params.get('group1', 'group1')} vs {params.get('group2', 'rest')}"
    bar.set_label(f"effect ({_EFFECT.get(replicates, 'effect')}), {against}")
    size_legend(ax, cap, dot_max, x_anchor=1.02, borderaxespad=0.0)
    ax.set_title(title)
    savefig_or_show(ax.figure, "group_diff_dotplot", show=show, save=save, owns_figure=owns_figure)
    return ax
