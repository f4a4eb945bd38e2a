"""The scoring core against numpy/scipy references on small toys."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from scdeconv.scoring import (
    benjamini_hochberg,
    binned_zscores,
    expression_bins,
    matched_null,
    minmax_per_set,
    set_enrichment,
)


def test_expression_bins_are_equal_count_and_ordered():
    bins = expression_bins(np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0]), n_bins=3)
    np.testing.assert_array_equal(bins, [2, 0, 1, 1, 2, 0])


def test_binned_zscores_and_stouffer():
    profile = np.array([[1.0, 2.0, 3.0, 10.0], [0.0, 0.0, 4.0, 4.0]])
    bins = np.array([0, 0, 1, 1])
    z = binned_zscores(profile, bins)
    np.testing.assert_allclose(z[0], [-1, 1, -1, 1])
    np.testing.assert_allclose(z[1], [0, 0, 0, 0])  # no spread within a bin: zeros, not NaN
    np.testing.assert_allclose(set_enrichment(z, [np.array([1, 3])]), [[2 / np.sqrt(2)], [0.0]])


def test_benjamini_hochberg_matches_scipy_and_keeps_nans():
    p = np.random.default_rng(0).random((5, 7)) ** 2
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p.ravel()).reshape(5, 7))
    p[1, 2] = np.nan
    out = benjamini_hochberg(p)
    assert np.isnan(out[1, 2]) and np.isfinite(np.delete(out.ravel(), 9)).all()


def test_matched_null_is_standard_for_random_z():
    rng = np.random.default_rng(1)
    bins = expression_bins(rng.random(600), 10)
    z = binned_zscores(rng.standard_normal((3, 600)), bins)  # as the pipeline: z-scored within bins
    sets = [rng.choice(600, 40, replace=False), rng.choice(600, 15, replace=False)]
    null = matched_null(z, bins, sets, n_null=2000, seed=0)
    # Stouffer sums of 40 or 15 draws from bins with mean 0 and sd 1: mean 0, sd about 1 (the
    # 60-gene pools drawn without replacement shrink it by at most 5%).
    assert np.abs(null.mean).max() < 0.15 and (np.abs(null.sd - 1) < 0.15).all()
    assert null.n_exceeding.shape == (3, 2) and null.best_exceeding.shape == (2,)
    # Reproducible with the seed.
    np.testing.assert_array_equal(null.n_exceeding, matched_null(z, bins, sets, n_null=2000, seed=0).n_exceeding)


def test_matched_null_flags_a_planted_set():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 500))
    planted = np.arange(30)
    z[2, planted] += 1.5
    null = matched_null(z, np.zeros(500, dtype=int), [planted], n_null=500, seed=0)
    assert null.n_exceeding[2, 0] == 0 and null.best_exceeding[0] == 0
    assert (null.n_exceeding[[0, 1, 3], 0] > 0).all()


def test_minmax_per_set():
    impact = pd.DataFrame({"A": [1.0, 3.0, 2.0], "B": [5.0, 5.0, 5.0]})
    scaled = minmax_per_set(impact)
    np.testing.assert_allclose(scaled["A"], [0, 1, 0.5])
    np.testing.assert_allclose(scaled["B"], [0, 0, 0])


def test_welch_from_moments_matches_scipy():
    # Moments in, the same t, p as scipy's Welch test on the raw values; effect = Cohen's d.
    from scipy.stats import ttest_ind

    from scdeconv.scoring import welch_from_moments

    rng = np.random.default_rng(3)
    a, b = rng.normal(0.3, 1.0, size=(40, 2, 3)), rng.normal(0.0, 2.0, size=(25, 2, 3))
    test = welch_from_moments(a.sum(0), (a**2).sum(0), 40, b.sum(0), (b**2).sum(0), 25)
    expected = ttest_ind(a, b, axis=0, equal_var=False)
    np.testing.assert_allclose(test.statistic, expected.statistic, rtol=1e-8)
    np.testing.assert_allclose(test.pvalue, expected.pvalue, rtol=1e-7)
    pooled = np.sqrt((39 * a.var(0, ddof=1) + 24 * b.var(0, ddof=1)) / 63)
    np.testing.assert_allclose(test.effect, (a.mean(0) - b.mean(0)) / pooled, rtol=1e-8)


def test_welch_from_moments_without_spread_and_too_few_cells():
    from scdeconv.scoring import welch_from_moments

    flat = welch_from_moments(np.array([2.0]), np.array([2.0]), 2, np.array([2.0]), np.array([2.0]), 2)
    assert flat.effect[0] == 0 and flat.pvalue[0] == 1
    with pytest.raises(ValueError, match="at least 2 cells"):
        welch_from_moments(np.zeros(1), np.zeros(1), 1, np.zeros(1), np.zeros(1), 5)


# --- the one competitive test, and the tables built on it ----------------------------------------
def _null_by_hand(values: np.ndarray, bins: np.ndarray, cols: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """Stouffer sums of random sets matched to ``cols`` on expression bins, drawn one by one."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_draws):
        genes = np.concatenate(
            [rng.choice(np.flatnonzero(bins == b), np.sum(bins[cols] == b), replace=False) for b in np.unique(bins)]
        )
        draws.append(values[:, genes].sum(axis=1) / np.sqrt(len(cols)))
    return np.array(draws)  # draws x rows


