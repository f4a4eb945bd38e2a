"""Row access to count matrices held in memory or on disk (backed AnnData), in contiguous chunks.

A backed AnnData (``anndata.read_h5ad(path, backed="r")``) keeps ``X`` in the file: a sparse CSR
dataset or a dense HDF5 dataset. :class:`ChunkedRows` wraps it so that the torch core can treat
it like an in-memory matrix (``shape`` and ``rows[index]``), while every read is a contiguous
slice of at most ``chunk_size`` rows. Nothing of size cells x genes is ever read at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse

# Cells per chunk read from disk: 10,000 cells x 2,000 genes is at most 80 MB dense (float32),
# a few MB as sparse counts.
DEFAULT_CHUNK_SIZE = 10_000


def is_on_disk(matrix) -> bool:
    """Whether ``matrix`` lives outside memory (a backed AnnData's ``X``: h5py or a sparse dataset)."""
    return not (sparse.issparse(matrix) or isinstance(matrix, np.ndarray))


class ChunkedRows:
    """Rows of an on-disk count matrix, read in contiguous windows of at most ``chunk_size`` rows.

    Parameters
    ----------
    matrix
        A backed AnnData's ``X`` (anndata's sparse dataset or an ``h5py.Dataset``), or anything
        that returns scipy sparse or numpy rows for ``matrix[start:stop]``.
    columns
        Columns (genes) to keep, in this order; ``None`` keeps all.
    chunk_size
        Most rows read from disk at once.
    """

    def __init__(self, matrix, columns: np.ndarray | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of cells, not {chunk_size}.")
        self.matrix = matrix
        n_cols = matrix.shape[1]
        if columns is not None and np.array_equal(columns, np.arange(n_cols)):
            columns = None
        self.columns = None if columns is None else np.asarray(columns)
        self.chunk_size = int(chunk_size)
        self.shape = (matrix.shape[0], n_cols if self.columns is None else len(self.columns))

    def window(self, start: int, stop: int):
        """Rows ``start:stop`` (one contiguous read), as CSR when stored sparse, else a numpy array."""
        block = self.matrix[start:stop]
        if sparse.issparse(block):
            block = sparse.csr_matrix(block)
            return block if self.columns is None else block[:, self.columns]
        block = np.asarray(block)
        return block if self.columns is None else block[:, self.columns]

    def windows(self, rows: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, object]]:
        """``(rows, block)`` over consecutive windows; ``rows`` (sorted) restricts each block to those."""
        n = self.shape[0]
        for start in range(0, n, self.chunk_size):
            stop = min(start + self.chunk_size, n)
            if rows is None:
                yield np.arange(start, stop), self.window(start, stop)
                continue
            inside = rows[np.searchsorted(rows, start) : np.searchsorted(rows, stop)]
            if len(inside):
                yield inside, self.window(int(inside[0]), int(inside[-1]) + 1)[inside - inside[0]]

    def __getitem__(self, index):
        """The rows ``index`` (integer array, slice or int), in that order, read window by window."""
        if isinstance(index, slice):
            index = np.arange(self.shape[0])[index]
        index = np.atleast_1d(np.asarray(index))
        if index.dtype == bool:
            index = np.flatnonzero(index)
        order = None
        if len(index) > 1 and np.any(np.diff(index) < 0):
            order = np.argsort(index, kind="stable")
            index = index[order]
        pieces, i = [], 0
        while i < len(index):
            lo = int(index[i])
            j = int(np.searchsorted(index, lo + self.chunk_size, side="left"))
            pieces.append(self.window(lo, int(index[j - 1]) + 1)[index[i:j] - lo])
            i = j
        if not pieces:
            empty = self.window(0, 0)
            return empty
        out = sparse.vstack(pieces, format="csr") if sparse.issparse(pieces[0]) else np.concatenate(pieces)
        if order is not None:
            out = out[np.argsort(order)]
        return out


def row_blocks(matrix) -> Iterator[object]:
    """The matrix as row blocks: itself when in memory, contiguous windows when on disk."""
    if isinstance(matrix, ChunkedRows):
        for _, block in matrix.windows():
            yield block
    else:
        yield matrix


def sparse_rows(matrix, rows: np.ndarray) -> sparse.csr_matrix:
    """Rows of ``matrix`` as one in-memory CSR, built window by window (dense windows are sparsified)."""
    if not isinstance(matrix, ChunkedRows):
        block = matrix[rows]
        return sparse.csr_matrix(block)
    pieces = [sparse.csr_matrix(block) for _, block in matrix.windows(np.sort(rows))]
    out = sparse.vstack(pieces, format="csr") if pieces else sparse.csr_matrix((0, matrix.shape[1]))
    if np.any(np.diff(rows) < 0):
        out = out[np.argsort(np.argsort(rows, kind="stable"))]
    return out
