"""Minibatch training with early stopping on a held-out validation split.

Pure torch/numpy: the count matrix comes in as scipy sparse or numpy, and only one minibatch at
a time is made dense.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse
from tqdm import tqdm

from .adamw import adamw
from .autoencoder import Autoencoder, count_constant
from .config import FitConfig


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


def epoch_batches(
    counts, rows: np.ndarray, batch_size: int, rng: np.random.Generator, chunk_size: int | None = None
) -> Iterator[tuple[object, np.ndarray]]:
    """One training epoch as ``(source, index)`` minibatches: ``source[index]`` are the batch's rows.

    ``chunk_size=None`` shuffles all ``rows`` at once (random access: data in memory). Otherwise
    shuffling is at chunk level, so reads stay contiguous: the rows are cut into windows of
    ``chunk_size`` consecutive matrix rows, windows are visited in random order, each is read
    once into memory (``counts[window]``) and its rows are shuffled into minibatches there.
    """
    if chunk_size is None:
        for batch in batches(len(rows), batch_size, rng):
            yield counts, rows[batch]
        return
    edges = np.searchsorted(rows, np.arange(0, counts.shape[0] + chunk_size, chunk_size))
    for c in rng.permutation(len(edges) - 1):
        window = rows[edges[c] : edges[c + 1]]
        if len(window) == 0:
            continue
        block = counts[window]  # one contiguous read
        for batch in batches(len(window), batch_size, rng):
            yield block, batch


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
    config: FitConfig | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    val_counts=None,
    distributed: bool = False,
) -> TrainingResult:
    """Train ``module`` in place; keep the weights of the epoch with the best validation loss.

    Parameters
    ----------
    counts
        Cells x genes raw counts: scipy sparse, numpy, or anything with ``shape`` whose
        ``counts[rows]`` returns sparse or numpy rows (an on-disk reader).
    train_rows, val_rows
        Row indices (sorted) of the training and validation cells.
    config
        Optimiser, penalty, early stopping and batch order (default :class:`FitConfig`). With
        ``shuffle="chunks"`` each epoch reads ``counts`` in contiguous windows (see
        :func:`epoch_batches`); early stopping waits ``patience`` epochs for a relative
        improvement of ``min_delta`` in validation loss.
    val_counts
        The validation cells' counts already in memory (rows in the order of ``val_rows``); by
        default they are read from ``counts`` at every evaluation.
    distributed
        Train under an initialised ``torch.distributed`` process group with
        ``DistributedDataParallel``: every rank draws the same minibatches (same ``seed``) and
        computes the gradient on its own contiguous share of each; the ranks' losses are weighted
        by their share, so the averaged gradient is the single-process gradient of the whole batch.
    """
    config = config or FitConfig()
    batch_size, ortho_penalty = config.batch_size, config.ortho_penalty
    chunk_size = config.chunk_size if config.shuffle == "chunks" else None
    device = resolve_device(device)
    module.to(device)
    rng = np.random.default_rng(config.seed)
    model, rank, world = module, 0, 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("distributed=True needs torch.distributed.init_process_group() first (e.g. torchrun).")
        rank, world = dist.get_rank(), dist.get_world_size()
        ids = None
        if device.type == "cuda":
            ids = [device.index if device.index is not None else torch.cuda.current_device()]
        model = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if config.optimizer == "adam":
        opt = adamw(list(module.parameters()), config.lr, config.weight_decay)
    else:  # the original recipe
        opt = torch.optim.SGD(
            module.parameters(), lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    if val_counts is None:
        val_counts, val_index = counts, val_rows
    else:
        val_index = np.arange(len(val_rows))
    result = TrainingResult()
    best, best_state, waited = np.inf, copy.deepcopy(module.state_dict()), 0
    # log(counts!) of the training cells is the same every epoch: summed once (first epoch), then
    # added back to the reported loss instead of being evaluated at every step.
    count_likelihood = module.likelihood != "mse"
    constant_total: float | None = None
    bar = tqdm(total=config.max_epochs, desc="training", unit="epoch", disable=not progress or rank > 0)
    for epoch in range(config.max_epochs):
        module.train()
        total = torch.zeros(2, dtype=torch.float64)
        first_pass = constant_total is None
        epoch_constant = 0.0
        for source, idx in epoch_batches(counts, train_rows, batch_size, rng, chunk_size):
            share = np.array_split(idx, world)[rank] if world > 1 else idx
            weight = len(share) / len(idx) * world
            if len(share) == 0:  # a batch smaller than the world: this rank adds nothing
                share, weight = idx[:1], 0.0
            batch = dense_rows(source, share, device)
            loss, rec = model(batch, ortho_penalty, rec_weight=weight, constant=False)
            if first_pass and count_likelihood and weight > 0:
                epoch_constant += float(count_constant(batch)) / batch.shape[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += torch.tensor([float(rec.detach()) * len(share) * (weight > 0), len(share) * (weight > 0)])
        if first_pass:
            constant_total = epoch_constant
        total[0] += constant_total
        if world > 1:
            dist.all_reduce(total)
        train_loss = float(total[0] / total[1])
        val_loss = evaluate(module, val_counts, val_index, max(batch_size, 512), device)
        result.epoch.append(epoch)
        result.train_loss.append(train_loss)
        result.val_loss.append(val_loss)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", refresh=False)
        bar.update(1)
        if not np.isfinite(train_loss):
            raise FloatingPointError(
                f"Training diverged at epoch {epoch} (loss {train_loss}). Lower lr, or check the input counts."
            )
        if not np.isfinite(best) or val_loss < best - config.min_delta * abs(best):
            best, best_state, waited = val_loss, copy.deepcopy(module.state_dict()), 0
            result.best_epoch = epoch
        else:
            waited += 1
            if waited >= config.patience:
                result.stopped_early = True
                bar.total = epoch + 1  # the bar ends where training did, not at max_epochs
                bar.refresh()
                break
    bar.close()
    module.load_state_dict(best_state)
    module.eval()
    return result
