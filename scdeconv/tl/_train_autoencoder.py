from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData

from .._choices import Likelihood, Optimizer, ShuffleOption, check_choice
from .._keys import LATENT_KEY, SELECTED_KEY, model_key_for
from .._logging import logger
from .._model_store import model_entry
from .._module.config import FitConfig, ModelConfig, as_arguments, from_arguments, from_params, none_as, to_params
from .._results import claim_obsm_key, claim_uns_key, result_kind
from .._rows import DEFAULT_CHUNK_SIZE, ChunkedRows, sparse_rows
from .._utils import check_counts, check_not_backed_copy, check_var_names, count_matrix, totals


@dataclass(frozen=True)
class TrainingConfig:
    """What :func:`train_autoencoder` records: the architecture, the fit, and which data it read.

    Captured once from the call's arguments (:meth:`from_arguments`), stored flat in
    ``adata.uns[...]["params"]`` (:meth:`to_params`) and rebuilt from there (:meth:`from_params`),
    so that a retraining (:func:`scdeconv.tl.stability`) repeats exactly what trained the model.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    layer: str | None = field(default=None, metadata=none_as("X"))
    mask_var: str | None = field(default=SELECTED_KEY, metadata=none_as(""))
    validation_fraction: float = 0.05
    distributed: bool = False

    def __post_init__(self):
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), not {self.validation_fraction}.")

    @classmethod
    def from_arguments(cls, arguments: dict) -> TrainingConfig:
        return from_arguments(cls, arguments)

    @classmethod
    def from_params(cls, params: dict) -> TrainingConfig:
        return from_params(cls, params)

    def to_params(self) -> dict:
        return to_params(self)

    def arguments(self) -> dict:
        """Keyword arguments of :func:`train_autoencoder` that train this configuration again."""
        arguments = as_arguments(self)
        del arguments["target_sum"]  # measured on the data, not passed
        return arguments


def _gene_mask(adata: AnnData, mask_var: str | None) -> np.ndarray:
    if mask_var is None:
        return np.ones(adata.n_vars, dtype=bool)
    if mask_var not in adata.var:
        if mask_var == SELECTED_KEY:  # the default: use all genes when select_genes was not run
            return np.ones(adata.n_vars, dtype=bool)
        raise KeyError(f"mask_var {mask_var!r} is not a column of adata.var. Pass an existing boolean column or None.")
    mask = adata.var[mask_var].to_numpy()
    if mask.dtype != bool:
        raise TypeError(
            f"adata.var[{mask_var!r}] must be boolean, not {mask.dtype}. Convert it (`.astype(bool)`) or pass "
            "mask_var=None to use all genes."
        )
    if not mask.any():
        raise ValueError(f"adata.var[{mask_var!r}] selects no gene. Run `sd.pp.select_genes` with looser settings.")
    return mask


def _split(n_cells: int, validation_fraction: float, batch_size: int, rng: np.random.Generator):
    n_val = int(np.ceil(n_cells * validation_fraction))
    n_train = n_cells - n_val
    if n_val < 1 or n_train < 2:
        raise ValueError(
            f"{n_cells} cells are too few to hold out a validation split of {validation_fraction:.0%}. "
            "Use more cells (at least about 20) or a smaller validation_fraction."
        )
    if batch_size > n_train:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {n_train} training cells. Pass a smaller batch_size "
            f"(e.g. {max(1, n_train // 4)})."
        )
    order = rng.permutation(n_cells)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _training_counts(adata: AnnData, layer: str | None, mask: np.ndarray, chunk_size: int):
    """The selected genes' counts (checked), their genes and totals, with genes without any count left out."""
    columns = np.flatnonzero(mask)
    counts = count_matrix(adata, layer, columns, chunk_size=chunk_size)
    check_counts(counts, layer=layer)
    sums = totals(counts)  # one more pass when on disk; reused by the caller
    if (sums[0] == 0).all():
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        raise ValueError(
            f"No cell has any count in {where} over the {len(columns)} selected genes. Pass `layer=` naming the "
            "layer with raw counts, or select other genes."
        )
    keep = sums[1] > 0
    if not keep.all():
        counts = count_matrix(adata, layer, columns[keep], chunk_size=chunk_size)
        sums = (sums[0], sums[1][keep])
    return counts, adata.var_names[columns[keep]], sums, int((~keep).sum())


