"""What the two dot plots share: dot area from -log10 FDR, colour symmetric around 0, calls edged, size legend."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize

from .._defaults import FDR_STARS

# -log10 FDR at which a dot reaches full size without a competitive null (n_null=0): FDR 1e-3.
DEFAULT_SIZE_CAP = 3.0


def size_cap(n_null: int) -> float:
    """-log10 of the smallest FDR the tests report: the null's floor ``1 / (1 + n_null)``, else FDR 1e-3."""
    return float(np.log10(1 + n_null)) if n_null > 0 else DEFAULT_SIZE_CAP


def dot_sizes(fdr: np.ndarray, cap: float, dot_max: float) -> np.ndarray:
    """Marker areas: ``dot_max`` times ``-log10 FDR / cap`` (clipped to 0..1), plus 2 so no dot vanishes."""
    neglog = -np.log10(np.clip(np.nan_to_num(np.asarray(fdr, dtype=float), nan=1.0), 1e-300, 1.0))
    return dot_max * np.clip(neglog / cap, 0.0, 1.0) + 2.0


def size_legend_levels(cap: float) -> list[tuple[float, str]]:
    """The FDRs of the size legend: the star levels the null resolves, then its floor when coarser."""
    floor = 10.0**-cap
    levels = [(q, f"FDR {q:g}") for q in FDR_STARS if q >= floor * 0.999]
    if not levels or levels[-1][0] > floor * 1.05:
        levels.append((floor, f"FDR {floor:.2g} (floor)"))
    return levels


def draw_dots(
    ax: Axes, fdr: np.ndarray, values: np.ndarray, *, called: np.ndarray, cap: float, dot_max: float, cmap
) -> PathCollection:
    """Rows x columns of dots: area from ``fdr`` (full at ``cap``), colour ``values`` symmetric around 0.

    ``called`` dots get a black edge; the axes limits frame the grid.
    """
    n_rows, n_cols = fdr.shape
    xx, yy = np.meshgrid(np.arange(n_cols), np.arange(n_rows))
    values = np.asarray(values, dtype=float)
    span = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    span = span if span > 0 else 1.0
    dots = ax.scatter(
        xx.ravel(),
        yy.ravel(),
        s=dot_sizes(fdr, cap, dot_max).ravel(),
        c=np.nan_to_num(values, nan=0.0).ravel(),
        cmap=cmap,
        norm=Normalize(vmin=-span, vmax=span),
        edgecolors=np.where(np.asarray(called).ravel(), "black", "none"),
        linewidths=0.8,
    )
    ax.set_xlim(-0.6, n_cols - 0.4)
    ax.set_ylim(n_rows - 0.4, -0.6)
    ax.grid(False)
    return dots


def size_legend(ax: Axes, cap: float, dot_max: float, *, x_anchor: float, **legend_kwargs) -> None:
    """The legend of dot sizes at the FDRs of :func:`size_legend_levels`, outside the axes at ``x_anchor``."""
    levels = size_legend_levels(cap)
    handles = [
        ax.scatter([], [], s=dot_sizes(np.array([q]), cap, dot_max)[0], c="grey", edgecolors="black") for q, _ in levels
    ]
    ax.legend(
        handles,
        [label for _, label in levels],
        title="dot size",
        loc="upper left",
        bbox_to_anchor=(x_anchor, 1.0),
        frameon=False,
        fontsize="small",
        **legend_kwargs,
    )
