"""Per-node facts from the representation: which cells activate a node, and which nodes are dead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._defaults import ACTIVE_QUANTILE, DEAD_RELATIVE_STD


def active_cells(latent: np.ndarray, quantile: float = ACTIVE_QUANTILE) -> np.ndarray:
    """Cells x nodes 0/1 weights: the cells where each node's activation reaches its ``quantile``.

    A program active in a minority of cells drives the node mostly there; averaging attributions
    over these cells, not all cells, keeps the program from being diluted by the rest.
    """
    latent = np.asarray(latent, dtype=np.float64)
    return (latent >= np.quantile(latent, quantile, axis=0, keepdims=True)).astype(np.float64)


def node_statistics(latent: np.ndarray, impact: pd.DataFrame) -> pd.DataFrame:
    """Per node: activation spread over cells, largest impact, and whether it is dead.

    A node is dead when its activation barely varies across cells (standard deviation at most
    ``DEAD_RELATIVE_STD`` of the largest node's) or no gene set has any impact on it.
    """
    std = np.asarray(latent, dtype=np.float64).std(axis=0)
    max_impact = impact.max(axis=1).to_numpy()
    dead = (std <= DEAD_RELATIVE_STD * max(std.max(), 1e-12)) | (impact.to_numpy() == 0).all(axis=1)
    return pd.DataFrame({"activation_std": std, "max_impact": max_impact, "dead": dead}, index=impact.index)
