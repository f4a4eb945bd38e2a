"""The data ``speed.py`` times on: Paul15 with every gene counted, its negative-binomial copies, and
synthetic on-disk files of any size (written block by block, never whole in memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def paul15_counts():
    import scdeconv as sd

    adata = sd.datasets.paul15()
    sd.pp.select_genes(adata, mode="all")
    return adata[:, adata.var["scdeconv_selected"].to_numpy()].copy()


def nb_copies(adata, factor: int, seed: int = 0, block: int = 10_000):
    """``factor`` x the cells of ``adata``: negative-binomial counts around randomly drawn real cells."""
    import anndata
    from scipy import sparse

    rng = np.random.default_rng(seed)
    x = sparse.csr_matrix(adata.X, dtype=np.float64)
    library = np.asarray(x.sum(axis=1)).ravel()
    share = np.asarray(x.sum(axis=0)).ravel() / library.sum()
    n = adata.n_obs * factor
    pieces = []
    for start in range(0, n, block):
        src = rng.integers(0, adata.n_obs, min(block, n - start))
        own = x[src].toarray() / library[src, None]
        mu = library[src, None] * (0.7 * own + 0.3 * share)
        pieces.append(sparse.csr_matrix(rng.poisson(rng.gamma(5.0, mu / 5.0)).astype(np.float32)))
    out = anndata.AnnData(sparse.vstack(pieces, format="csr"))
    out.var_names = adata.var_names
    out.obs_names = [f"c{i}" for i in range(n)]
    return out


def write_synthetic_h5ad(path: Path, n_cells: int, n_genes: int = 2000, seed: int = 0, block: int = 20_000) -> None:
    """Write N x G NB counts (Hallmark gene symbols) as a CSR ``.h5ad``, block by block (never whole in memory)."""
    import h5py
    import pandas as pd
    from anndata.io import write_elem
    from scipy import sparse

    import scdeconv as sd

    genes = sorted({g for s in sd.genesets.hallmark("human").values() for g in s})[:n_genes]
    rng = np.random.default_rng(seed)
    base = rng.lognormal(-1.5, 1.5, n_genes)
    programs = rng.random((8, n_genes)) < 0.05  # 8 cell states with their own raised genes
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        write_elem(f, "obs", pd.DataFrame(index=pd.Index([f"c{i}" for i in range(n_cells)], dtype=str)))
        write_elem(f, "var", pd.DataFrame(index=pd.Index(genes, dtype=str)))
        for key in ("obsm", "varm", "layers", "obsp", "varp", "uns"):
            write_elem(f, key, {})
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        g.attrs["shape"] = (n_cells, n_genes)
        data = g.create_dataset("data", (0,), maxshape=(None,), dtype=np.float32, chunks=(1 << 18,))
        indices = g.create_dataset("indices", (0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 18,))
        indptr = g.create_dataset("indptr", (n_cells + 1,), dtype=np.int64)
        indptr[0], nnz = 0, 0
        for start in range(0, n_cells, block):
            m = min(block, n_cells - start)
            state = rng.integers(0, 8, m)
            mu = base * np.where(programs[state], 6.0, 1.0) * rng.lognormal(0, 0.4, (m, 1))
            counts = rng.poisson(rng.gamma(3.0, mu / 3.0)).astype(np.float32)
            counts[np.arange(m), rng.integers(0, n_genes, m)] += 1  # no empty cell
            csr = sparse.csr_matrix(counts)
            data.resize((nnz + csr.nnz,))
            indices.resize((nnz + csr.nnz,))
            data[nnz:], indices[nnz:] = csr.data, csr.indices
            indptr[start + 1 : start + m + 1] = csr.indptr[1:] + nnz
            nnz += csr.nnz