def _fingerprint(config: TrainingConfig, genes: pd.Index, cells: pd.Index, library: np.ndarray) -> dict:
    """What a checkpoint must match to be resumed by this call: the configuration, genes and cells."""

    def digest(values) -> str:
        return hashlib.sha256("\n".join(map(str, values)).encode()).hexdigest()

    params = {k: v for k, v in config.to_params().items() if k != "n_threads"}  # threads change no result
    # The data first: a checkpoint of other cells is named as such, not by a parameter they changed.
    return {"cells": digest(cells), "genes": digest(genes), "library_sizes": digest(library.tolist()), **params}


def _embed_batch(counts) -> int:
    """Cells per forward pass: whole chunks when reading from disk (contiguous reads)."""
    return min(counts.chunk_size, 8192) if isinstance(counts, ChunkedRows) else 1024


def train_autoencoder(
    adata: AnnData,
    *,
    layer: str | None = None,
    mask_var: str | None = SELECTED_KEY,
    n_latent: int = 64,
    n_hidden: Sequence[int] = (128,),
    likelihood: Likelihood = "poisson",
    ortho_penalty: float = 0.05,
    softplus_beta: float | None = None,
    size_factors: bool = True,
    max_epochs: int = 200,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: Optimizer = "adam",
    validation_fraction: float = 0.05,
    patience: int = 10,
    min_delta: float = 1e-4,
    seed: int = 0,
    device: str = "auto",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    shuffle: ShuffleOption = "auto",
    distributed: bool = False,
    n_threads: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    checkpoint_minutes: float | None = 10.0,
    progress: bool = True,
    key_added: str = LATENT_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Train the paper's autoencoder on raw counts and store its representation and weights.

    The model is genes -> ``n_hidden`` -> ``n_latent`` (the representation) -> mirrored decoder,
    with Softplus activations and Xavier initialisation (Kinalis et al. 2019). The encoder sees
    ``log1p`` of library-size-normalised counts; the loss is the likelihood of the raw counts.

    Parameters
    ----------
    adata
        Cells x genes, raw UMI counts in ``X`` or in ``layer``.
    layer
        Layer with raw counts; ``None`` uses ``adata.X``.
    mask_var
        Boolean ``var`` column of genes to use; by default the genes marked by
        :func:`scdeconv.pp.select_genes` when present, else all. ``None`` uses all genes.
    n_latent
        Nodes of the representation layer (paper: 64).
    n_hidden
        Hidden layer widths between input and representation, mirrored in the decoder (paper: 128).
    likelihood
        ``"poisson"`` (paper), ``"nb"`` (learned per-gene dispersion) or ``"mse"`` (on log1p input).
    ortho_penalty
        Weight of the soft-orthogonality penalty ``||I - W W^T||^2`` on the representation layer
        (paper: 0.05 for Paul15/PBMC, 1.0 for Velten). Applied for real; ``0`` reproduces the
        original code, whose penalty never reached the gradient.
    softplus_beta
        Softplus sharpness; ``None`` uses each layer's width, as the original code did.
    size_factors
        Model counts as library size x predicted proportions (default); ``False`` uses the
        paper's direct Softplus output.
    max_epochs
        Most epochs; training stops early (see ``patience``) and keeps the best epoch's weights.
    batch_size
        Cells per minibatch.
    lr
        Learning rate.
    weight_decay
        Decoupled weight decay (AdamW) or L2 penalty (SGD).
    optimizer
        ``"adam"`` (AdamW) or ``"sgd"`` (Nesterov momentum 0.9, the original recipe).
    validation_fraction
        Cells held out for early stopping (paper: 5%).
    patience
        Epochs without improvement of the validation loss before training stops.
    min_delta
        Smallest relative decrease of the validation loss that counts as an improvement.
    seed
        Seeds initialisation, split and batch order; the same seed and ``n_threads`` give the same
        model on CPU.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    chunk_size
        Cells per chunk read from the count matrix when it is on disk (a backed AnnData,
        ``anndata.read_h5ad(path, backed="r")``): training, embedding and checks stream ``X``
        chunk by chunk, so memory is bounded by ``chunk_size`` cells (plus the validation cells,
        kept in memory as sparse counts), never by the whole matrix. Also the chunk size of
        ``shuffle="chunks"``.
    shuffle
        ``"global"`` reshuffles all training cells every epoch (random access, for data in memory);
        ``"chunks"`` visits windows of ``chunk_size`` consecutive cells in random order and shuffles
        the cells within each window, so reads from disk are contiguous. ``"auto"`` (default):
        ``"chunks"`` for a backed AnnData, else ``"global"``. With the same ``seed`` and
        ``"chunks"``, in-memory and backed data give the same model.
    distributed
        Train data-parallel under ``torch.distributed`` (``DistributedDataParallel``; start the
        processes with ``torchrun``, see :mod:`scdeconv.distributed`). Every rank must call this
        with the same data and arguments; each computes the gradient of its share of every
        minibatch, so the result matches single-process training up to float rounding.
    n_threads
        CPU threads. ``None`` (default): the CPUs this process may use (affinity, cgroup quota) that
        no other process is busy on when training starts, so a shared machine does not make
        training collapse; the number used is recorded (``params["n_threads_used"]``). Matrix
        products may round differently with another thread count: pass ``n_threads`` (and the
        same ``seed``) for bit-identical runs.
    checkpoint
        A file to checkpoint training to (HDF5 arrays, written atomically). When it exists and
        holds a run of this same call (configuration, genes, cells), training resumes from it
        exactly where it stopped; a checkpoint of another run is refused with what differs.
    checkpoint_every
        Write the checkpoint after every this many epochs (and when training ends).
    checkpoint_minutes
        Also write it between two minibatches when this many minutes have passed since the last
        write (an epoch of a large data set takes minutes); ``None``: between epochs only.
    progress
        Show a progress bar over epochs.
    key_added
        ``obsm`` key of the representation. The model goes to ``uns`` under the same name without
        the ``X_`` prefix (``"X_scdeconv"`` -> ``"scdeconv"``). An earlier model there is
        overwritten (logged); any other entry at either key is overwritten with a warning.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes

    ``adata.obsm['X_scdeconv' | key_added]``
        Representation, cells x ``n_latent`` (nodes ``node_0 ...``).
    ``adata.uns['scdeconv']``
        ``params`` (every argument, plus ``n_epochs``, ``best_epoch``, ``validation_cells``),
        ``var_names`` (the model's genes), ``weights`` (numpy arrays), ``history`` (DataFrame of
        ``epoch``, ``train_loss``, ``val_loss``), and ``reconstruction``: on the held-out
        validation cells, ``genes`` (DataFrame per gene: ``correlation`` of observed and
        reconstructed log1p-normalised expression over cells, Poisson ``deviance_explained``
        against each gene's average share of the library) and ``cells`` (``correlation`` over
        genes, per held-out cell).

    Examples
    --------
    >>> import scdeconv as sd
    >>> adata = sd.datasets.paul15()
    >>> sd.pp.select_genes(adata)
    >>> sd.tl.train_autoencoder(adata, max_epochs=5, progress=False)
    >>> adata.obsm["X_scdeconv"].shape
    (2730, 64)
    """
    arguments = dict(locals())  # the configuration, captured once (scvi-tools' _get_init_params)
    import torch

    from .._module.checkpoint import Checkpoint
    from .._module.inference import embed, reconstruction_quality
    from .._module.training import fit, resolve_device

    check_not_backed_copy(adata, copy)
    check_choice("shuffle", shuffle, ShuffleOption)
    adata = adata.copy() if copy else adata
    check_var_names(adata.var_names)
    counts, genes, sums, n_empty_genes = _training_counts(adata, layer, _gene_mask(adata, mask_var), chunk_size)
    on_disk = isinstance(counts, ChunkedRows)
    arguments["shuffle"] = "chunks" if shuffle == "chunks" or (shuffle == "auto" and on_disk) else "global"
    config = TrainingConfig.from_arguments(arguments)  # validates every choice and range
    model_key = model_key_for(key_added)
    ours = result_kind(adata.uns.get(model_key)) == "model"
    claim_obsm_key(adata, key_added, ours=ours, what="scdeconv representation")
    claim_uns_key(adata, model_key, "model")

    with_counts = np.flatnonzero(sums[0] > 0)  # cells without counts carry nothing to train on
    if len(with_counts) < adata.n_obs or n_empty_genes:
        logger.info(
            "Left out of training %d of %d cells and %d genes without counts in the selected genes.",
            adata.n_obs - len(with_counts),
            adata.n_obs,
            n_empty_genes,
        )
    train, val = _split(len(with_counts), validation_fraction, batch_size, np.random.default_rng(seed))
    train_rows, val_rows = with_counts[train], with_counts[val]
    # Every cell's input is scaled to the training cells' median library size.
    config = TrainingConfig.from_arguments({**arguments, "target_sum": float(np.median(sums[0][train_rows]))})
    module = config.model.build(len(genes), generator=torch.Generator().manual_seed(seed))
    device = resolve_device(device)
    logger.info("Training on %d cells x %d genes (%s%s).", len(with_counts), len(genes), device, ", on disk" * on_disk)
    # On disk, the validation cells are read once and kept in memory as sparse counts.
    val_counts = sparse_rows(counts, val_rows) if on_disk else None
    saver = None
    if checkpoint is not None:
        fingerprint = _fingerprint(config, genes, adata.obs_names, sums[0])
        saver = Checkpoint(checkpoint, fingerprint, every_epochs=checkpoint_every, every_minutes=checkpoint_minutes)
    result = fit(
        module,
        counts,
        train_rows=train_rows,
        val_rows=val_rows,
        config=config.fit,
        device=device,
        progress=progress,
        val_counts=val_counts,
        distributed=distributed,
        checkpoint=saver,
    )
    params = {
        **config.to_params(),
        "latent_key": key_added,
        "n_epochs": len(result.epoch),
        "best_epoch": int(result.best_epoch),
        "stopped_early": bool(result.stopped_early),
        "interrupted": bool(result.interrupted),
        "n_threads_used": int(result.n_threads),
        "resumed_from_epoch": int(result.resumed_from),
        "n_cells_without_counts": int(adata.n_obs - len(with_counts)),
        "n_genes_without_counts": int(n_empty_genes),
        "device": str(device),
        "validation_cells": adata.obs_names[val_rows].to_numpy(dtype=str),
    }
    history = pd.DataFrame({"epoch": result.epoch, "train_loss": result.train_loss, "val_loss": result.val_loss})
    adata.obsm[key_added] = embed(module, counts, batch_size=_embed_batch(counts), device=device)
    if val_counts is None:
        quality = reconstruction_quality(module, counts, val_rows, device=device)
    else:
        quality = reconstruction_quality(module, val_counts, np.arange(len(val_rows)), device=device)
    adata.uns[model_key] = model_entry(module.cpu(), params, genes, history)
    adata.uns[model_key]["reconstruction"] = {
        "genes": pd.DataFrame(
            {"correlation": quality["gene_correlation"], "deviance_explained": quality["gene_deviance_explained"]},
            index=pd.Index(genes, dtype=str),
        ),
        "cells": pd.DataFrame({"correlation": quality["cell_correlation"]}, index=adata.obs_names[val_rows]),
    }
    logger.info("Added adata.obsm[%r] and adata.uns[%r].", key_added, model_key)
    return adata if copy else None
