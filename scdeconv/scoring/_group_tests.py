"""Two-group tests of gene sets: per (node, set) from streamed moments, and per set from per-cell activity.

Both are intersection-union tests: a self-contained part (do the cells' scores differ?) and a
competitive part (does the set change more than matched random gene sets?); ``pvalue`` is the
larger of the two, so a call needs both to reject and the combined test keeps the level of each.

The self-contained part treats cells as replicates, or, with samples (donors), the samples:
each sample's cells are averaged into one value per group (a pseudobulk of the scores) and those
values are compared (:func:`sample_design`, :func:`sample_level_test`). Cells of one donor share
its programme activity, so with cells as replicates a donor effect reads as a group difference.
With the competitive part, p-values and FDRs are reported floored at ``1 / (1 + n_null)``
(:func:`~scdeconv.scoring._stats.null_floor`; BH runs on the unfloored p-values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._null import MatchedSets, competitive_test
from ._stats import TwoGroupTest, benjamini_hochberg, null_floor, paired_t, welch_from_values

# Name of the self-contained p-value column for each kind of replicate.
SELF_CONTAINED = {"cells": "pvalue_welch", "samples": "pvalue_samples"}


def direction(effect) -> np.ndarray:
    """``"up"`` where an effect is positive (higher in group 1), ``"down"`` where negative, else ``""``."""
    effect = np.asarray(effect, dtype=np.float64)
    return np.where(effect > 0, "up", np.where(effect < 0, "down", ""))


@dataclass(frozen=True)
class SampleDesign:
    """The samples a sample-level comparison uses, and whether they pair up."""

    rows1: np.ndarray  # samples entering group 1 (enough cells there)
    rows2: np.ndarray  # samples entering group 2
    paired: bool  # every sample with cells in the comparison has enough in both groups

    @property
    def test(self) -> str:
        return "paired t" if self.paired else "Welch"


def sample_design(n_cells1: np.ndarray, n_cells2: np.ndarray, min_cells: int, *, what: str = "sample") -> SampleDesign:
    """Which samples enter a pseudobulk comparison: those with at least ``min_cells`` cells in a group.

    Paired when every sample with cells in either group has ``min_cells`` in both (e.g. each donor
    gives cells of both conditions): the paired test compares each donor with itself, so the donor
    effect cancels. Otherwise (e.g. each donor in one condition) samples are independent units
    compared by Welch's t, which allows the two groups their own spread and number of samples; a
    sample present in both groups then enters both, which makes the test conservative (its two
    values share the donor effect, so their difference varies less than Welch assumes).
    """
    n_cells1, n_cells2 = np.asarray(n_cells1), np.asarray(n_cells2)
    in1, in2 = n_cells1 >= min_cells, n_cells2 >= min_cells
    involved = (n_cells1 + n_cells2) > 0
    paired = bool(involved.any()) and bool((in1 & in2)[involved].all())
    design = SampleDesign(np.flatnonzero(in1 & involved), np.flatnonzero(in2 & involved), paired)
    for name, rows in (("group1", design.rows1), ("group2", design.rows2)):
        if len(rows) < 2:
            raise ValueError(
                f"{name} has {len(rows)} {what}(s) with at least {min_cells} cells; a sample-level test needs 2 or "
                f"more per group. Pool groups, lower min_sample_cells, or pass sample_key=None to treat cells as "
                "replicates (then a donor effect can read as a group difference)."
            )
    return design


def sample_level_test(means1: np.ndarray, means2: np.ndarray, design: SampleDesign) -> TwoGroupTest:
    """The groups compared across samples: per-sample means (samples x ...) of each group, paired or Welch."""
    values1, values2 = means1[design.rows1], means2[design.rows2]
    return paired_t(values1, values2) if design.paired else welch_from_values(values1, values2)


def node_set_tests(
    test: TwoGroupTest,
    dead: np.ndarray,
    template: pd.DataFrame,
    *,
    replicates: str = "cells",
    change: np.ndarray | None = None,
    sets: MatchedSets | None = None,
    tested: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """Per (node, set), is the set's score different between the two groups? BH over the tested pairs.

    - self-contained: do the scores differ? ``test`` (nodes x sets) is Welch's t of the cells'
      scores from streamed moments (:func:`~scdeconv.scoring.welch_from_moments`,
      ``replicates="cells"``, column ``pvalue_welch``), or the samples' test of their mean scores
      (:func:`sample_level_test`, ``replicates="samples"``, column ``pvalue_samples``);
      ``statistic``, and ``effect``: Cohen's d (d_z when paired), positive where group 1 is higher;
    - competitive (with ``change`` and ``sets``): does the set's mean score change more than that of
      random gene sets of the same size and expression bins? The change of a set's mean score is
      the Stouffer sum of its genes' mean changes ``change`` (nodes x genes), so random sets are
      scored from per-gene changes (``null_z``, ``pvalue_competitive``, two-sided).

    The competitive part removes what the self-contained one calls on its own when a cell state
    shifts the attribution of many genes at once. ``tested`` (nodes x sets, boolean) names the
    pairs the FDR is computed over (default: every live pair); the others keep their p-values and
    get a NaN FDR. Dead nodes get effect 0 and NaN p-values; ``template`` (nodes x sets) labels the
    tables.
    """
    off = dead[:, None]
    self_contained = np.where(off, np.nan, test.pvalue)
    tables = {
        "effect": np.where(off, 0.0, test.effect),
        "statistic": np.where(off, 0.0, test.statistic),
        SELF_CONTAINED[replicates]: self_contained,
    }
    pvalue = self_contained
    if change is not None and sets is not None:
        competitive = competitive_test(change, sets, live=~dead, two_sided=True)
        tables["null_z"] = np.where(off, 0.0, competitive.null_z)
        tables["pvalue_competitive"] = np.where(off, np.nan, competitive.pvalue)
        pvalue = np.fmax(self_contained, tables["pvalue_competitive"])
    family = pvalue if tested is None else np.where(tested, pvalue, np.nan)
    tables.update({"pvalue": pvalue, "fdr": benjamini_hochberg(family)})
    if "pvalue_competitive" in tables:  # reported no smaller than the random sets resolve
        for name in ("pvalue_competitive", "pvalue", "fdr"):
            tables[name] = null_floor(tables[name], sets.n_null)
    return {
        name: pd.DataFrame(values, index=template.index, columns=template.columns) for name, values in tables.items()
    }


def activity_tests(
    activity1: np.ndarray,
    activity2: np.ndarray,
    names: list[str],
    *,
    change: np.ndarray | None = None,
    sets: MatchedSets | None = None,
    samples: tuple[np.ndarray, np.ndarray, SampleDesign] | None = None,
) -> pd.DataFrame:
    """Per gene set, is the cells' activity different between two groups? BH over the sets.

    - self-contained, cells as replicates: a two-sided Mann-Whitney test of the per-cell activities
      (cells x sets) of the two groups (``pvalue_mw``); ``effect`` is the rank-biserial correlation
      ``2 U / (n1 n2) - 1`` in [-1, 1], positive when activity is higher in group 1;
    - self-contained, samples as replicates (``samples``: the per-sample mean activities of each
      group, samples x sets, and their :class:`SampleDesign`): the paired t or Welch test of the
      sample means (``pvalue_samples``, ``statistic``); ``effect`` is Cohen's d (d_z when paired)
      and ``mean_activity1/2`` are unweighted means over samples (each sample counts once, as a
      replicate should);
    - competitive (with ``change`` and ``sets``): does the set's mean activity change more than that
      of random gene sets of the same size and expression bins? A set's mean activity change is the
      Stouffer sum of ``change``, its genes' mean changes of within-cell standardised attribution
      (``null_z``, ``pvalue_competitive``, two-sided).

    The competitive part stops sets whose genes did not change from being called because a strong
    programme elsewhere shifts every cell's activities a little (activity is relative within a
    cell): with cells as replicates, Mann-Whitney alone calls such small shifts. Sorted by FDR,
    then effect.
    """
    from scipy.stats import mannwhitneyu

    if samples is None:
        test = mannwhitneyu(activity1, activity2, axis=0, alternative="two-sided")
        columns = {
            "effect": 2 * test.statistic / (len(activity1) * len(activity2)) - 1,
            "mean_activity1": activity1.mean(axis=0),
            "mean_activity2": activity2.mean(axis=0),
            "pvalue_mw": test.pvalue,
        }
    else:
        test = sample_level_test(*samples)
        columns = {
            "effect": test.effect,
            "mean_activity1": test.mean1,
            "mean_activity2": test.mean2,
            "statistic": test.statistic,
            "pvalue_samples": test.pvalue,
        }
    pvalue = test.pvalue
    if change is not None and sets is not None:
        competitive = competitive_test(change, sets, two_sided=True)
        columns["null_z"] = competitive.null_z[0]
        columns["pvalue_competitive"] = competitive.pvalue[0]
        pvalue = np.fmax(pvalue, columns["pvalue_competitive"])
    columns.update({"pvalue": pvalue, "fdr": benjamini_hochberg(pvalue), "direction": direction(columns["effect"])})
    if "pvalue_competitive" in columns:  # reported no smaller than the random sets resolve
        for name in ("pvalue_competitive", "pvalue", "fdr"):
            columns[name] = null_floor(columns[name], sets.n_null)
    table = pd.DataFrame(columns, index=pd.Index(names, name="gene_set"))
    return table.sort_values(["fdr", "effect"], ascending=[True, False])
