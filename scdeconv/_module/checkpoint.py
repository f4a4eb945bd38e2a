"""Training checkpoints: written atomically as plain HDF5 arrays, validated before a run resumes from them.

A checkpoint holds everything :func:`~scdeconv._module.training.fit` needs to go on exactly where it
stopped: the weights, the optimizer's moments, the best weights so far, the batch-order generator
and the early-stopping state (:class:`~scdeconv._module.training.TrainingState`), beside a
*fingerprint* of what is being trained (configuration, genes, cells). Nothing is pickled: arrays are
HDF5 datasets and the state is JSON text, as the ``.h5ad`` model is arrays and plain values; a file
of another run is refused with the entry that differs, a damaged one with a clear error.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, fields
from pathlib import Path

import h5py
import numpy as np
import torch

logger = logging.getLogger("scdeconv")

FORMAT = "scdeconv-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: from another run, or damaged."""


class Checkpoint:
    """Where and how often a training run is checkpointed, and what it must match to resume.

    Parameters
    ----------
    path
        The checkpoint file. Written to a temporary file beside it, then renamed over it, so a
        kill at any moment leaves either the previous checkpoint or the new one, never half of one.
    fingerprint
        Plain values and arrays that identify the run (configuration, genes, cells); a checkpoint
        whose fingerprint differs in any entry is refused with that entry's name.
    every_epochs
        Write after every this many completed epochs (and when training ends).
    every_minutes
        Also write between two minibatches once this many minutes have passed since the last write
        (an epoch of a million cells takes minutes); ``None``: only between epochs.
    """

    def __init__(self, path, fingerprint: dict, *, every_epochs: int = 1, every_minutes: float | None = None):
        if every_epochs < 1:
            raise ValueError(f"checkpoint_every must be a positive number of epochs, not {every_epochs}.")
        if every_minutes is not None and every_minutes < 0:
            raise ValueError(f"checkpoint_minutes must be non-negative or None, not {every_minutes}.")
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.every_epochs, self.every_minutes = int(every_epochs), every_minutes
        self.resumed = False

    def due(self, state, *, end_of_epoch: bool = False, since: float | None = None) -> bool:
        """Whether to write now: at an epoch end every ``every_epochs`` epochs, else after ``every_minutes``."""
        if end_of_epoch:
            return state.epoch % self.every_epochs == 0
        return (
            self.every_minutes is not None and since is not None and time.monotonic() - since >= 60 * self.every_minutes
        )

    def save(self, module: torch.nn.Module, optimizer, state, best_weights: dict) -> None:
        """Write the checkpoint atomically (temporary file, flushed to disk, renamed over the old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"], f.attrs["version"] = FORMAT, VERSION
                f.attrs["state"] = json.dumps(_state_to_json(state))
                _write_values(f.create_group("fingerprint"), self.fingerprint)
                _write_tensors(f.create_group("weights"), module.state_dict())
                _write_tensors(f.create_group("best_weights"), best_weights)
                for i, entry in optimizer_state(optimizer).items():
                    _write_tensors(f.create_group(f"optimizer/{i}"), entry)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def resume(self, module: torch.nn.Module, optimizer, fresh_state, fresh_best: dict):
        """The state and best weights to go on from: the checkpoint's when there is one (module and optimizer
        loaded from it), else the fresh ones given."""
        if not self.path.exists():
            return fresh_state, fresh_best
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise CheckpointError(f"{self.path} is not a scdeconv checkpoint.")
                self._check_fingerprint(f["fingerprint"])
                weights = _read_tensors(f["weights"], module.state_dict(), "weights", self.path)
                best = _read_tensors(f["best_weights"], module.state_dict(), "best_weights", self.path)
                saved_opt = _read_optimizer(f)
                state = _state_from_json(json.loads(f.attrs["state"]), type(fresh_state))
        except CheckpointError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise CheckpointError(
                f"Checkpoint {self.path} is damaged or truncated ({type(err).__name__}: {err}). Delete it to train "
                "from the start, or restore an intact copy."
            ) from None
        module.load_state_dict(weights)
        load_optimizer_state(optimizer, saved_opt, self.path)
        self.resumed = True
        state.history.resumed_from = state.epoch
        logger.info("Resuming training from %s: %d epochs done.", self.path, state.epoch)
        return state, best

    def _check_fingerprint(self, group: h5py.Group) -> None:
        saved = _read_values(group)
        for name, value in self.fingerprint.items():
            if name not in saved:
                raise CheckpointError(f"Checkpoint {self.path} does not record {name!r}: it is from another version.")
            if _equal(saved[name], value):
                continue
            if _is_digest(value):
                raise CheckpointError(
                    f"Checkpoint {self.path} was written for other data: its {name.replace('_', ' ')} differ from this "
                    "call's. Pass another checkpoint path, or delete the file to start afresh."
                )
            raise CheckpointError(
                f"Checkpoint {self.path} is from another run: its {name!r} differs from this call's "
                f"({_short(saved[name])} there, {_short(value)} here). Pass another checkpoint path, or delete the "
                "file to start afresh."
            )


def optimizer_state(optimizer) -> dict[str, dict[str, torch.Tensor]]:
    """Per parameter (by position), its optimizer tensors (moments, step), for torch optimizers and FusedAdamW."""
    if hasattr(optimizer, "exp_avgs"):  # FusedAdamW
        return {
            str(i): {"exp_avg": m, "exp_avg_sq": v, "step": s}
            for i, (m, v, s) in enumerate(zip(optimizer.exp_avgs, optimizer.exp_avg_sqs, optimizer.steps, strict=True))
        }
    state = optimizer.state_dict()["state"]
    return {str(i): {k: v for k, v in entry.items() if torch.is_tensor(v)} for i, entry in state.items()}


def load_optimizer_state(optimizer, saved: dict[str, dict[str, torch.Tensor]], path) -> None:
    """Put saved optimizer tensors back, checking that they fit the parameters."""
    if hasattr(optimizer, "exp_avgs"):
        if set(saved) != {str(i) for i in range(len(optimizer.params))}:
            raise CheckpointError(f"Checkpoint {path} holds the optimizer state of another model.")
        for i in range(len(optimizer.params)):
            for name, target in (("exp_avg", optimizer.exp_avgs), ("exp_avg_sq", optimizer.exp_avg_sqs),
                                 ("step", optimizer.steps)):  # fmt: skip
                if saved[str(i)][name].shape != target[i].shape:
                    raise CheckpointError(f"Checkpoint {path} holds the optimizer state of another model.")
                target[i].copy_(saved[str(i)][name])
        return
    current = optimizer.state_dict()
    current["state"] = {int(i): entry for i, entry in saved.items()}
    optimizer.load_state_dict(current)


def _read_optimizer(f: h5py.File) -> dict[str, dict[str, torch.Tensor]]:
    groups = f["optimizer"] if "optimizer" in f else {}
    return {i: {k: torch.from_numpy(np.asarray(groups[i][k][()])) for k in groups[i]} for i in groups}


def _state_to_json(state) -> dict:
    """The state as JSON-ready values (Python's json keeps the generator's 128-bit integers exact)."""
    return asdict(state)


def _state_from_json(values: dict, cls):
    from .training import TrainingResult

    values = dict(values)
    values["history"] = TrainingResult(**values["history"])
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise KeyError(f"unknown state entries {sorted(unknown)}")
    return cls(**values)


def _write_tensors(group: h5py.Group, tensors: dict[str, torch.Tensor]) -> None:
    for name, tensor in tensors.items():
        group.create_dataset(name, data=tensor.detach().cpu().numpy())


def _read_tensors(group: h5py.Group, expected: dict[str, torch.Tensor], what: str, path) -> dict[str, torch.Tensor]:
    if set(group) != set(expected):
        raise CheckpointError(f"Checkpoint {path} holds {what} of another model ({sorted(group)[:3]}...).")
    out = {}
    for name, reference in expected.items():
        array = group[name][()]
        if array.dtype.kind != "f" or array.shape != tuple(reference.shape):
            raise CheckpointError(f"Checkpoint {path}: {what}[{name!r}] does not fit the model.")
        out[name] = torch.from_numpy(np.asarray(array))
    return out


def _write_values(group: h5py.Group, values: dict) -> None:
    for name, value in values.items():
        if isinstance(value, str):
            group.create_dataset(name, data=value, dtype=h5py.string_dtype())
        else:
            group.create_dataset(name, data=np.asarray(value))


def _read_values(group: h5py.Group) -> dict:
    out = {}
    for name in group:
        value = group[name][()]
        out[name] = value.decode() if isinstance(value, bytes) else value
    return out


def _equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "SOU" or b.dtype.kind in "SOU":
        return a.astype(str).tolist() == b.astype(str).tolist()
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _is_digest(value) -> bool:
    """A SHA-256 hex digest (how the fingerprint records cells, genes and library sizes)."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _short(value) -> str:
    text = repr(np.asarray(value).tolist()) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
