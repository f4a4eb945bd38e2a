"""Per-node facts from the representation: which cells activate a node, and which nodes are dead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._defaults import (
    ACTIVE_QUANTILE,
    DEAD_RELATIVE_STD,
    FIRING_RANGE_FRACTION,
    MIN_ACTIVE_CELLS,
    MIN_ACTIVE_FRACTION,
)


def active_cells(latent: np.ndarray, quantile: float = ACTIVE_QUANTILE) -> np.ndarray:
    """Cells x nodes 0/1 weights: the cells where each node's activation reaches its ``quantile``.

    A program active in a minority of cells drives the node mostly there; averaging attributions
    over these cells, not all cells, keeps the program from being diluted by the rest.
    """
    latent = np.asarray(latent, dtype=np.float64)
    return (latent >= np.quantile(latent, quantile, axis=0, keepdims=True)).astype(np.float64)


def firing_cells(latent: np.ndarray) -> np.ndarray:
    """Per node, the cells that fire it: activation above its floor by ``FIRING_RANGE_FRACTION`` of its range."""
    latent = np.asarray(latent, dtype=np.float64)
    low, high = latent.min(axis=0), latent.max(axis=0)
    return latent - low > FIRING_RANGE_FRACTION * (high - low)


def min_active_cells(n_cells: int) -> int:
    """Fewest cells a node must fire in to be reported: ``MIN_ACTIVE_CELLS``, or ``MIN_ACTIVE_FRACTION`` of all."""
    return int(max(MIN_ACTIVE_CELLS, np.ceil(MIN_ACTIVE_FRACTION * n_cells)))


def node_status(latent: np.ndarray, no_signal: np.ndarray | None = None) -> np.ndarray:
    """Per node ``"dead"``, ``"rare"`` or ``"live"``: the one rule of which nodes can be reported.

    ``"dead"`` when the activation barely varies across cells (standard deviation at most
    ``DEAD_RELATIVE_STD`` of the largest node's) or ``no_signal`` flags a node that is not rare
    (e.g. no gene set has any impact on it); ``"rare"`` when it fires in fewer than :func:`min_active_cells` cells (a
    node of two cells is an outlier detector, not a programme); else ``"live"``. Neither dead nor
    rare nodes get statistics, gene sets or genes attributed.
    """
    latent = np.asarray(latent, dtype=np.float64)
    std = latent.std(axis=0)
    constant = std <= DEAD_RELATIVE_STD * max(std.max(initial=0.0), 1e-12)
    rare = ~constant & (firing_cells(latent).sum(axis=0) < min_active_cells(latent.shape[0]))
    if no_signal is not None:  # a rare node's flat profile (its top quarter ties at 0) is its rarity
        constant |= np.asarray(no_signal, dtype=bool) & ~rare
    return np.where(constant, "dead", np.where(rare, "rare", "live"))


def node_statistics(latent: np.ndarray, impact: pd.DataFrame) -> pd.DataFrame:
    """Per node: activation spread, cells it fires in, largest impact, and whether it can be reported.

    ``status`` is :func:`node_status`, with a node on which no gene set has any impact dead too;
    ``dead`` is ``status != "live"``: neither dead nor rare nodes get statistics, gene sets or
    genes attributed.
    """
    latent = np.asarray(latent, dtype=np.float64)
    status = node_status(latent, no_signal=(impact.to_numpy() == 0).all(axis=1))
    return pd.DataFrame(
        {
            "activation_std": latent.std(axis=0),
            "n_active": firing_cells(latent).sum(axis=0).astype(np.int64),
            "max_impact": impact.max(axis=1).to_numpy(),
            "status": status,
            "dead": status != "live",
        },
        index=impact.index,
    )


def redundant_nodes(latent: np.ndarray, live: np.ndarray, strength: np.ndarray, threshold: float) -> np.ndarray:
    """Per node, the index of a stronger live node its activation duplicates (``|r| >= threshold``), else -1.

    Correlation over cells of the activations; of two duplicates the one with the larger
    ``strength`` (e.g. its largest impact) is kept, the other points to it. Nodes that are not
    live get -1 (they are dead or rare already).
    """
    latent = np.asarray(latent, dtype=np.float64)
    out = np.full(latent.shape[1], -1, dtype=np.int64)
    idx = np.flatnonzero(live)
    if len(idx) < 2:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(latent[:, idx], rowvar=False))
    np.fill_diagonal(corr, 0.0)
    order = idx[np.argsort(-np.asarray(strength)[idx], kind="stable")]  # strongest first
    position = {node: i for i, node in enumerate(idx)}
    kept: list[int] = []
    for node in order:
        twins = [k for k in kept if abs(corr[position[node], position[k]]) >= threshold]
        if twins:
            out[node] = twins[0]
        else:
            kept.append(node)
    return out


def group_lift(active: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Nodes x groups: each group's share of a node's active cells over its share of all cells.

    ``active`` is cells x nodes 0/1 (:func:`active_cells`); ``labels`` the group of each cell
    (``-1`` left out). 1 is what chance gives; a node active only in one group of a tenth of the
    cells reaches 10 there.
    """
    active = np.asarray(active, dtype=np.float64)
    keep = np.asarray(labels) >= 0
    onehot = np.zeros((int(keep.sum()), n_groups))
    onehot[np.arange(int(keep.sum())), np.asarray(labels)[keep]] = 1.0
    counts = active[keep].T @ onehot  # nodes x groups: active cells per group
    share_active = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    share_all = onehot.sum(axis=0) / max(int(keep.sum()), 1)
    return np.divide(share_active, share_all, out=np.zeros_like(share_active), where=share_all > 0)
