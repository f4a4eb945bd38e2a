"""Forward passes over all cells in batches (no gradients)."""

from __future__ import annotations

import numpy as np
import torch

from .autoencoder import Autoencoder
from .training import batches, dense_rows


@torch.no_grad()
def embed(module: Autoencoder, counts, *, batch_size: int = 1024, device: torch.device | str = "cpu") -> np.ndarray:
    """Representation of every cell, cells x nodes (float32)."""
    device = torch.device(device)
    module.to(device).eval()
    out = np.empty((counts.shape[0], module.n_latent), dtype=np.float32)
    for rows in batches(counts.shape[0], batch_size):
        x = module.prepare_input(dense_rows(counts, rows, device))
        out[rows] = module.encode(x).cpu().numpy()
    return out


@torch.no_grad()
def input_means(
    module: Autoencoder, counts, *, batch_size: int = 1024, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Mean encoder input (log1p of library-normalised counts) of every gene over all cells."""
    device = torch.device(device)
    total = torch.zeros(counts.shape[1], dtype=torch.float64, device=device)
    for rows in batches(counts.shape[0], batch_size):
        total += module.prepare_input(dense_rows(counts, rows, device)).sum(dim=0, dtype=torch.float64)
    return (total / max(counts.shape[0], 1)).cpu().numpy()