def test_competitive_test_standardises_by_the_matched_null():
    from scipy.stats import norm

    from scdeconv.scoring import MatchedSets, competitive_test

    rng = np.random.default_rng(4)
    values = rng.standard_normal((3, 300))
    values[1, :20] += 1.0  # a planted set on row 1
    bins = expression_bins(rng.random(300), 5)
    sets = MatchedSets([np.arange(20), np.arange(50, 80)], bins, n_null=4000, seed=0)
    one = competitive_test(values, sets)
    two = competitive_test(values, sets, two_sided=True)
    null = matched_null(values, bins, sets.set_columns, n_null=4000, seed=0)
    np.testing.assert_allclose(one.null_z, (one.observed - null.mean) / null.sd)
    np.testing.assert_allclose(one.pvalue, norm.sf(one.null_z))
    np.testing.assert_allclose(two.pvalue, 2 * norm.sf(np.abs(two.null_z)))
    np.testing.assert_allclose(one.pvalue_empirical, (1 + null.n_exceeding) / 4001)
    # The prefix-sum null is an exact matched null: its moments agree with sets drawn one by one
    # (4000 draws each: the SD of a mean of ~N(0, 1) scores is 0.016, of an SD 0.011; 0.06 = 4-5 SE).
    by_hand = _null_by_hand(values, bins, sets.set_columns[0], 4000, seed=1)
    np.testing.assert_allclose(null.mean[:, 0], by_hand.mean(axis=0), atol=0.06)
    np.testing.assert_allclose(null.sd[:, 0], by_hand.std(axis=0), atol=0.06)
    # The planted set: +1 on 20 genes adds sqrt(20) = 4.5 null SDs in expectation (seen 3.5 with this seed).
    assert one.null_z[1, 0] > 3 and abs(one.null_z[0, 0]) < 3


def test_impact_significance_applies_sidak_over_live_nodes_and_bh_over_sets():
    from scipy.stats import norm

    from scdeconv.scoring import MatchedSets, impact_significance

    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 200))
    z[2, :15] += 1.5
    dead = np.array([False, False, False, True, False, False])
    cols = [np.arange(15), np.arange(100, 130)]
    impact = pd.DataFrame(set_enrichment(z, cols), index=[f"node_{i}" for i in range(6)], columns=["A", "B"])
    out = impact_significance(z, impact, dead, MatchedSets(cols, np.zeros(200, dtype=int), n_null=500))
    assert out["null_z"].loc["node_3"].isna().all() and out["fdr"].loc["node_3"].isna().all()
    live_z = out["null_z"].loc[~dead]
    stats = out["set_stats"].loc[["A", "B"]]
    best_tail = norm.sf(live_z.max(axis=0).to_numpy())
    sidak = 1 - (1 - best_tail) ** 5  # 5 live nodes (naive form)
    # BH over the normal tails, then p-values and FDRs reported floored at 1 / (1 + n_null).
    floor = 1 / 501
    np.testing.assert_allclose(stats["pvalue"], np.maximum(sidak, floor), rtol=1e-6)
    np.testing.assert_allclose(stats["fdr"], np.maximum(false_discovery_control(sidak), floor), rtol=1e-10)
    assert stats.loc["A", "best_node"] == "node_2"
    # The planted set's normal tail (null z near 1.5 sqrt(15) = 5.8) is far below 1/501: the floor bites.
    assert sidak[0] < 1e-5 and stats.loc["A", "pvalue"] == pytest.approx(floor)
    tails = norm.sf(live_z.to_numpy())
    np.testing.assert_allclose(out["pvalue"].loc[~dead].to_numpy(), np.maximum(tails, floor))
    assert np.nanmin(out["fdr"].to_numpy()) == pytest.approx(floor)
    expected_fdr = np.maximum(false_discovery_control(tails.ravel()), floor)
    np.testing.assert_allclose(out["fdr"].loc[~dead].to_numpy().ravel(), expected_fdr)


