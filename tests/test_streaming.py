"""Backed (on-disk) AnnData: same results as in memory, bounded memory, chunks that combine exactly."""

from __future__ import annotations

import tracemalloc

import anndata
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import scdeconv as sd
from scdeconv._defaults import MODULE_CELLS
from scdeconv._module.reducers import AttributionProfile, CellActivity, SetMedians
from scdeconv._module.saliency import StreamOptions
from scdeconv._rows import ChunkedRows
from scdeconv.scoring import expression_bins
from scdeconv.tl._saliency_pass import gene_means, saliency_pass

TRAIN = {"n_latent": 8, "n_hidden": (16,), "max_epochs": 3, "batch_size": 32, "progress": False, "chunk_size": 70}


def _backed(adata, tmp_path, name="data.h5ad"):
    path = tmp_path / name
    adata.write_h5ad(path)
    return anndata.read_h5ad(path, backed="r")


class _RecordingMatrix:
    """A stand-in for an on-disk matrix that records the largest read."""

    def __init__(self, matrix):
        self.matrix, self.shape, self.largest = matrix, matrix.shape, 0

    def __getitem__(self, rows):
        block = self.matrix[rows]
        self.largest = max(self.largest, block.shape[0])
        return block


def test_chunked_rows_reads_windows_and_keeps_order():
    rng = np.random.default_rng(0)
    matrix = sparse.random(100, 7, density=0.3, format="csr", random_state=0)
    disk = _RecordingMatrix(matrix)
    rows = ChunkedRows(disk, np.array([5, 0, 3]), chunk_size=10)
    index = rng.choice(100, 40, replace=False)  # unsorted, spans every window
    np.testing.assert_array_equal(rows[index].toarray(), matrix[index][:, [5, 0, 3]].toarray())
    assert disk.largest <= 10
    blocks = list(rows.windows(np.sort(index)))
    assert sum(len(r) for r, _ in blocks) == 40 and all(b.shape[0] == len(r) for r, b in blocks)


