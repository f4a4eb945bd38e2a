"""Significance of a nodes x gene-sets impact table: per (node, set) and per set ("some node encodes it")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._null import MatchedSets, competitive_test
from ._stats import benjamini_hochberg, null_floor


def impact_significance(
    z: np.ndarray, impact: pd.DataFrame, dead: np.ndarray, sets: MatchedSets
) -> dict[str, pd.DataFrame]:
    """Null-model statistics of enrichment scores against expression-matched random gene sets.

    Per (node, set): ``null_z`` standardises the score by the mean and standard deviation of
    its random sets (:func:`competitive_test`); ``pvalue`` is its one-sided normal tail,
    ``pvalue_empirical`` the share of random sets scoring at least as high (``(1 + k) / (1 +
    n_null)``), and ``fdr`` the Benjamini-Hochberg adjustment of ``pvalue`` over all live (node,
    set) pairs; dead nodes get NaN. Per set (``set_stats``): the best live node, its ``null_z``, a
    ``pvalue`` for "some node encodes this set" (the best node's normal tail, Sidak-corrected for
    the number of live nodes) with its BH ``fdr`` over sets, and the empirical max-statistic
    p-value (how often a random set's best node does as well). The FDRs are derived from the
    normal tails; every p-value and FDR is then reported floored at ``1 / (1 + n_null)``
    (:func:`null_floor`): none is smaller than the random sets resolve.

    Parameters
    ----------
    z
        Nodes x genes: the binned z-scores whose Stouffer sums are the impact.
    impact
        Nodes x sets: the impact table (its index and columns label the results).
    dead
        Per node, whether it is dead (no statistics).
    sets
        The scored gene sets and their null design.
    """
    from scipy.stats import norm

    test = competitive_test(z, sets, live=~dead)
    null_z = np.where(dead[:, None], np.nan, test.null_z)
    pvalue = norm.sf(null_z)
    empirical = np.where(dead[:, None], np.nan, test.pvalue_empirical)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=impact.index, columns=impact.columns)

    live_z = frame(null_z).loc[~dead]
    best_z = live_z.max(axis=0)
    # Best of the live nodes: Sidak-correct its normal tail for the number of nodes looked at
    # (reported floored, like every p-value here, at the 1 / (1 + n_null) the random sets resolve).
    set_pvalue = -np.expm1(int((~dead).sum()) * np.log1p(-norm.sf(best_z.to_numpy())))
    set_stats = pd.DataFrame(
        {
            "best_node": live_z.idxmax(axis=0) if len(live_z) else pd.Series("", index=impact.columns),
            "null_z": best_z,
            "pvalue": null_floor(set_pvalue, sets.n_null),
            "pvalue_empirical": (1 + test.best_exceeding) / (1 + sets.n_null),
            "fdr": null_floor(benjamini_hochberg(set_pvalue), sets.n_null),
        }
    )
    return {
        "null_z": frame(null_z),
        "pvalue": frame(null_floor(pvalue, sets.n_null)),
        "pvalue_empirical": frame(empirical),
        "fdr": frame(null_floor(benjamini_hochberg(pvalue), sets.n_null)),
        "set_stats": set_stats.sort_values(["fdr", "null_z"], ascending=[True, False]),
    }
