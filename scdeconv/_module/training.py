"""Minibatch training with early stopping on a held-out validation split, resumable from a checkpoint.

Pure torch/numpy: the count matrix comes in as scipy sparse or numpy (or an on-disk reader), and
only one minibatch at a time is made dense. Everything that continues a run lives in one
:class:`TrainingState`, so a run stopped anywhere (a checkpoint between two minibatches) goes on
exactly where it was: the same minibatches in the same order, the same optimizer state.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse
from tqdm import tqdm

from .adamw import adamw
from .autoencoder import Autoencoder, count_constant
from .compute import cpu_compute
from .config import FitConfig

logger = logging.getLogger("scdeconv")


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


def epoch_plan(
    rows: np.ndarray, batch_size: int, rng: np.random.Generator, *, n_rows: int, chunk_size: int | None = None
) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """One training epoch's minibatches as ``(window, index)`` pairs, drawn before any data is read.

    ``chunk_size=None``: ``window`` is None and ``index`` are rows of the count matrix (all
    ``rows`` shuffled at once: random access, data in memory). Otherwise shuffling is at chunk
    level, so reads stay contiguous: the rows are cut into windows of ``chunk_size`` consecutive
    matrix rows (of ``n_rows``), windows are visited in random order and each window's rows are
    shuffled into minibatches; ``index`` then indexes ``counts[window]``, read once.
    """
    if chunk_size is None:
        return [(None, rows[batch]) for batch in batches(len(rows), batch_size, rng)]
    plan = []
    edges = np.searchsorted(rows, np.arange(0, n_rows + chunk_size, chunk_size))
    for c in rng.permutation(len(edges) - 1):
        window = rows[edges[c] : edges[c + 1]]
        if len(window):
            plan += [(window, batch) for batch in batches(len(window), batch_size, rng)]
    return plan


def read_plan(counts, plan: list[tuple[np.ndarray | None, np.ndarray]], start: int = 0):
    """``(source, index)`` for the minibatches ``plan[start:]``: ``source[index]`` are a batch's rows.

    Each window is read from ``counts`` once (one contiguous read), and only when one of its
    minibatches is still to come.
    """
    current, block = None, None
    for window, index in plan[start:]:
        if window is None:
            yield counts, index
            continue
        if window is not current:
            current, block = window, counts[window]
        yield block, index


@dataclass
class TrainingResult:
    """What :func:`fit` returns: per-epoch losses and the epoch whose weights were kept."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    interrupted: bool = False
    resumed_from: int = -1  # epochs already done when a checkpoint was resumed (-1: a fresh run)
    seconds: list[float] = field(default_factory=list)  # wall time of each epoch (training + validation)
    n_threads: int = 0  # CPU threads the run used (0: not on the CPU)


@dataclass
class TrainingState:
    """Where a run stands between two minibatches: with the weights and optimizer, all it takes to go on."""

    rng_state: dict  # the batch-order generator at the start of the current epoch
    epoch: int = 0  # epochs completed
    batch: int = 0  # minibatches of the current epoch completed
    loss_sum: float = 0.0  # the current epoch's reconstruction loss summed over its cells so far
    loss_cells: float = 0.0
    constant_sum: float = 0.0  # sum(log(x!)) per gene over the first epoch's cells so far
    constant_total: float | None = None  # ... over all training cells, once the first epoch is done
    best: float = float("inf")
    waited: int = 0
    finished: bool = False
    history: TrainingResult = field(default_factory=TrainingResult)


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


def make_optimizer(module: Autoencoder, config: FitConfig):
    """AdamW (fused where torch's kernel works), or the original recipe's Nesterov SGD."""
    if config.optimizer == "adam":
        return adamw(list(module.parameters()), config.lr, config.weight_decay)
    return torch.optim.SGD(
        module.parameters(), lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
    )


