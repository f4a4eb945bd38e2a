"""Tests of ``scdeconv.datasets``: the bundled Paul15 data and the two simulators with known truth."""

from __future__ import annotations

import sys
import urllib.error
from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scdeconv.datasets import _paul15 as paul15_module
from scdeconv.datasets import paul15, simulate_hematopoiesis, simulate_xor
from scdeconv.genesets import detect_species, hallmark

# A small simulation keeps the file fast; n_genes=800 is the documented size that keeps at least
# 25 genes of each planted set and 10 of each negative set.
N_CELLS, N_GENES = 600, 800


@pytest.fixture(scope="module")
def hema() -> ad.AnnData:
    return simulate_hematopoiesis(N_CELLS, n_genes=N_GENES, seed=0)


@pytest.fixture(scope="module")
def hema_cp10k(hema) -> np.ndarray:
    X = hema.X.toarray().astype(float)
    return X / X.sum(axis=1, keepdims=True) * 1e4


@pytest.fixture(scope="module")
def toy() -> ad.AnnData:
    return simulate_xor(1000, seed=0)


def _assert_counts(X) -> None:
    assert sp.issparse(X) and X.format == "csr"
    assert np.issubdtype(X.dtype, np.integer)
    assert X.data.min() >= 0


def _ratio(values: np.ndarray, cells: np.ndarray) -> float:
    """Mean expression in ``cells`` over the mean in the other cells."""
    return float(values[cells].mean() / values[~cells].mean())


