from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import LATENT_KEY, model_key_for
from .._logging import logger
from .._model_store import build_model, model_entry
from .._rows import DEFAULT_CHUNK_SIZE, ChunkedRows, sparse_rows
from .._utils import (
    check_counts,
    check_no_empty,
    check_not_backed_copy,
    check_var_names,
    claim_obsm_key,
    claim_uns_key,
    count_matrix,
    result_kind,
    totals,
)

SELECTED_KEY = "scdeconv_selected"


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
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), not {validation_fraction}.")
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
    likelihood: str = "poisson",
    ortho_penalty: float = 0.05,
    softplus_beta: float | None = None,
    size_factors: bool = True,
    max_epochs: int = 200,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    validation_fraction: float = 0.05,
    patience: int = 10,
    seed: int = 0,
    device: str = "auto",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    shuffle: str = "auto",
    distributed: bool = False,
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
    max_epochs, batch_size, lr, weight_decay
        Optimisation; training stops early when the validation loss stalls for ``patience`` epochs,
        and the best epoch's weights are kept.
    optimizer
        ``"adam"`` (AdamW) or ``"sgd"`` (Nesterov momentum 0.9, the original recipe).
    validation_fraction
        Cells held out for early stopping (paper: 5%).
    patience
        Epochs without a relative improvement of 1e-4 in validation loss before training stops
        (the weights of the best epoch are kept).
    seed
        Seeds initialisation, split and batch order; the same seed gives the same model on CPU.
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
    import torch

    from .._module.inference import embed, reconstruction_quality
    from .._module.training import fit, resolve_device

    check_not_backed_copy(adata, copy)
    if shuffle not in ("auto", "global", "chunks"):
        raise ValueError(f"shuffle must be 'auto', 'global' or 'chunks', not {shuffle!r}.")
    adata = adata.copy() if copy else adata
    check_var_names(adata.var_names)
    mask = _gene_mask(adata, mask_var)
    genes = adata.var_names[mask]
    counts = count_matrix(adata, layer, np.flatnonzero(mask), chunk_size=chunk_size)
    on_disk = isinstance(counts, ChunkedRows)
    check_counts(counts, layer=layer)
    sums = totals(counts)  # one more pass when on disk; reused below
    check_no_empty(counts, layer=layer, cells=adata.obs_names, genes=genes, sums=sums)
    library = sums[0]
    if n_latent < 1 or any(h < 1 for h in n_hidden):
        raise ValueError(f"Layer sizes must be positive (n_latent={n_latent}, n_hidden={tuple(n_hidden)}).")
    model_key = model_key_for(key_added)
    ours = result_kind(adata.uns.get(model_key)) == "model"
    claim_obsm_key(adata, key_added, ours=ours, what="scdeconv representation")
    claim_uns_key(adata, model_key, "model")

    rng = np.random.default_rng(seed)
    train_rows, val_rows = _split(adata.n_obs, validation_fraction, batch_size, rng)
    chunked = shuffle == "chunks" or (shuffle == "auto" and on_disk)
    params = {
        "n_latent": int(n_latent),
        "n_hidden": np.asarray(n_hidden, dtype=int),
        "softplus_beta": float(softplus_beta or 0.0),
        "likelihood": likelihood,
        "size_factors": bool(size_factors),
        "target_sum": float(np.median(library[train_rows])),
        "ortho_penalty": float(ortho_penalty),
        "layer": layer or "X",
        "mask_var": mask_var or "",
        "max_epochs": int(max_epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "optimizer": optimizer,
        "validation_fraction": float(validation_fraction),
        "patience": int(patience),
        "seed": int(seed),
        "shuffle": "chunks" if chunked else "global",
        "chunk_size": int(chunk_size),
        "distributed": bool(distributed),
        "latent_key": key_added,
    }
    generator = torch.Generator().manual_seed(seed)
    module = build_model(params, len(genes), generator=generator)
    device = resolve_device(device)
    logger.info("Training on %d cells x %d genes (%s%s).", adata.n_obs, len(genes), device, ", on disk" * on_disk)
    # On disk, the validation cells are read once and kept in memory as sparse counts.
    val_counts = sparse_rows(counts, val_rows) if on_disk else None
    result = fit(
        module,
        counts,
        train_rows=train_rows,
        val_rows=val_rows,
        batch_size=batch_size,
        max_epochs=max_epochs,
        lr=lr,
        weight_decay=weight_decay,
        optimizer=optimizer,
        ortho_penalty=ortho_penalty,
        patience=patience,
        seed=seed,
        device=device,
        progress=progress,
        chunk_size=chunk_size if chunked else None,
        val_counts=val_counts,
        distributed=distributed,
    )
    params.update(
        n_epochs=len(result.epoch),
        best_epoch=int(result.best_epoch),
        stopped_early=bool(result.stopped_early),
        device=str(device),
        validation_cells=adata.obs_names[val_rows].to_numpy(dtype=str),
    )
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