def _data_parallel(module: Autoencoder, device: torch.device, distributed: bool):
    """The module to call (wrapped in DistributedDataParallel when ``distributed``), this rank and the world size."""
    if not distributed:
        return module, 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError("distributed=True needs torch.distributed.init_process_group() first (e.g. torchrun).")
    ids = None
    if device.type == "cuda":
        ids = [device.index if device.index is not None else torch.cuda.current_device()]
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids), dist.get_rank(), dist.get_world_size()


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
    checkpoint=None,
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
        Optimiser, penalty, early stopping, batch order and threads (default :class:`FitConfig`).
        With ``shuffle="chunks"`` each epoch reads ``counts`` in contiguous windows (see
        :func:`epoch_plan`); early stopping waits ``patience`` epochs for a relative
        improvement of ``min_delta`` in validation loss.
    val_counts
        The validation cells' counts already in memory (rows in the order of ``val_rows``); by
        default they are read from ``counts`` at every evaluation.
    distributed
        Train under an initialised ``torch.distributed`` process group with
        ``DistributedDataParallel``: every rank draws the same minibatches (same ``seed``) and
        computes the gradient on its own contiguous share of each; the ranks' losses are weighted
        by their share, so the averaged gradient is the single-process gradient of the whole batch.
    checkpoint
        A :class:`~scdeconv._module.checkpoint.Checkpoint`: resume from it when it holds a run of
        this configuration, and write it as it asks (atomically).

    A ``KeyboardInterrupt`` stops training and keeps the best weights so far
    (``result.interrupted``), as Lightning does; the last checkpoint written stays valid.
    """
    config = config or FitConfig()
    device = resolve_device(device)
    module.to(device)
    model, rank, world = _data_parallel(module, device, distributed)
    opt = make_optimizer(module, config)
    if val_counts is None:
        val_counts, val_index = counts, val_rows
    else:
        val_index = np.arange(len(val_rows))
    state = TrainingState(rng_state=np.random.default_rng(config.seed).bit_generator.state)
    best_weights = copy.deepcopy(module.state_dict())
    if checkpoint is not None:
        state, best_weights = checkpoint.resume(module, opt, state, best_weights)
    bar = tqdm(total=config.max_epochs, initial=state.epoch, desc="training", unit="epoch",
               disable=not progress or rank > 0)  # fmt: skip
    epoch_run = _EpochRun(module, model, opt, config, counts, train_rows, device, rank, world, checkpoint)
    with cpu_compute(device, config.n_threads) as threads:
        state.history.n_threads = threads
        try:
            while not state.finished and state.epoch < config.max_epochs:
                started = time.perf_counter()
                train_loss = epoch_run(state, best_weights)
                val_loss = evaluate(module, val_counts, val_index, max(config.batch_size, 512), device)
                state.history.seconds.append(time.perf_counter() - started)
                best_weights = _end_epoch(state, module, best_weights, train_loss, val_loss, config)
                bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", refresh=False)
                bar.update(1)
                if checkpoint is not None and rank == 0 and checkpoint.due(state, end_of_epoch=True):
                    checkpoint.save(module, opt, state, best_weights)
            state.finished = True
        except KeyboardInterrupt:
            state.history.interrupted = True
            logger.warning(
                "Training interrupted after %d epochs; keeping the best weights so far (epoch %d).",
                state.epoch,
                state.history.best_epoch,
            )
    bar.total = state.epoch  # the bar ends where training did, not at max_epochs
    bar.refresh()
    bar.close()
    if state.history.best_epoch >= 0:
        module.load_state_dict(best_weights)
    if checkpoint is not None and rank == 0 and state.finished:
        checkpoint.save(module, opt, state, best_weights)
    module.eval()
    return state.history


def _end_epoch(state: TrainingState, module, best_weights, train_loss: float, val_loss: float, config: FitConfig):
    """Record an epoch, apply early stopping, and move the state to the start of the next epoch."""
    history = state.history
    history.epoch.append(state.epoch)
    history.train_loss.append(train_loss)
    history.val_loss.append(val_loss)
    if not np.isfinite(train_loss):
        raise FloatingPointError(
            f"Training diverged at epoch {state.epoch} (loss {train_loss}). Lower lr, or check the input counts."
        )
    if not np.isfinite(state.best) or val_loss < state.best - config.min_delta * abs(state.best):
        state.best, state.waited, history.best_epoch = val_loss, 0, state.epoch
        best_weights = copy.deepcopy(module.state_dict())
    else:
        state.waited += 1
        if state.waited >= config.patience:
            history.stopped_early = state.finished = True
    state.epoch += 1
    return best_weights


class _EpochRun:
    """One epoch's minibatches from where the state stands, with mid-epoch checkpoints when due."""

    def __init__(self, module, model, opt, config, counts, train_rows, device, rank, world, checkpoint):
        self.module, self.model, self.opt, self.config = module, model, opt, config
        self.counts, self.train_rows, self.device = counts, train_rows, device
        self.rank, self.world, self.checkpoint = rank, world, checkpoint
        # log(counts!) of the training cells is the same every epoch: summed once (first epoch),
        # then added back to the reported loss instead of being evaluated at every step.
        self.count_likelihood = module.likelihood != "mse"

    def __call__(self, state: TrainingState, best_weights) -> float:
        config = self.config
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        chunk = config.chunk_size if config.shuffle == "chunks" else None
        plan = epoch_plan(self.train_rows, config.batch_size, rng, n_rows=self.counts.shape[0], chunk_size=chunk)
        first_pass = state.constant_total is None
        self.module.train()
        last_write = time.monotonic()
        for source, idx in read_plan(self.counts, plan, state.batch):
            share = np.array_split(idx, self.world)[self.rank] if self.world > 1 else idx
            weight = len(share) / len(idx) * self.world
            if len(share) == 0:  # a batch smaller than the world: this rank adds nothing
                share, weight = idx[:1], 0.0
            batch = dense_rows(source, share, self.device)
            loss, rec = self.model(batch, config.ortho_penalty, rec_weight=weight, constant=False)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            used = len(share) * (weight > 0)
            state.loss_sum += float(rec.detach()) * used
            state.loss_cells += used
            if first_pass and self.count_likelihood and weight > 0:
                state.constant_sum += float(count_constant(batch)) / batch.shape[1]
            state.batch += 1
            if self.checkpoint is not None and self.rank == 0 and self.checkpoint.due(state, since=last_write):
                self.checkpoint.save(self.module, self.opt, state, best_weights)
                last_write = time.monotonic()
        if first_pass:
            state.constant_total = state.constant_sum
        total = torch.tensor([state.loss_sum + state.constant_total, state.loss_cells], dtype=torch.float64)
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        state.rng_state = rng.bit_generator.state  # the next epoch starts where this one's draws ended
        state.batch, state.loss_sum, state.loss_cells = 0, 0.0, 0.0
        return float(total[0] / total[1])
