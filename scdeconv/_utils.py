"""Input checks and matrix access shared by the AnnData-facing functions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._rows import DEFAULT_CHUNK_SIZE, ChunkedRows, is_on_disk, row_blocks


def get_matrix(adata: AnnData, layer: str | None):
    """``adata.X`` or ``adata.layers[layer]`` (on disk for a backed AnnData), with a clear error when missing."""
    if layer is None:
        if adata.X is None:
            raise ValueError("adata.X is empty. Pass `layer=` naming the layer that holds raw counts.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"Layer {layer!r} not found; adata.layers has {list(adata.layers)}. Pass one of them.")
    return adata.layers[layer]


def _stored_values(matrix) -> np.ndarray:
    if sparse.issparse(matrix):
        return matrix.data
    return np.asarray(matrix)


def check_counts(matrix, *, layer: str | None) -> None:
    """Raise if ``matrix`` is not finite, non-negative and integer-valued (raw UMI counts)."""
    for block in row_blocks(matrix):  # on disk: one chunk of rows at a time
        _check_count_values(block, layer=layer)


def _check_count_values(matrix, *, layer: str | None) -> None:
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    values = _stored_values(matrix)
    if values.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} has dtype {values.dtype}; raw counts must be numeric. Convert it "
            "(e.g. `.astype(np.float32)`) or pass `layer=` naming the layer with raw counts."
        )
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(
            f"{where} contains {int((~np.isfinite(values)).sum())} NaN or infinite values. Raw counts must be "
            "finite: fix or drop those cells/genes, or pass `layer=` naming the layer with raw counts."
        )
    if values.size and values.min() < 0:
        raise ValueError(
            f"{where} contains negative values, so it is not raw counts (scaled or centred data?). "
            "Pass `layer=` naming the layer with raw UMI counts, e.g. layer='counts'."
        )
    if values.dtype.kind == "f" and values.size and not np.all(values == np.round(values)):
        raise ValueError(
            f"{where} contains non-integer values, so it is not raw counts (log-normalised?). "
            "Pass `layer=` naming the layer with raw UMI counts (e.g. save `adata.layers['counts'] = "
            "adata.X.copy()` before `sc.pp.normalize_total`)."
        )


def check_var_names(var_names: pd.Index) -> None:
    """Raise if gene symbols are missing or duplicated."""
    names = pd.Index(var_names).astype(str)
    empty = (names.str.strip() == "") | names.isin(["nan", "None"])
    if empty.any():
        raise ValueError(
            f"{int(empty.sum())} genes have no symbol in var_names. Set gene symbols as var_names "
            "(e.g. `adata.var_names = adata.var['gene_symbols']`) and drop genes without one."
        )
    if names.has_duplicates:
        dup = names[names.duplicated()].unique()[:5].tolist()
        raise ValueError(f"var_names has duplicated gene symbols (e.g. {dup}). Run `adata.var_names_make_unique()`.")


def columns_of(var_names: pd.Index, genes: Sequence[str], *, what: str) -> np.ndarray:
    """Positions of ``genes`` in ``var_names``; a clear error when some are missing."""
    positions = pd.Index(var_names).get_indexer(pd.Index(genes))
    missing = np.asarray(genes)[positions < 0]
    if len(missing):
        raise ValueError(
            f"{len(missing)} of the {len(genes)} genes of {what} are not in adata.var_names "
            f"(e.g. {list(missing[:3])}). The AnnData was subset or re-indexed after training: use the "
            "object the model was trained on, or train again."
        )
    return positions


def select_columns(matrix, columns: np.ndarray):
    """``matrix[:, columns]``, skipping the copy when the columns are all of them in order."""
    if len(columns) == matrix.shape[1] and np.array_equal(columns, np.arange(matrix.shape[1])):
        return matrix
    if sparse.issparse(matrix):
        return sparse.csr_matrix(matrix)[:, columns]
    return np.asarray(matrix)[:, columns]


def as_row_matrix(matrix):
    """Sparse matrices as CSR, so minibatches of rows are cheap to slice."""
    if sparse.issparse(matrix) and not isinstance(matrix, sparse.csr_matrix | sparse.csr_array):
        return sparse.csr_matrix(matrix)
    return matrix


def totals(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Counts per cell and per gene (float64), streamed chunk by chunk when ``matrix`` is on disk."""
    cells, genes = [], np.zeros(matrix.shape[1])
    for block in row_blocks(matrix):
        cells.append(np.asarray(block.sum(axis=1, dtype=np.float64)).ravel())
        genes += np.asarray(block.sum(axis=0, dtype=np.float64)).ravel()
    return np.concatenate(cells) if cells else np.zeros(0), genes


def count_matrix(adata: AnnData, layer: str | None, columns: np.ndarray, *, chunk_size: int | None = None):
    """The counts of ``columns`` (genes), ready for row batches.

    In memory: CSR (or dense) with those columns. On disk (``adata.X`` of a backed AnnData):
    a :class:`~scdeconv._rows.ChunkedRows` that reads ``chunk_size`` cells at a time.
    """
    matrix = get_matrix(adata, layer)
    if is_on_disk(matrix):
        return ChunkedRows(matrix, columns, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE)
    return as_row_matrix(select_columns(matrix, columns))


def check_not_backed_copy(adata: AnnData, copy: bool) -> None:
    """``copy=True`` on a backed AnnData would load it whole: refuse with a way out."""
    if copy and adata.isbacked:
        raise ValueError(
            "copy=True would load the backed AnnData into memory. Use copy=False (results are written to "
            "obsm/uns in memory; save them with `adata.write_h5ad(...)`), or `adata.to_memory()` first."
        )
