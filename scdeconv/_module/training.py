"""Minibatch training with early stopping on a held-out validation split.

Pure torch/numpy: the count matrix comes in as scipy sparse or numpy, and only one minibatch at
a time is made dense.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from scipy import sparse
from tqdm import tqdm

from .autoencoder import Autoencoder

Optimizer = Literal["adam", "sgd"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def dense_rows(counts, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of a sparse or dense count matrix as a dense float32 tensor (one batch only)."""
    block = counts[rows]
    block = block.toarray() if sparse.issparse(block) else np.asarray(block)
    return torch.from_numpy(block.astype(np.float32, copy=False)).to(device)


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index batches over ``n`` rows, shuffled when ``rng`` is given; each batch sorted for fast row slicing."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [np.sort(order[i : i + batch_size]) for i in range(0, n, batch_size)]


@dataclass
class TrainingResult:
    """What :func:`fit` returns: per-epoch losses and the epoch whose weights were kept."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False


@torch.no_grad()
def evaluate(module: Autoencoder, counts, rows: np.ndarray, batch_size: int, device: torch.device) -> float:
    """Mean per-entry reconstruction loss over ``rows`` (no penalty)."""
    module.eval()
    total, n = 0.0, 0
    for batch in batches(len(rows), batch_size):
        idx = rows[batch]
        total += float(module.reconstruction_loss(dense_rows(counts, idx, device))) * len(idx)
        n += len(idx)
    return total / max(n, 1)


def fit(
    module: Autoencoder,
    counts,
    *,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    batch_size: int = 128,
    max_epochs: int = 200,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: Optimizer = "adam",
    ortho_penalty: float = 0.05,
    patience: int = 10,
    min_delta: float = 1e-4,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> TrainingResult:
    """Train ``module`` in place; keep the weights of the epoch with the best validation loss.

    Parameters
    ----------
    counts
        Cells x genes raw counts, scipy sparse or numpy.
    train_rows, val_rows
        Row indices of the training and validation cells.
    optimizer
        ``"adam"`` (default) or ``"sgd"`` (Nesterov, momentum 0.9: the original recipe).
    patience
        Epochs without a relative improvement of ``min_delta`` in validation loss before stopping.
    """
    device = resolve_device(device)
    module.to(device)
    rng = np.random.default_rng(seed)
    if optimizer == "adam":
        opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', not {optimizer!r}.")
    result = TrainingResult()
    best, best_state, waited = np.inf, copy.deepcopy(module.state_dict()), 0
    bar = tqdm(range(max_epochs), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        module.train()
        total, n = 0.0, 0
        for batch in batches(len(train_rows), batch_size, rng):
            idx = train_rows[batch]
            loss, rec = module.loss(dense_rows(counts, idx, device), ortho_penalty)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(rec.detach()) * len(idx)
            n += len(idx)
        train_loss = total / n
        val_loss = evaluate(module, counts, val_rows, max(batch_size, 512), device)
        result.epoch.append(epoch)
        result.train_loss.append(train_loss)
        result.val_loss.append(val_loss)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        if not np.isfinite(train_loss):
            raise FloatingPointError(
                f"Training diverged at epoch {epoch} (loss {train_loss}). Lower lr, or check the input counts."
            )
        if not np.isfinite(best) or val_loss < best - min_delta * abs(best):
            best, best_state, waited = val_loss, copy.deepcopy(module.state_dict()), 0
            result.best_epoch = epoch
        else:
            waited += 1
            if waited >= patience:
                result.stopped_early = True
                break
    bar.close()
    module.load_state_dict(best_state)
    module.eval()
    return result
