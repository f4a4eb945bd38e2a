"""Impact of gene sets on representation nodes, from saliency (numpy only).

Two scores, both from attributions streamed by :mod:`scdeconv._module.saliency`:

- ``"median"``, the paper's (Kinalis et al. 2019): for each cell, the median |saliency| over the
  genes of S present in the data; then the mean over cells.
- ``"enrichment"`` (default): how much more the genes of S drive node j than genes of the same
  expression level do. For node j, the mean |attribution| of each gene over cells is z-scored
  among the genes of its expression bin; the set's score is the Stouffer sum
  ``sum(z[S]) / sqrt(|S|)``. It is comparable across nodes and sets, and unaffected by a node's
  overall gain or by the typical attribution of a gene's expression level, the two things that
  dominate the paper's median.

The module also holds the paper's display transforms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "binned_zscores",
    "expression_bins",
    "log_ratio",
    "minmax_per_set",
    "scaled_difference",
    "set_enrichment",
    "visible_nodes",
]

SCORES: tuple[str, ...] = ("enrichment", "median")


def expression_bins(mean_expression: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin index (0..n_bins-1) of each gene by its mean expression (equal-count bins)."""
    ranks = np.argsort(np.argsort(mean_expression, kind="stable"), kind="stable")
    return (ranks * n_bins // max(len(ranks), 1)).astype(np.int64)


def binned_zscores(profile: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Z-score each row of ``profile`` (nodes x genes) among the genes of each expression bin.

    Rows with no spread within a bin (a dead node) get zeros there.
    """
    z = np.zeros_like(profile, dtype=np.float64)
    for b in np.unique(bins):
        cols = bins == b
        block = profile[:, cols].astype(np.float64)
        spread = block.std(axis=1, keepdims=True)
        z[:, cols] = np.where(
            spread > 0, (block - block.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1), 0
        )
    return z


def log_ratio(profile1: np.ndarray, profile2: np.ndarray) -> np.ndarray:
    """``log(profile1 / profile2)`` per node and gene, with a small per-node floor against zeros."""
    floor = 1e-3 * np.maximum((profile1 + profile2).mean(axis=1, keepdims=True) / 2, 1e-12)
    return np.log(profile1 + floor) - np.log(profile2 + floor)


def set_enrichment(z: np.ndarray, set_columns: list[np.ndarray]) -> np.ndarray:
    """Stouffer combination of gene z-scores over each set: nodes x sets, ``sum(z[S]) / sqrt(|S|)``."""
    return np.stack([z[:, cols].sum(axis=1) / np.sqrt(len(cols)) for cols in set_columns], axis=1)


def minmax_per_set(impact: pd.DataFrame) -> pd.DataFrame:
    """Min-max scale each gene set (column) across nodes to [0, 1], as the paper's heatmaps do.

    A set with the same impact on every node scales to 0.
    """
    low = impact.min(axis=0)
    span = impact.max(axis=0) - low
    return (impact - low) / span.where(span > 0, np.inf)


def visible_nodes(scaled: pd.DataFrame, threshold: float = 0.7) -> pd.Index:
    """Nodes with at least one scaled score above ``threshold`` (the paper hides the rest)."""
    return scaled.index[(scaled > threshold).any(axis=1)]


def scaled_difference(diff: pd.DataFrame) -> pd.DataFrame:
    """Scale a difference table by its largest absolute value, to [-1, 1] (the paper's panel e)."""
    top = float(np.nanmax(np.abs(diff.to_numpy()))) if diff.size else 0.0
    return diff / top if top > 0 else diff * 0.0
