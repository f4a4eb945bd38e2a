"""The significant view of panels d and e: only (node, set) calls, ordered, starred, colour to the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from scipy.cluster.hierarchy import leaves_list, linkage

from .._defaults import FDR_STARS
from .._keys import HALLMARK_PREFIX

# Colour of the (node, set) cells without a call, drawn behind the calls.
NO_CALL_COLOUR = "#eeeeee"


def called_table(
    values: pd.DataFrame, fdr: pd.DataFrame, alpha: float, also: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``values`` where ``fdr < alpha`` or ``also`` (NaN elsewhere), keeping only rows and columns with a call."""
    fdr = fdr.reindex(index=values.index, columns=values.columns).astype(float)
    shown = fdr.to_numpy() < alpha
    if also is not None:
        shown |= also.reindex(index=values.index, columns=values.columns, fill_value=False).to_numpy(dtype=bool)
    called = values.astype(float).where(shown)
    keep_rows, keep_cols = called.notna().any(axis=1), called.notna().any(axis=0)
    return called.loc[keep_rows, keep_cols]


def call_order(table: pd.DataFrame, cluster: bool = True) -> pd.DataFrame:
    """Rows (nodes) by average-linkage clustering of their calls, columns (sets) along the diagonal.

    Each gene set goes under the node where its call is largest in absolute value (ties: the
    larger value first), so the plot reads from top left to bottom right. ``cluster=False`` keeps
    the stored node order.
    """
    filled = np.nan_to_num(table.to_numpy(dtype=float), nan=0.0)
    rows = np.arange(len(table))
    if cluster and len(table) >= 3:
        rows = leaves_list(linkage(filled, method="average", metric="euclidean", optimal_ordering=True))
    filled = filled[rows]
    strongest = np.abs(filled).argmax(axis=0)
    peak = np.abs(filled).max(axis=0)
    cols = np.lexsort((-peak, strongest))
    return table.iloc[rows, cols]


def star_labels(fdr: np.ndarray, levels: tuple[float, ...] = FDR_STARS) -> np.ndarray:
    """``"*"`` per level of ``levels`` that ``fdr`` is below (``"***"``: below all three); ``""`` else."""
    fdr = np.asarray(fdr, dtype=float)
    count = sum((np.nan_to_num(fdr, nan=1.0) < level).astype(int) for level in levels)
    return np.array(["*" * int(n) for n in np.ravel(count)], dtype=object).reshape(fdr.shape)


def star_legend(levels: tuple[float, ...] = FDR_STARS) -> str:
    """The key of the stars, e.g. ``"* FDR < 0.05, ** < 0.01, *** < 0.001"``."""
    parts = [f"{'*' * (i + 1)} {'FDR ' if i == 0 else ''}< {level:g}" for i, level in enumerate(levels)]
    return ", ".join(parts)


def calls_figsize(table: pd.DataFrame, strip_prefix: bool = True, extra_width: float = 0.0) -> tuple[float, float]:
    """About a third of an inch per cell (room for three stars), plus the labels and the colour bar."""
    n_rows, n_cols = table.shape
    label = max((len(str(n).removeprefix(HALLMARK_PREFIX if strip_prefix else "")) for n in table.columns), default=0)
    width = 2.6 + extra_width + 0.34 * n_cols
    height = 1.8 + 0.3 * n_rows + 0.075 * label
    return (min(max(width, 4.5), 24.0), min(max(height, 3.0), 24.0))


def draw_calls(
    ax: Axes,
    table: pd.DataFrame,
    fdr: pd.DataFrame,
    *,
    cmap: str | Colormap,
    norm: Normalize,
    set_labels: list[str],
    levels: tuple[float, ...] = FDR_STARS,
    marks: pd.DataFrame | None = None,
):
    """Draw the calls of ``table`` (NaN: no call, light grey) with their FDR stars; return the image.

    ``marks`` (text per cell, ``""`` for none) labels the drawn cells that have no star.
    """
    import matplotlib.pyplot as plt

    colormap = plt.get_cmap(cmap).with_extremes(bad=NO_CALL_COLOUR)
    values = table.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", interpolation="nearest", cmap=colormap, norm=norm)
    stars = star_labels(fdr.loc[table.index, table.columns].to_numpy(dtype=float), levels)
    if marks is not None:
        marks = marks.reindex(index=table.index, columns=table.columns, fill_value="").to_numpy(dtype=object)
        stars = np.where(stars == "", marks, stars)
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value) or not stars[i, j]:
            continue
        red, green, blue, _ = colormap(norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(j, i, stars[i, j], ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(np.arange(table.shape[1]))
    ax.set_xticklabels(set_labels, rotation=90, fontsize="small")
    ax.set_yticks(np.arange(table.shape[0]))
    ax.set_yticklabels(table.index, fontsize="small")
    ax.set_xticks(np.arange(table.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(table.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="major", visible=False)  # scanpy's figure params turn the major grid on
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("gene set")
    ax.set_ylabel("node")
    return image


def no_calls(ax: Axes, message: str) -> None:
    """Write ``message`` in the middle of an empty ``ax`` (a plot without calls is a result, not an error)."""
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize="medium")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