@pytest.mark.parametrize("dense", [pytest.param(False, marks=pytest.mark.slow), True])  # sparse: group_diff too
def test_backed_matches_in_memory(counts_factory, tmp_path, dense):
    memory = counts_factory(n_cells=150, seed=3)
    if dense:
        memory.X = memory.X.toarray()
    backed = _backed(memory, tmp_path)
    for adata in (memory, backed):
        sd.pp.select_genes(adata)
    np.testing.assert_array_equal(memory.var["scdeconv_selected"], backed.var["scdeconv_selected"])
    # "chunks" shuffling in memory visits the batches a backed AnnData visits: the same model.
    sd.tl.train_autoencoder(memory, shuffle="chunks", **TRAIN)
    sd.tl.train_autoencoder(backed, **TRAIN)
    assert backed.uns["scdeconv"]["params"]["shuffle"] == "chunks"
    np.testing.assert_array_equal(memory.uns["scdeconv"]["history"], backed.uns["scdeconv"]["history"])
    np.testing.assert_allclose(memory.obsm["X_scdeconv"], backed.obsm["X_scdeconv"], rtol=1e-6, atol=1e-7)
    for adata in (memory, backed):
        sd.tl.module_impact(adata, n_null=20, chunk_size=70, progress=False)
        sd.tl.node_genes(adata, n_top=5, chunk_size=70, progress=False)
        if not dense:
            sd.tl.group_diff(adata, "group", "ery", chunk_size=70, progress=False)
    for key, table in [("scdeconv_impact", "impact"), ("scdeconv_group_diff", "diff")][: 1 + (not dense)]:
        np.testing.assert_allclose(memory.uns[key][table], backed.uns[key][table], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(memory.obsm["scdeconv_activity"], backed.obsm["scdeconv_activity"], atol=1e-5)
    ranked = [adata.uns["scdeconv_node_genes"] for adata in (memory, backed)]
    for table in ("names", "scores"):
        pd.testing.assert_frame_equal(ranked[0][table], ranked[1][table])
    # Results written to the backed object survive a round trip to a new file.
    backed.write_h5ad(tmp_path / "out.h5ad")
    assert "scdeconv_impact" in anndata.read_h5ad(tmp_path / "out.h5ad").uns


def test_backed_global_shuffle_matches_default(counts_factory, tmp_path):
    memory = counts_factory(n_cells=160, seed=4)
    backed = _backed(memory, tmp_path)
    sd.tl.train_autoencoder(memory, **{**TRAIN, "max_epochs": 2})  # in memory: global shuffle
    sd.tl.train_autoencoder(backed, shuffle="global", **{**TRAIN, "max_epochs": 2})  # random reads from disk
    np.testing.assert_allclose(memory.obsm["X_scdeconv"], backed.obsm["X_scdeconv"], rtol=1e-6, atol=1e-7)


def test_backed_copy_is_refused(counts_factory, tmp_path):
    backed = _backed(counts_factory(n_cells=60), tmp_path)
    with pytest.raises(ValueError, match="to_memory"):
        sd.tl.train_autoencoder(backed, copy=True, **TRAIN)


@pytest.mark.slow
def test_backed_memory_stays_bounded(tmp_path):
    """Train and score 8,000 cells x 600 genes from disk: beyond a sample of fixed size, far less than one dense X."""
    rng = np.random.default_rng(0)
    n_cells, n_genes = 8_000, 600
    counts = sparse.random(n_cells, n_genes, density=0.05, format="csr", random_state=1, dtype=np.float32)
    counts.data = np.ceil(counts.data * 5)
    one_each = (np.ones(n_cells, np.float32), (np.arange(n_cells), rng.integers(0, 10, n_cells)))
    counts = counts + sparse.csr_matrix(one_each, shape=(n_cells, n_genes))  # no empty cell
    adata = anndata.AnnData(sparse.csr_matrix(counts, dtype=np.float32))
    adata.var_names = [f"G{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    backed = _backed(adata, tmp_path)
    del adata, counts
    dense_bytes = n_cells * n_genes * 4
    sets = {f"S{i}": [f"G{j}" for j in range(10 * i, 10 * i + 10)] for i in range(5)}
    # Warm up on a tiny copy first, so that the modules imported on first use are not counted as data.
    warm = _backed(
        anndata.AnnData(
            sparse.csr_matrix(rng.poisson(2.0, size=(40, 50)).astype(np.float32) + 1),
            obs=pd.DataFrame(index=[f"w{i}" for i in range(40)]),
            var=pd.DataFrame(index=[f"G{i}" for i in range(50)]),
        ),
        tmp_path,
        "warm.h5ad",
    )
    sd.tl.train_autoencoder(warm, **{**TRAIN, "max_epochs": 1, "batch_size": 8, "chunk_size": 20})
    sd.tl.module_impact(warm, gene_sets=sets, species="human", n_null=2, chunk_size=20, progress=False)
    tracemalloc.start()
    try:
        sd.tl.train_autoencoder(backed, **{**TRAIN, "max_epochs": 1, "batch_size": 256, "chunk_size": 1000})
        sd.tl.module_impact(backed, gene_sets=sets, species="human", n_null=10, chunk_size=1000, batch_size=250,
                            progress=False)  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert backed.obsm["X_scdeconv"].shape == (n_cells, 8)
    # Besides the chunks, the co-expression null holds its sample of at most MODULE_CELLS cells: the
    # float32 rows, one float64 working copy and two genes x genes matrices. That does not grow with
    # the number of cells, so it is allowed on top of the bound for what does.
    module_bytes = MODULE_CELLS * n_genes * (4 + 8) + 2 * n_genes**2 * 8
    bound = dense_bytes / 4 + module_bytes
    assert peak < bound, f"peak {peak / 1e6:.0f} MB vs bound {bound / 1e6:.0f} MB (dense X {dense_bytes / 1e6:.0f} MB)"


def test_saliency_chunks_combine_exactly(trained_adata):
    adata = trained_adata
    params = adata.uns["scdeconv_impact"]["params"]
    genes = list(np.asarray(adata.uns["scdeconv"]["var_names"]).astype(str))
    stored_sets = adata.uns["scdeconv_impact"]["gene_sets"].values()
    set_columns = [np.array([genes.index(g) for g in members]) for members in stored_sets]
    labels = (adata.obs["group"] == "ery").to_numpy().astype(np.int64)
    options = StreamOptions(device="cpu", progress=False)
    bins = expression_bins(gene_means(adata, "scdeconv", options), 10)
    n_nodes, n_genes = 8, len(genes)

    def reducers():
        return [SetMedians(2, n_nodes, set_columns), AttributionProfile(2, n_nodes, n_genes),
                CellActivity(adata.n_obs, 2, bins, set_columns)]  # fmt: skip

    def run(cell_labels):
        parts = reducers()
        common = {"model_key": "scdeconv", "n_groups": 2, "method": params["method"], "options": options}
        return parts, saliency_pass(adata, parts, labels=cell_labels, **common)

    whole, n_whole = run(labels)
    halves = np.array_split(np.random.default_rng(0).permutation(adata.n_obs), 2)
    combined, n_combined = None, 0
    for half in halves:  # each part sees only its half of the cells; the rest are labelled -1
        part, n_part = run(np.where(np.isin(np.arange(adata.n_obs), half), labels, -1))
        n_combined = n_combined + n_part
        if combined is None:
            combined = part
        else:
            for mine, theirs in zip(combined, part, strict=True):
                mine.merge(theirs)
    np.testing.assert_array_equal(n_combined, n_whole)
    for mine, reference in zip(combined, whole, strict=True):
        for name in mine.summed:
            np.testing.assert_allclose(getattr(mine, name), getattr(reference, name), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(combined[2].activity, whole[2].activity, rtol=1e-6, atol=1e-9)
