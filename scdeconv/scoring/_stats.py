"""Two-sample statistics from streamed moments, the one Benjamini-Hochberg adjustment, the null's floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TwoGroupTest:
    """Welch's t-test per element of arrays of group moments."""

    effect: np.ndarray  # Cohen's d, positive where group 1 is higher
    mean1: np.ndarray
    mean2: np.ndarray
    statistic: np.ndarray  # Welch's t
    pvalue: np.ndarray  # two-sided


def welch_from_moments(
    sum1: np.ndarray, squares1: np.ndarray, n1: int, sum2: np.ndarray, squares2: np.ndarray, n2: int
) -> TwoGroupTest:
    """Welch's two-sided t-test from per-group sums and sums of squares (any shape, elementwise).

    Sums and counts combine exactly across chunks of cells, so the test streams in bounded
    memory where a rank test would need every cell's value. The effect size is Cohen's d with the
    pooled standard deviation. Elements without spread in either group get ``effect = 0`` and
    ``pvalue = 1`` when the means agree.
    """
    from scipy.stats import t as student_t

    if n1 < 2 or n2 < 2:
        raise ValueError(f"A two-group test needs at least 2 cells per group, got {n1} and {n2}.")
    mean1, mean2 = sum1 / n1, sum2 / n2
    var1 = np.maximum(squares1 - n1 * mean1**2, 0) / (n1 - 1)
    var2 = np.maximum(squares2 - n2 * mean2**2, 0) / (n2 - 1)
    se2 = var1 / n1 + var2 / n2
    difference = mean1 - mean2
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(se2 > 0, difference / np.sqrt(se2), 0.0)
        df = np.where(se2 > 0, se2**2 / ((var1 / n1) ** 2 / (n1 - 1) + (var2 / n2) ** 2 / (n2 - 1)), 1.0)
        pooled = np.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2))
        effect = np.where(pooled > 0, difference / pooled, 0.0)
    return TwoGroupTest(
        effect=effect,
        mean1=mean1,
        mean2=mean2,
        statistic=statistic,
        pvalue=2 * student_t.sf(np.abs(statistic), np.maximum(df, 1.0)),
    )


def welch_from_values(values1: np.ndarray, values2: np.ndarray) -> TwoGroupTest:
    """Welch's two-sided t-test of two samples along axis 0 (e.g. per-sample means), any trailing shape."""
    values1, values2 = np.asarray(values1, dtype=np.float64), np.asarray(values2, dtype=np.float64)
    # Centre on the overall mean first: the moments' formula then loses no precision.
    centre = np.concatenate([values1, values2]).mean(axis=0)
    shifted1, shifted2 = values1 - centre, values2 - centre
    test = welch_from_moments(
        shifted1.sum(axis=0), (shifted1**2).sum(axis=0), len(values1),
        shifted2.sum(axis=0), (shifted2**2).sum(axis=0), len(values2),
    )  # fmt: skip
    test.mean1, test.mean2 = test.mean1 + centre, test.mean2 + centre
    return test


def paired_t(values1: np.ndarray, values2: np.ndarray) -> TwoGroupTest:
    """Paired two-sided t-test of matched rows (axis 0: the pairs, e.g. samples with both groups).

    ``statistic`` is the mean difference over its standard error with ``n - 1`` degrees of freedom;
    ``effect`` the standardised mean difference of the pairs (Cohen's d_z = mean / sd of the
    differences). Elements whose differences have no spread get ``effect = 0`` and ``pvalue = 1``
    when the mean difference is 0.
    """
    from scipy.stats import t as student_t

    values1, values2 = np.asarray(values1, dtype=np.float64), np.asarray(values2, dtype=np.float64)
    n = len(values1)
    if n < 2 or len(values2) != n:
        raise ValueError(f"A paired test needs at least 2 matched pairs, got {n} and {len(values2)} values.")
    differences = values1 - values2
    mean, sd = differences.mean(axis=0), differences.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(sd > 0, mean / (sd / np.sqrt(n)), np.where(mean == 0, 0.0, np.sign(mean) * np.inf))
        effect = np.where(sd > 0, mean / sd, 0.0)
    return TwoGroupTest(
        effect=effect,
        mean1=values1.mean(axis=0),
        mean2=values2.mean(axis=0),
        statistic=statistic,
        pvalue=2 * student_t.sf(np.abs(statistic), n - 1),
    )


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (FDR) of any-shaped array; NaNs are left out and kept."""
    flat = np.asarray(pvalues, dtype=np.float64).ravel()
    out = np.full_like(flat, np.nan)
    valid = np.flatnonzero(~np.isnan(flat))
    order = valid[np.argsort(flat[valid], kind="stable")]
    ranked = flat[order] * len(order) / np.arange(1, len(order) + 1)
    out[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return out.reshape(np.shape(pvalues))


def null_floor(values: np.ndarray, n_null: int) -> np.ndarray:
    """P-values or FDRs no smaller than ``1 / (1 + n_null)``, the smallest ``n_null`` random draws resolve.

    A p-value read from the normal tail of a z-score against ``n_null`` random gene sets can reach
    1e-11, but the null was only sampled ``n_null`` times: below ``1 / (1 + n_null)`` (the empirical
    p-value of a score no random set reaches) the tail is an extrapolation. The tests rank and
    call by the normal tail (Benjamini-Hochberg over the unfloored p-values, so that the floor's
    ties cost no power) and report p-values and FDRs floored here, so that no reported value is
    below what the null can support (raise ``n_null`` to resolve smaller ones). NaNs stay NaN.
    """
    return np.maximum(np.asarray(values, dtype=np.float64), 1.0 / (1 + int(n_null)))