def test_node_set_tests_are_welch_and_competitive_and_keep_the_larger_pvalue():
    from scipy.stats import ttest_ind

    from scdeconv.scoring import MatchedSets, node_set_tests, welch_from_moments

    rng = np.random.default_rng(6)
    a, b = rng.normal(0.5, 1.0, size=(30, 3, 2)), rng.normal(0.0, 1.0, size=(20, 3, 2))
    sums, squares = np.stack([a.sum(0), b.sum(0)]), np.stack([(a**2).sum(0), (b**2).sum(0)])
    template = pd.DataFrame(np.zeros((3, 2)), index=["node_0", "node_1", "node_2"], columns=["A", "B"])
    dead = np.array([False, True, False])
    change = rng.standard_normal((3, 100))
    change[0, :10] += 2.0
    sets = MatchedSets([np.arange(10), np.arange(40, 60)], np.zeros(100, dtype=int), n_null=500)
    welch = welch_from_moments(sums[0], squares[0], 30, sums[1], squares[1], 20)
    out = node_set_tests(welch, dead, template, change=change, sets=sets)
    expected = ttest_ind(a, b, axis=0, equal_var=False)
    live = ~dead
    np.testing.assert_allclose(out["statistic"].to_numpy()[live], expected.statistic[live], rtol=1e-8)
    np.testing.assert_allclose(out["pvalue_welch"].to_numpy()[live], expected.pvalue[live], rtol=1e-7)
    assert (out["effect"].to_numpy()[live] > 0).mean() >= 0.75  # group 1 is higher by 0.5 SD
    assert out["pvalue"].loc["node_1"].isna().all() and (out["effect"].loc["node_1"] == 0).all()
    np.testing.assert_array_equal(
        out["pvalue"].to_numpy()[live], np.fmax(out["pvalue_welch"], out["pvalue_competitive"]).to_numpy()[live]
    )
    assert out["null_z"].loc["node_0", "A"] > 4  # the planted change
    # Swapping the groups flips every sign and keeps every p-value.
    welch = welch_from_moments(sums[1], squares[1], 20, sums[0], squares[0], 30)
    swapped = node_set_tests(welch, dead, template, change=-change, sets=sets)
    np.testing.assert_allclose(swapped["effect"], -out["effect"])
    np.testing.assert_allclose(swapped["null_z"], -out["null_z"])
    np.testing.assert_allclose(swapped["pvalue"], out["pvalue"])


def test_activity_tests_are_mann_whitney_and_competitive():
    from scipy.stats import mannwhitneyu

    from scdeconv.scoring import MatchedSets, activity_tests

    rng = np.random.default_rng(7)
    act1, act2 = rng.normal(0.4, 1, size=(40, 3)), rng.normal(0, 1, size=(30, 3))
    change = rng.standard_normal(90)
    change[:10] += 2.0
    sets = MatchedSets([np.arange(10), np.arange(30, 40), np.arange(60, 75)], np.zeros(90, dtype=int), n_null=500)
    out = activity_tests(act1, act2, ["A", "B", "C"], change=change, sets=sets).loc[["A", "B", "C"]]
    mw = mannwhitneyu(act1, act2, axis=0)
    np.testing.assert_allclose(out["pvalue_mw"], mw.pvalue)
    np.testing.assert_allclose(out["effect"], 2 * mw.statistic / (40 * 30) - 1)
    np.testing.assert_array_equal(out["pvalue"], np.fmax(out["pvalue_mw"], out["pvalue_competitive"]))
    np.testing.assert_allclose(out["fdr"], false_discovery_control(out["pvalue"].to_numpy()))
    assert out.loc["A", "null_z"] > 4
    self_contained = activity_tests(act1, act2, ["A", "B", "C"])
    assert "null_z" not in self_contained and np.allclose(self_contained.loc[["A", "B", "C"], "pvalue"], mw.pvalue)


def test_node_statistics_marks_constant_nodes_dead_and_nodes_of_few_cells_rare():
    from scdeconv.scoring import min_active_cells, node_statistics

    rng = np.random.default_rng(8)
    latent = np.abs(rng.normal(size=(400, 4)))
    latent[:, 1] = 0.3  # constant: dead
    latent[:, 2] = 0.0
    latent[:3, 2] = 5.0  # fires in 3 of 400 cells: rare (fewer than max(10, 0.5% of 400))
    latent[:, 3] = 0.0
    latent[: min_active_cells(400), 3] = 5.0  # exactly the minimum: live
    impact = pd.DataFrame(1.0, index=[f"node_{i}" for i in range(4)], columns=["A"])
    stats = node_statistics(latent, impact)
    assert stats["status"].tolist() == ["live", "dead", "rare", "live"]
    assert stats["dead"].tolist() == [False, True, True, False]
    assert stats.loc["node_2", "n_active"] == 3 and min_active_cells(400) == 10 and min_active_cells(4000) == 20
    # No impact anywhere (the expression profile of a node whose top quarter ties at 0 is flat):
    # dead for a node that varies over many cells, still rare for one that fires in a few.
    impact.loc[["node_0", "node_2"]] = 0.0
    assert node_statistics(latent, impact)["status"].tolist() == ["dead", "dead", "rare", "live"]


def test_null_z_at_is_the_competitive_test_on_one_row():
    # The conditional re-tests score each reduced set on its own node only: the same draws and
    # the same numbers as the full test's entry.
    from scdeconv.scoring import MatchedSets, competitive_test
    from scdeconv.scoring._null import null_z_at

    rng = np.random.default_rng(6)
    values = rng.standard_normal((5, 200))
    bins = expression_bins(rng.random(200), 4)
    sets = [rng.choice(200, size, replace=False) for size in (3, 12, 40)]
    rows = np.array([4, 0, 4])
    full = competitive_test(values, MatchedSets(sets, bins, n_null=300, seed=2))
    at = null_z_at(values, bins, sets, rows, n_null=300, seed=2)
    np.testing.assert_allclose(at, full.null_z[rows, np.arange(3)], rtol=1e-12)
