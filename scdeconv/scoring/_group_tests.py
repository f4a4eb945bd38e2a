"""Two-group tests of gene sets: per (node, set) from streamed moments, and per set from per-cell activity.

Both are intersection-union tests: a self-contained part (do the cells' scores differ?) and a
competitive part (does the set change more than matched random gene sets?); ``pvalue`` is the
larger of the two, so a call needs both to reject and the combined test keeps the level of each.
With the competitive part, p-values and FDRs are reported floored at ``1 / (1 + n_null)``
(:func:`~scdeconv.scoring._stats.null_floor`; BH runs on the unfloored p-values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._null import MatchedSets, competitive_test
from ._stats import benjamini_hochberg, null_floor, welch_from_moments


def node_set_tests(
    sums: np.ndarray,
    squares: np.ndarray,
    n_cells: np.ndarray,
    dead: np.ndarray,
    template: pd.DataFrame,
    *,
    change: np.ndarray | None = None,
    sets: MatchedSets | None = None,
) -> dict[str, pd.DataFrame]:
    """Per (node, set), is the set's score different between the two groups? BH over live pairs.

    - self-contained: do the cells' scores differ? Welch's t from the streamed moments ``sums``
      and ``squares`` (2 x nodes x sets) of ``n_cells`` (2) cells (``statistic``, ``pvalue_welch``;
      ``effect`` is Cohen's d, positive where group 1 is higher);
    - competitive (with ``change`` and ``sets``): does the set's mean score change more than that of
      random gene sets of the same size and expression bins? The change of a set's mean score is
      the Stouffer sum of its genes' mean changes ``change`` (nodes x genes), so random sets are
      scored from per-gene changes (``null_z``, ``pvalue_competitive``, two-sided).

    The competitive part removes what the self-contained one calls on its own when a cell state
    shifts the attribution of many genes at once. Dead nodes get effect 0 and NaN p-values;
    ``template`` (nodes x sets) labels the tables.
    """
    n1, n2 = int(n_cells[0]), int(n_cells[1])
    test = welch_from_moments(sums[0], squares[0], n1, sums[1], squares[1], n2)
    off = dead[:, None]
    welch = np.where(off, np.nan, test.pvalue)
    tables = {
        "effect": np.where(off, 0.0, test.effect),
        "statistic": np.where(off, 0.0, test.statistic),
        "pvalue_welch": welch,
    }
    pvalue = welch
    if change is not None and sets is not None:
        competitive = competitive_test(change, sets, live=~dead, two_sided=True)
        tables["null_z"] = np.where(off, 0.0, competitive.null_z)
        tables["pvalue_competitive"] = np.where(off, np.nan, competitive.pvalue)
        pvalue = np.fmax(welch, tables["pvalue_competitive"])
    tables.update({"pvalue": pvalue, "fdr": benjamini_hochberg(pvalue)})
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
) -> pd.DataFrame:
    """Per gene set, is the cells' activity different between two groups? BH over the sets.

    - self-contained: a two-sided Mann-Whitney test of the per-cell activities (cells x sets) of the
      two groups (``pvalue_mw``); ``effect`` is the rank-biserial correlation ``2 U / (n1 n2) - 1``
      in [-1, 1], positive when activity is higher in group 1;
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

    test = mannwhitneyu(activity1, activity2, axis=0, alternative="two-sided")
    columns = {
        "effect": 2 * test.statistic / (len(activity1) * len(activity2)) - 1,
        "mean_activity1": activity1.mean(axis=0),
        "mean_activity2": activity2.mean(axis=0),
        "pvalue_mw": test.pvalue,
    }
    pvalue = test.pvalue
    if change is not None and sets is not None:
        competitive = competitive_test(change, sets, two_sided=True)
        columns["null_z"] = competitive.null_z[0]
        columns["pvalue_competitive"] = competitive.pvalue[0]
        pvalue = np.fmax(pvalue, columns["pvalue_competitive"])
    columns.update({"pvalue": pvalue, "fdr": benjamini_hochberg(pvalue)})
    if "pvalue_competitive" in columns:  # reported no smaller than the random sets resolve
        for name in ("pvalue_competitive", "pvalue", "fdr"):
            columns[name] = null_floor(columns[name], sets.n_null)
    table = pd.DataFrame(columns, index=pd.Index(names, name="gene_set"))
    return table.sort_values(["fdr", "effect"], ascending=[True, False])
