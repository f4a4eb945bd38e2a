"""group_diff across samples (pseudobulk tests), every category at once, and the direction of each call."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind, ttest_rel

import scdeconv as sd


def test_paired_and_welch_kernels_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4, 3)), rng.normal(0.5, 2.0, size=(6, 4, 3))
    paired = sd.scoring.paired_t(a, b)
    expected = ttest_rel(a, b, axis=0)
    np.testing.assert_allclose(paired.statistic, expected.statistic, rtol=1e-10)
    np.testing.assert_allclose(paired.pvalue, expected.pvalue, rtol=1e-10)
    d = a - b
    np.testing.assert_allclose(paired.effect, d.mean(0) / d.std(0, ddof=1), rtol=1e-10)
    welch = sd.scoring.welch_from_values(a, b[:4] + 100.0)  # a large offset: no loss of precision
    expected = ttest_ind(a, b[:4] + 100.0, axis=0, equal_var=False)
    np.testing.assert_allclose(welch.statistic, expected.statistic, rtol=1e-9)
    np.testing.assert_allclose(welch.pvalue, expected.pvalue, rtol=1e-9)


def test_sample_design_pairs_only_when_every_sample_has_both_groups():
    design = sd.scoring.sample_design(np.array([20, 15, 12]), np.array([11, 30, 10]), 10)
    assert design.paired and list(design.rows1) == [0, 1, 2] and design.test == "paired t"
    # Sample 2 has too few cells in group 2: not every sample pairs, so the samples enter unpaired.
    design = sd.scoring.sample_design(np.array([20, 15, 12, 0]), np.array([11, 30, 3, 40]), 10)
    assert not design.paired and list(design.rows1) == [0, 1, 2] and list(design.rows2) == [0, 1, 3]
    with pytest.raises(ValueError, match=r"group2 has 1 sample.*sample_key=None"):
        sd.scoring.sample_design(np.array([20, 20]), np.array([0, 20]), 10)


def _with_donors(trained_adata, *, nested: bool):
    """Four donors: each with cells of both groups (paired), or d0, d1 only ery and d2, d3 only mono (nested)."""
    adata = trained_adata.copy()
    donor = np.resize(np.array(["d0", "d1", "d2", "d3"], dtype=object), adata.n_obs)
    if nested:
        ery = (adata.obs["group"] == "ery").to_numpy()
        donor[ery] = np.resize(["d0", "d1"], ery.sum())
        donor[~ery] = np.resize(["d2", "d3"], (~ery).sum())
    adata.obs["donor"] = pd.Categorical(donor)
    return adata


def _donor_means(adata, values: np.ndarray, group: str) -> np.ndarray:
    cells = (adata.obs["group"] == group).to_numpy()
    frame = pd.DataFrame(values[cells]).groupby(adata.obs["donor"].to_numpy()[cells], observed=True).mean()
    return frame.sort_index().to_numpy()


@pytest.mark.parametrize("nested", [False, True], ids=["paired", "welch"])
def test_sample_level_set_tests_are_tests_of_donor_means(trained_adata, nested):
    # Each donor's mean activity per group, compared across donors: ttest_rel when every donor has
    # both groups, Welch when donors are nested in groups.
    adata = _with_donors(trained_adata, nested=nested)
    sd.tl.group_diff(adata, "group", "ery", "mono", sample_key="donor", progress=False)
    result = adata.uns["scdeconv_group_diff"]
    params = result["params"]
    assert params["replicates"] == "samples" and params["sample_key"] == "donor"
    assert params["sample_test"] == ("Welch" if nested else "paired t")
    assert (params["n_samples1"], params["n_samples2"]) == ((2, 2) if nested else (4, 4))
    tests = result["set_tests"]
    activity = sd.get.activity(adata)[:, list(tests.index)].X
    ery, mono = _donor_means(adata, activity, "ery"), _donor_means(adata, activity, "mono")
    expected = ttest_ind(ery, mono, axis=0, equal_var=False) if nested else ttest_rel(ery, mono, axis=0)
    # group_diff's pass and module_impact's compute the float32 activity in different orders (the
    # impact's sums |gradient| over nodes before the input product: no attribution block is needed
    # for the expression profile), so the two agree to float32 rounding: p-values measured within
    # 7e-6 relative, hence 1e-4.
    np.testing.assert_allclose(tests["pvalue_samples"], expected.pvalue, rtol=1e-4)
    np.testing.assert_allclose(tests["mean_activity1"], ery.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tests["pvalue"], np.fmax(tests["pvalue_samples"], tests["pvalue_competitive"]))
    assert "pvalue_mw" not in tests
    assert (tests["direction"] == np.where(tests["effect"] > 0, "up", "down")).all()
    nodes = result["node_set_tests"]
    assert "pvalue_samples" in nodes and "pvalue_welch" not in nodes


def test_sample_level_node_tests_are_tests_of_donor_means(trained_adata):
    # The per-(node, set) test: each donor's mean per-cell score, recomputed with its own pass.
    from conftest import stream

    from scdeconv._model_store import load_model
    from scdeconv._module.reducers import NodeSetScores
    from scdeconv.scoring import expression_bins
    from scdeconv.tl._saliency_pass import model_counts

    adata = _with_donors(trained_adata, nested=False)
    sd.tl.group_diff(adata, "group", "ery", "mono", sample_key="donor", progress=False)
    tests = adata.uns["scdeconv_group_diff"]["node_set_tests"]
    impact = adata.uns["scdeconv_impact"]
    module, genes = load_model(adata, "scdeconv")
    counts, _ = model_counts(adata, "scdeconv")
    names = list(tests["pvalue"].columns)
    columns = [pd.Index(genes).get_indexer(impact["gene_sets"][n]) for n in names]
    bins = expression_bins(np.asarray(impact["gene_mean"]), int(impact["params"]["n_bins"]))
    # label = group * 4 + donor
    labels = pd.Categorical(adata.obs["group"]).codes * 4 + pd.Categorical(adata.obs["donor"]).codes
    reducer = NodeSetScores(8, module.n_latent, bins, columns)
    (scores,) = stream(module, counts, [reducer], labels=labels, method=impact["params"]["method"])
    means = scores.sums / np.bincount(labels, minlength=8)[:, None, None]
    expected = ttest_rel(means[:4], means[4:], axis=0)
    live = ~impact["node_stats"]["dead"].to_numpy()
    np.testing.assert_allclose(tests["pvalue_samples"].to_numpy()[live], expected.pvalue[live], rtol=1e-4, atol=1e-8)


def test_cells_as_replicates_is_said(trained_adata, caplog):
    params = trained_adata.uns["scdeconv_group_diff"]["params"]
    assert params["replicates"] == "cells" and params["sample_key"] == ""
    with caplog.at_level("INFO", logger="scdeconv"):
        sd.tl.group_diff(trained_adata, "group", "ery", progress=False, copy=True)
    assert "treated cells as replicates" in caplog.text


def test_too_few_samples_and_unknown_sample_key(trained_adata):
    adata = trained_adata.copy()
    adata.obs["donor"] = adata.obs["group"].astype(str)  # one donor per group
    with pytest.raises(ValueError, match="group1 has 1 'donor' sample"):
        sd.tl.group_diff(adata, "group", "ery", sample_key="donor", progress=False)
    with pytest.raises(KeyError, match="sample_key 'patient' is not a column"):
        sd.tl.group_diff(adata, "group", "ery", sample_key="patient", progress=False)
    assert "scdeconv_group_diff" not in adata.uns or adata.uns["scdeconv_group_diff"]["params"]["sample_key"] == ""


def test_all_groups_from_one_pass_equal_each_group_alone(trained_adata, monkeypatch):
    from scdeconv.tl import _group_diff

    adata = trained_adata.copy()
    group = adata.obs["group"].astype(str).to_numpy().copy()
    mono = np.flatnonzero(group == "mono")
    group[mono[::2]] = "mono_b"
    adata.obs["group3"] = pd.Categorical(group)
    passes = []
    real_pass = _group_diff.saliency_pass
    monkeypatch.setattr(_group_diff, "saliency_pass", lambda *a, **k: passes.append(1) or real_pass(*a, **k))
    sd.tl.group_diff(adata, "group3", "all", progress=False, key_added="every")
    assert len(passes) == 1  # three comparisons, one pass over the cells
    every = adata.uns["every"]
    assert list(every["contrasts"].index) == ["ery", "mono", "mono_b"]
    # Attributions are float32 summed per group inside each batch: pooling three groups instead of
    # two reorders those sums (relative error ~1e-7 per sum), which a log ratio of small profiles
    # turns into ~1e-5 of the score; a wrong pooling would change scores by far more (order 0.1-1).
    close = dict(rtol=1e-4, atol=1e-5)
    for name in ("ery", "mono_b"):
        sd.tl.group_diff(adata, "group3", name, progress=False, key_added="one")
        one = adata.uns["one"]
        pd.testing.assert_frame_equal(every["diff"][name], one["diff"], **close)
        pd.testing.assert_frame_equal(every["node_set_tests"][name]["fdr"], one["node_set_tests"]["fdr"], **close)
        long = every["set_tests"].query("group == @name").set_index("gene_set").drop(columns="group")
        pd.testing.assert_frame_equal(long.loc[one["set_tests"].index], one["set_tests"], check_names=False, **close)
        assert every["contrasts"].loc[name, "n_cells1"] == one["params"]["n_cells1"]
    table = sd.get.group_diff_df(adata, "every", level="set")
    assert table.columns[0] == "group" and set(table["group"]) == {"ery", "mono", "mono_b"}
    assert (table["group1"] == table["group"]).all() and set(table["direction"]) <= {"up", "down"}
    nodes = sd.get.group_diff_df(adata, "every", threshold=0.0)
    assert {"group", "node", "gene_set", "effect", "fdr", "direction"} <= set(nodes.columns)
    with pytest.raises(ValueError, match="leave group2='rest'"):
        sd.tl.group_diff(adata, "group3", "all", "ery", progress=False)


def test_node_table_direction_follows_effect(trained_adata):
    table = sd.get.group_diff_df(trained_adata, threshold=0.0)
    assert {"effect", "fdr", "direction"} <= set(table.columns)
    assert (table["direction"] == np.where(table["effect"] > 0, "up", "down")).all()


def test_all_groups_with_samples_round_trip(trained_adata, tmp_path):
    import anndata

    adata = _with_donors(trained_adata, nested=False)
    sd.tl.group_diff(adata, "group", "all", sample_key="donor", progress=False)
    contrasts = adata.uns["scdeconv_group_diff"]["contrasts"]
    assert (contrasts["sample_test"] == "paired t").all() and (contrasts["n_samples1"] == 4).all()
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = anndata.read_h5ad(tmp_path / "a.h5ad")
    pd.testing.assert_frame_equal(
        sd.get.group_diff_df(back, level="set"), sd.get.group_diff_df(adata, level="set"), check_dtype=False
    )


def test_cli_sample_key_is_checked_before_training(tmp_path, counts_adata, capsys):
    from scdeconv.cli import main

    path = tmp_path / "d.h5ad"
    counts_adata.write_h5ad(path)
    argv = ["run", str(path), "--groupby", "group", "--compare", "ery", "rest", "--sample-key", "patient"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert "sample_key 'patient' is not a column of adata.obs" in capsys.readouterr().err
    assert not (tmp_path / "out" / "scdeconv_result.h5ad").exists()


@pytest.mark.slow
def test_donor_effects_fool_cells_not_samples():
    # benchmarks/calibration.log, first donor table, seed 0, 8 donors, Ery cells: with donor effects
    # and no true difference, Mann-Whitney over cells called 37 of 50 sets and the sample-level test
    # none (none in all 32 null comparisons measured). Bounds leave room for other CPUs' arithmetic.
    from scdeconv.scoring import benjamini_hochberg

    adata = sd.datasets.simulate_hematopoiesis(2400, n_genes=800, seed=0, n_donors=8, donor_effect=1.0)
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=0, progress=False)
    sd.tl.module_impact(adata, progress=False)
    ery = adata[(adata.obs["group"] == "Ery").to_numpy()].copy()
    sd.tl.group_diff(ery, "condition", "stim", "ctrl", progress=False, key_added="cells")
    sd.tl.group_diff(ery, "condition", "stim", "ctrl", sample_key="donor", progress=False, key_added="samples")
    cells, samples = ery.uns["cells"]["set_tests"], ery.uns["samples"]["set_tests"]
    assert (benjamini_hochberg(cells["pvalue_mw"].to_numpy()) < 0.05).sum() >= 10
    assert (samples["fdr"] < 0.05).sum() == 0
    assert (benjamini_hochberg(samples["pvalue_samples"].to_numpy()) < 0.05).sum() <= 1


def test_median_score_and_no_null_with_samples_and_all_groups(trained_adata):
    # The paper's score streams per-cell set medians (no gene profiles) and n_null=0 has no
    # competitive part: the sample-level test is then the whole test.
    adata = _with_donors(trained_adata, nested=False)
    sd.tl.module_impact(adata, method="guided", score="median", progress=False)
    sd.tl.group_diff(adata, "group", "all", sample_key="donor", progress=False)
    result = adata.uns["scdeconv_group_diff"]
    tests = result["set_tests"]
    np.testing.assert_allclose(tests["pvalue"], tests["pvalue_samples"])
    nodes = result["node_set_tests"]["ery"]
    assert "pvalue_competitive" not in nodes and "pvalue_samples" in nodes
    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    ery, mono = result["node_set_tests"]["ery"]["effect"].to_numpy(), result["node_set_tests"]["mono"]["effect"]
    np.testing.assert_allclose(ery[live], -mono.to_numpy()[live], rtol=1e-6)  # two groups: mirror images
