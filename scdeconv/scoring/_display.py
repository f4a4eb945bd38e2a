"""The paper's display transforms: min-max scaling per set, the node filter, the scaled difference."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._defaults import PANEL_D_THRESHOLD


def minmax_per_set(impact: pd.DataFrame) -> pd.DataFrame:
    """Min-max scale each gene set (column) across nodes to [0, 1], as the paper's heatmaps do.

    A set with the same impact on every node scales to 0.
    """
    low = impact.min(axis=0)
    span = impact.max(axis=0) - low
    return (impact - low) / span.where(span > 0, np.inf)


def visible_nodes(scaled: pd.DataFrame, threshold: float = PANEL_D_THRESHOLD) -> pd.Index:
    """Nodes with at least one scaled score above ``threshold`` (the paper hides the rest)."""
    return scaled.index[(scaled > threshold).any(axis=1)]


def scaled_difference(diff: pd.DataFrame) -> pd.DataFrame:
    """Scale a difference table by its largest absolute value, to [-1, 1] (the paper's panel e)."""
    top = float(np.nanmax(np.abs(diff.to_numpy()))) if diff.size else 0.0
    return diff / top if top > 0 else diff * 0.0
