"""The recorded configuration of a model and of its training: captured once, stored, rebuilt from.

Each configuration is a frozen dataclass. Its fields are validated in one place (``__post_init__``:
``Literal`` choices from their type, sizes and rates by range), written into ``adata.uns`` as plain
h5ad-serialisable values (:func:`to_params`) and read back (:func:`from_params`), so a stored model
is rebuilt from exactly what trained it. No torch at import time.
"""

# No ``from __future__ import annotations`` here: field types stay real objects, so the Literal
# choices are read from them directly (typing.get_type_hints would eval strings, and loading a model
# from a file must never eval anything).
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args, get_origin

import numpy as np

from .._choices import Likelihood, Optimizer, Shuffle, check_choice

# ``None`` has no h5ad form: a field whose default is None names the plain value that stands for it.
_NONE = "none_as"


def none_as(stand_in) -> dict[str, Any]:
    """Field metadata: ``None`` is stored as ``stand_in`` (h5ad has no None) and read back as None."""
    return {_NONE: stand_in}


def _literal_of(hint):
    """The ``Literal`` type of a field's type hint and whether ``None`` is allowed, or ``(None, False)``."""
    if get_origin(hint) is Literal:
        return hint, False
    args = get_args(hint)
    literals = [a for a in args if get_origin(a) is Literal]
    return (literals[0], type(None) in args) if literals else (None, False)


def _validate_choices(config) -> None:
    """Check every ``Literal``-typed field of a dataclass instance against its type."""
    for f in fields(config):
        kind, allow_none = _literal_of(f.type)
        if kind is not None:
            check_choice(f.name, getattr(config, f.name), kind, allow_none=allow_none)


def _nested(f) -> type | None:
    """The config class of a field that holds a config (declared with ``default_factory=ThatConfig``)."""
    factory = f.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) else None


def to_params(config) -> dict[str, Any]:
    """The fields of a config as flat plain values for ``adata.uns``.

    ``None`` is written as the field's stand-in, tuples as integer arrays, and a field that is itself
    a config contributes its own fields (one flat dict, as ``params`` have always been stored).
    """
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(to_params(value))
            continue
        if value is None:
            value = f.metadata[_NONE]
        elif isinstance(value, tuple):
            value = np.asarray(value, dtype=int)
        out[f.name] = value
    return out


def from_params(cls, params: dict[str, Any]):
    """Rebuild a config of class ``cls`` from a params dict written by :func:`to_params` (extra keys ignored)."""
    values = {}
    for f in fields(cls):
        if _nested(f):
            values[f.name] = from_params(_nested(f), params)
            continue
        if f.name not in params:
            continue  # an older record: the field's default
        value = params[f.name]
        if _NONE in f.metadata and _same(value, f.metadata[_NONE]):
            value = None
        elif isinstance(f.default, tuple):
            value = tuple(int(v) for v in np.atleast_1d(value))
        elif isinstance(value, np.generic):
            value = value.item()
        values[f.name] = value
    return cls(**values)


def _same(value, stand_in) -> bool:
    try:
        return bool(value == stand_in)
    except (TypeError, ValueError):
        return False


def from_arguments(cls, arguments: dict[str, Any]):
    """A config of class ``cls`` from a function's ``locals()``: the fields it names, the rest defaults.

    A field that is itself a config is built the same way from the same arguments.
    """
    values = {}
    for f in fields(cls):
        if _nested(f):
            values[f.name] = from_arguments(_nested(f), arguments)
        elif f.name in arguments:
            values[f.name] = arguments[f.name]
    return cls(**values)


def as_arguments(config) -> dict[str, Any]:
    """The keyword arguments that :func:`from_arguments` turns back into ``config`` (nested configs flattened)."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out.update(as_arguments(value) if dataclasses.is_dataclass(value) else {f.name: value})
    return out


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {bound}, not {value}.")


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoder's architecture (see :class:`scdeconv._module.autoencoder.Autoencoder`)."""

    n_latent: int = 64
    n_hidden: tuple[int, ...] = (128,)
    softplus_beta: float | None = field(default=None, metadata=none_as(0.0))
    likelihood: Likelihood = "poisson"
    size_factors: bool = True
    target_sum: float = 1e4

    def __post_init__(self):
        object.__setattr__(self, "n_hidden", tuple(int(h) for h in np.atleast_1d(self.n_hidden)))
        if self.n_latent < 1 or any(h < 1 for h in self.n_hidden):
            raise ValueError(f"Layer sizes must be positive (n_latent={self.n_latent}, n_hidden={self.n_hidden}).")
        _validate_choices(self)
        if self.softplus_beta is not None:
            _positive("softplus_beta", self.softplus_beta)
        _positive("target_sum", self.target_sum)

    def build(self, n_genes: int, generator=None):
        """A freshly initialised :class:`~scdeconv._module.autoencoder.Autoencoder` of this architecture."""
        from .autoencoder import Autoencoder

        return Autoencoder(n_genes, **dataclasses.asdict(self), generator=generator)


@dataclass(frozen=True)
class FitConfig:
    """How :func:`scdeconv._module.training.fit` trains: optimiser, penalty, early stopping, batch order."""

    batch_size: int = 128
    max_epochs: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: Optimizer = "adam"
    ortho_penalty: float = 0.05
    patience: int = 10
    min_delta: float = 1e-4
    seed: int = 0
    # "chunks": visit windows of ``chunk_size`` consecutive cells in random order (contiguous reads).
    shuffle: Shuffle = "global"
    chunk_size: int = 10_000
    # CPU threads; None: the CPUs this process may use that no other process is busy on at the start.
    n_threads: int | None = field(default=None, metadata=none_as(0))

    def __post_init__(self):
        _validate_choices(self)
        for name in ("batch_size", "max_epochs", "patience", "chunk_size"):
            _positive(name, getattr(self, name))
        if self.n_threads is not None:
            _positive("n_threads", self.n_threads)
        _positive("lr", self.lr)
        for name in ("weight_decay", "ortho_penalty", "min_delta"):
            _positive(name, getattr(self, name), allow_zero=True)


@dataclass(frozen=True)
class StreamOptions:
    """How cells are streamed: ``chunk_size`` cells per read from disk, ``batch_size`` per attribution batch.

    ``batch_size=None`` sizes batches so that one attribution block stays near 64 MB.
    """

    chunk_size: int = 10_000
    batch_size: int | None = None
    device: str = "auto"
    progress: bool = True
    n_threads: int | None = None  # CPU threads; None: the CPUs free now (see scdeconv._module.compute)