def _assert_same_tree(a, b, path="uns['simulation']") -> None:
    """Nested dict of arrays, DataFrames and scalars, compared after an h5ad round trip."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for key in a:
            _assert_same_tree(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=path)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a.astype(b.dtype) if a.dtype.kind == "U" else a, b, err_msg=path)
    else:
        assert a == b, path


# --- paul15 -----------------------------------------------------------------------------------


def test_paul15_shape_counts_and_cell_type():
    adata = paul15()
    assert adata.shape == (2730, 3451)
    _assert_counts(adata.X)
    assert int(adata.X.sum()) == 6_083_492  # the provenance file's checksum of the counts
    cell_type = adata.obs["cell_type"]
    assert list(cell_type.cat.categories) == ["Ery", "MEP", "Mk", "GMP", "DC", "Baso", "Mo", "Neu", "Eos", "Lymph"]
    assert not cell_type.isna().any()
    counts = cell_type.value_counts()
    assert counts["Ery"] == 1095 and counts["GMP"] == 216 and counts["Mo"] == 559
    pairs = set(zip(adata.obs["paul15_clusters"].astype(str), cell_type.astype(str), strict=True))
    assert ("9GMP", "GMP") in pairs and ("10GMP", "GMP") in pairs and ("7MEP", "MEP") in pairs
    assert detect_species(adata.var_names) == "mouse"


def test_paul15_returns_a_fresh_object():
    a, b = paul15(), paul15()
    a.obs["extra"] = 1
    a.X.data[:] = 0
    assert "extra" not in b.obs
    assert b.X.sum() > 0


def _without_bundled_file(monkeypatch, scanpy_loader) -> None:
    """Pretend the bundled file is missing and stand in for scanpy (no download, no slow import)."""

    def missing(name):
        raise FileNotFoundError(name)

    monkeypatch.setattr(paul15_module, "data_path", missing)
    monkeypatch.setitem(sys.modules, "scanpy", SimpleNamespace(datasets=SimpleNamespace(paul15=scanpy_loader)))


def test_paul15_missing_file_and_offline_gives_clear_error(monkeypatch):
    def offline():
        raise urllib.error.URLError("no network")

    _without_bundled_file(monkeypatch, offline)
    with pytest.raises(RuntimeError, match=r"bundled paul15\.h5ad is missing"):
        paul15()


def test_paul15_download_fallback_gets_integer_counts(monkeypatch):
    small = ad.AnnData(
        X=np.array([[1.0, 0.0], [2.0, 3.0]], dtype=np.float32),
        obs=pd.DataFrame({"paul15_clusters": pd.Categorical(["1Ery", "14Mo"])}, index=["0", "1"]),
    )
    _without_bundled_file(monkeypatch, small.copy)
    adata = paul15()
    _assert_counts(adata.X)
    assert adata.obs["cell_type"].astype(str).tolist() == ["Ery", "Mo"]


def test_cell_types_rejects_unknown_clusters():
    with pytest.raises(ValueError, match="Unexpected Paul15 cluster"):
        paul15_module.cell_types(pd.Series(["1Ery", "20Foo"]))


# --- simulate_hematopoiesis -------------------------------------------------------------------


def test_hema_shapes_and_counts(hema):
    assert hema.shape == (N_CELLS, N_GENES)
    _assert_counts(hema.X)
    assert hema.var_names.is_unique and hema.obs_names.is_unique
    assert list(hema.obs["group"].cat.categories) == ["Ery", "Mk", "GMP", "Baso", "Mo", "Neu"]
    shares = hema.obs["group"].value_counts(normalize=True)
    assert shares["Ery"] == pytest.approx(0.30, abs=0.01) and shares["Mk"] == pytest.approx(0.10, abs=0.01)


def test_hema_realistic_libraries_and_sparsity(hema):
    totals = np.asarray(hema.X.sum(axis=1)).ravel()
    assert 1500 < np.median(totals) < 6000
    # log-normal spread like droplet data: the 95th percentile cell has several times the UMIs of the 5th
    q05, q95 = np.percentile(totals, [5, 95])
    assert 3 < q95 / q05 < 20
    # zeros come from low NB means (no added dropout); 800 genes share the UMIs, so fewer than in a full panel
    zeros = 1 - hema.X.nnz / np.prod(hema.shape)
    assert 0.3 < zeros < 0.95
    means = np.asarray(hema.X.mean(axis=0)).ravel()
    detected = np.asarray((hema.X > 0).mean(axis=0)).ravel()
    assert detected[means < 0.1].max() < 0.2
    # heavy-tailed gene means: top 1 % of genes far above the median gene
    assert np.percentile(means, 99) / np.median(means) > 10


def test_hema_gene_symbols(hema):
    universe = {g for genes in hallmark("mouse").values() for g in genes}
    kinds = hema.var["gene_kind"].astype(str)
    assert set(hema.var_names[kinds == "hallmark"]) <= universe
    assert not set(hema.var_names[kinds != "hallmark"]) & universe
    assert detect_species(hema.var_names) == "mouse"
    assert hema.var_names[kinds == "filler"].str.match(r"^Gene\d{4}$").all()


def test_hema_truth_structure(hema):
    truth = hema.uns["simulation"]
    for key in ("planted_sets", "program_genes", "novel_programs", "xor_genes", "gene_sets", "negative_sets", "params"):
        assert key in truth
    assert set(truth["planted_sets"]) == set(hema.obs["group"].cat.categories)
    planted = [s for names in truth["planted_sets"].values() for s in names]
    assert len(planted) == len(set(planted)) == 12
    programs = truth["program_genes"]
    assert set(planted) | {"ProgA", "ProgB", "ProgC", "XOR", "XOR_A", "XOR_B"} == set(programs)
    all_program_genes = np.concatenate(list(programs.values()))
    assert len(all_program_genes) == len(set(all_program_genes)), "a gene belongs to one program"
    assert set(all_program_genes) <= set(hema.var_names)
    for name, genes in programs.items():
        assert (hema.var.loc[genes, "program"].astype(str) == name).all()
        assert f"activity_{name}" in hema.obs
    assert set(truth["novel_programs"]) == {"ProgA", "ProgB", "ProgC"}
    assert list(truth["xor_genes"]) == list(programs["XOR"])
    assert truth["params"]["seed"] == 0 and truth["params"]["n_genes"] == N_GENES
    assert {"xor_a", "xor_b", "xor"} <= set(hema.obs)
    np.testing.assert_array_equal(hema.obs["xor"], hema.obs["xor_a"] ^ hema.obs["xor_b"])


def test_hema_gene_set_table(hema):
    gene_sets = hema.uns["simulation"]["gene_sets"]
    assert len(gene_sets) == 50
    assert (gene_sets["role"] == "planted").sum() == 12 and (gene_sets["role"] == "negative").sum() == 11
    assert gene_sets.loc[gene_sets["role"] == "planted", "n_present"].min() >= 25
    negatives = hema.uns["simulation"]["negative_sets"]
    assert len(negatives) == 11
    assert (gene_sets.loc[negatives, "n_perturbed"] == 0).all()
    sets = hallmark("mouse")
    for name in negatives:
        present = hema.var_names.intersection(sets[name])
        assert (hema.var.loc[present, "program"].astype(str) == "").all(), name


def test_hema_same_seed_identical_other_seed_differs(hema):
    again = simulate_hematopoiesis(N_CELLS, n_genes=N_GENES, seed=0)
    assert again.var_names.equals(hema.var_names)
    assert (again.X != hema.X).nnz == 0
    pd.testing.assert_frame_equal(again.obs, hema.obs)
    other = simulate_hematopoiesis(N_CELLS, n_genes=N_GENES, seed=1)
    assert other.shape == hema.shape
    assert not (other.var_names.equals(hema.var_names) and (other.X != hema.X).nnz == 0)


def test_hema_planted_sets_up_in_their_group(hema, hema_cp10k):
    truth = hema.uns["simulation"]
    for group, names in truth["planted_sets"].items():
        cells = (hema.obs["group"] == group).to_numpy()
        for name in names:
            genes = hema.var_names.get_indexer(truth["program_genes"][name])
            ratio = _ratio(hema_cp10k[:, genes].mean(axis=1), cells)
            assert ratio > 2, f"{name} only {ratio:.2f}x higher in {group}"


def test_hema_negative_sets_flat_across_groups(hema, hema_cp10k):
    sets = hallmark("mouse")
    for name in hema.uns["simulation"]["negative_sets"]:
        genes = hema.var_names.get_indexer(hema.var_names.intersection(sets[name]))
        score = hema_cp10k[:, genes].mean(axis=1)
        for group in hema.obs["group"].cat.categories:
            ratio = _ratio(score, (hema.obs["group"] == group).to_numpy())
            assert 0.6 < ratio < 1.4, f"negative set {name} is {ratio:.2f}x in {group}"


def test_hema_novel_and_xor_programs(hema, hema_cp10k):
    truth = hema.uns["simulation"]
    for name, genes in truth["novel_programs"].items():
        cells = (hema.obs[f"activity_{name}"] > 0).to_numpy()
        assert 0 < cells.mean() < 1
        assert _ratio(hema_cp10k[:, hema.var_names.get_indexer(genes)].mean(axis=1), cells) > 2, name
    xor_score = hema_cp10k[:, hema.var_names.get_indexer(truth["xor_genes"])].mean(axis=1)
    a, b = hema.obs["xor_a"].to_numpy(), hema.obs["xor_b"].to_numpy()
    assert 0.4 < a.mean() < 0.6 and 0.4 < b.mean() < 0.6
    means = {(i, j): xor_score[(a == i) & (b == j)].mean() for i in (False, True) for j in (False, True)}
    # XOR: up when exactly one factor is on, and not when both or neither are
    low = max(means[False, False], means[True, True])
    assert min(means[True, False], means[False, True]) > 2 * low
    a_score = hema_cp10k[:, hema.var_names.get_indexer(truth["xor_marginal_genes"]["a"])].mean(axis=1)
    assert _ratio(a_score, a) > 2


def test_hema_xor_fold_change_weakens_only_the_xor_blocks(hema, hema_cp10k):
    weak = simulate_hematopoiesis(N_CELLS, n_genes=N_GENES, seed=0, xor_fold_change=(1.5, 2.5))
    # The same random draws as the default: groups, activities and library sizes are unchanged.
    pd.testing.assert_frame_equal(weak.obs, hema.obs)
    np.testing.assert_array_equal(weak.uns["simulation"]["params"]["xor_fold_change"], [1.5, 2.5])
    assert len(hema.uns["simulation"]["params"]["xor_fold_change"]) == 0
    x = weak.X.toarray().astype(float)
    cp10k = x / x.sum(axis=1, keepdims=True) * 1e4
    on = weak.obs["xor"].to_numpy()
    cols = weak.var_names.get_indexer(weak.uns["simulation"]["xor_genes"])
    ratio_weak = _ratio(cp10k[:, cols].mean(axis=1), on)
    ratio_default = _ratio(hema_cp10k[:, cols].mean(axis=1), on)
    # Per-gene fold changes in 1.5-2.5x, times a per-cell activity of mean 1 (Jensen lifts the mean
    # ratio a little, the renormalisation of the other programmes lowers it): measured 1.9 on seed
    # 0; the default draws fold_change=3 ** U(0.5, 1.5), measured above 3.
    assert 1.3 < ratio_weak < 2.8 and ratio_weak < ratio_default - 0.5
    # Genes outside the XOR blocks keep their design (the same programme genes and baselines).
    pd.testing.assert_series_equal(weak.var["program"], hema.var["program"])


def test_hema_h5ad_round_trip(hema, tmp_path):
    path = tmp_path / "sim.h5ad"
    hema.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert (back.X != hema.X).nnz == 0
    pd.testing.assert_frame_equal(back.obs, hema.obs)
    _assert_same_tree(hema.uns["simulation"], back.uns["simulation"])


def test_hema_without_marginal_blocks_round_trips(tmp_path):
    adata = simulate_hematopoiesis(60, n_genes=500, xor_marginal_size=0, n_smooth_factors=0, seed=2)
    assert len(adata.uns["simulation"]["xor_marginal_genes"]["a"]) == 0
    assert "XOR_A" not in adata.uns["simulation"]["program_genes"]
    adata.write_h5ad(tmp_path / "small.h5ad")
    _assert_same_tree(adata.uns["simulation"], ad.read_h5ad(tmp_path / "small.h5ad").uns["simulation"])


def test_hema_all_hallmark_genes():
    adata = simulate_hematopoiesis(60, n_genes=None, seed=0)
    universe = {g for genes in hallmark("mouse").values() for g in genes}
    assert universe <= set(adata.var_names)
    assert adata.uns["simulation"]["params"]["n_genes_requested"] == -1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_genes": 200}, r"Pass n_genes >= \d+"),
        ({"fold_change": 0.5}, "fold_change must lie in"),
        ({"set_fraction": 0.0}, "set_fraction must lie in"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"n_cells": 5}, "n_cells must be at least"),
    ],
)
def test_hema_bad_arguments(kwargs, match):
    args = {"n_cells": 100, "n_genes": 500} | kwargs
    with pytest.raises(ValueError, match=match):
        simulate_hematopoiesis(**args)


def test_hema_bad_types():
    with pytest.raises(TypeError, match="n_genes must be an integer"):
        simulate_hematopoiesis(100, n_genes=500.0)


# --- simulate_xor -----------------------------------------------------------------------------


def test_xor_shapes_and_truth(toy):
    assert toy.shape == (1000, 200)
    _assert_counts(toy.X)
    truth = toy.uns["simulation"]
    modules = truth["modules"]
    assert modules["rule"].tolist() == ["F0", "F1", "F2", "F3", "F0 xor F1", "F2 xor F3"]
    assert list(truth["xor_modules"]) == ["module_4", "module_5"]
    assert all(len(genes) == 20 for genes in truth["module_genes"].values())
    for name, genes in truth["module_genes"].items():
        assert (toy.var.loc[genes, "module"] == name).all()
    np.testing.assert_array_equal(toy.obs["module_4"], toy.obs["factor_0"] ^ toy.obs["factor_1"])
    totals = np.asarray(toy.X.sum(axis=1)).ravel()
    assert 1000 < np.median(totals) < 4000


def test_xor_modules_follow_their_rule(toy):
    X = toy.X.toarray().astype(float)
    cp10k = X / X.sum(axis=1, keepdims=True) * 1e4
    truth = toy.uns["simulation"]
    for name, genes in truth["module_genes"].items():
        score = cp10k[:, toy.var_names.get_indexer(genes)].mean(axis=1)
        assert _ratio(score, toy.obs[name].to_numpy()) > 2.5, name
    # The XOR module is not explained by either factor alone.
    score = cp10k[:, toy.var_names.get_indexer(truth["module_genes"]["module_4"])].mean(axis=1)
    for factor in ("factor_0", "factor_1"):
        assert 0.8 < _ratio(score, toy.obs[factor].to_numpy()) < 1.25


def test_xor_reproducible_and_round_trip(toy, tmp_path):
    again = simulate_xor(1000, seed=0)
    assert (again.X != toy.X).nnz == 0
    assert (simulate_xor(1000, seed=1).X != toy.X).nnz > 0
    toy.write_h5ad(tmp_path / "xor.h5ad")
    back = ad.read_h5ad(tmp_path / "xor.h5ad")
    _assert_same_tree(toy.uns["simulation"], back.uns["simulation"])
    pd.testing.assert_frame_equal(back.obs, toy.obs)


def test_xor_fold_change_range_draws_weaker_markers():
    weak = simulate_xor(1000, fold_change=(1.5, 2.5), seed=0)
    markers = weak.var["module"].to_numpy() != ""
    fold = weak.var["fold_change"].to_numpy()
    assert ((fold[markers] >= 1.5) & (fold[markers] <= 2.5)).all() and (fold[~markers] == 1).all()
    assert fold[markers].std() > 0.1  # one fold change per gene, not one per module
    np.testing.assert_array_equal(weak.uns["simulation"]["params"]["fold_change"], [1.5, 2.5])
    x = weak.X.toarray().astype(float)
    cp10k = x / x.sum(axis=1, keepdims=True) * 1e4
    for name, genes in weak.uns["simulation"]["module_genes"].items():
        ratio = _ratio(cp10k[:, weak.var_names.get_indexer(genes)].mean(axis=1), weak.obs[name].to_numpy())
        # The realised ratio of a module's mean: its genes' fold changes averaged (1.5-2.5),
        # lowered a little by the renormalisation of the other modules on in the same cells.
        assert 1.3 < ratio < 2.6, (name, ratio)
    # A number is the same as the range it spans: no draw, the data a seed always gave.
    assert (
        simulate_xor(200, fold_change=3.0, seed=1).X != simulate_xor(200, fold_change=(3.0, 3.0), seed=1).X
    ).nnz == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_genes": 50}, "lower module_size or n_modules"),
        ({"n_xor_modules": 7}, "exceeds n_modules"),
        ({"n_factors": 1}, "needs two factors"),
        ({"factor_prob": 1.0}, "factor_prob must lie in"),
        ({"fold_change": (2.5, 1.5)}, "low > high"),
        ({"fold_change": (0.5, 2.0)}, "fold_change must lie in"),
    ],
)
def test_xor_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_xor(100, **kwargs)


def test_wu2020_tcells_bundled():
    from scdeconv.datasets import wu2020_tcells

    adata = wu2020_tcells()
    assert adata.shape == (200, 30727)
    _assert_counts(adata.X)
    assert detect_species(adata.var_names) == "human"
    assert adata.obs["lineage"].value_counts().to_dict() == {"CD4": 100, "CD8": 91, "other": 9}
    cd8 = adata.obs["cluster_orig"].astype(str).str.startswith("8.")
    assert (adata.obs.loc[cd8, "lineage"] == "CD8").all()
    # CD8A marks the CD8 lineage: higher mean count there than in CD4 cells.
    cd8a = np.asarray(adata[:, "CD8A"].X.todense()).ravel()
    assert cd8a[cd8.to_numpy()].mean() > 5 * cd8a[(adata.obs["lineage"] == "CD4").to_numpy()].mean()
    assert wu2020_tcells() is not adata
