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
    ``DEAD_RELATIVE_STD`` of the largest node's) or ``no_signal`` flags it (e.g. no gene set has
    any impact on it); ``"rare"`` when it fires in fewer than :func:`min_active_cells` cells (a
    node of two cells is an outlier detector, not a programme); else ``"live"``. Neither dead nor
    rare nodes get statistics, gene sets or genes attributed.
    """
    latent = np.asarray(latent, dtype=np.float64)
    std = latent.std(axis=0)
    constant = std <= DEAD_RELATIVE_STD * max(std.max(initial=0.0), 1e-12)
    if no_signal is not None:
        constant |= np.asarray(no_signal, dtype=bool)
    rare = ~constant & (firing_cells(latent).sum(axis=0) < min_active_cells(latent.shape[0]))
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
