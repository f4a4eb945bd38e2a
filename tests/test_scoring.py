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
