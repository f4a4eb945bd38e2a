"""Significance of a nodes x gene-sets impact table: per (node, set) and per set ("some node encodes it")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._defaults import FDR
from ._null import MatchedSets, competitive_test, null_z_at
from ._stats import benjamini_hochberg, null_floor

CONDITIONAL_ROUNDS = 3  # greedy conditioning: at most this many rounds until the accepted sets stop changing
MIN_CONDITIONAL_GENES = 3  # a set left with fewer own genes than this is explained by the stronger sets


def _sidak_best(null_z: pd.DataFrame, n_live: int) -> tuple[pd.Series, np.ndarray]:
    """Per set, the best live node's null z and its normal tail Sidak-corrected for ``n_live`` nodes."""
    from scipy.stats import norm

    best_z = null_z.max(axis=0)
    return best_z, -np.expm1(n_live * np.log1p(-norm.sf(best_z.to_numpy())))


def conditional_pvalues(
    z: np.ndarray, pvalue: np.ndarray, null_z: np.ndarray, called: np.ndarray, sets: MatchedSets, *, seed: int = 0
) -> np.ndarray:
    """Per (node, set), the p-value of the set given the stronger sets called on the same node.

    Hallmark sets share genes, so a programme carried by one set also raises every set that shares
    its genes. For each node, called sets (``called``, nodes x sets) are taken from the strongest
    (largest ``null_z``) down; each is re-tested on its own genes, those in no stronger *accepted*
    set of that node, against random sets matched to those genes (the competitive test), and it is
    accepted when that p-value is at most the largest marginal p-value called. A set whose calls
    came only from genes it shares with a stronger set is left with no signal; one left with
    fewer than ``MIN_CONDITIONAL_GENES`` genes gets p = 1. The conditional p-value is the larger
    of the marginal and the re-test (both must reject), so it never falls below the marginal one;
    pairs not called keep their marginal p-value. The accepted sets depend on the re-tests, so the
    conditioning is repeated until they stop changing (at most ``CONDITIONAL_ROUNDS`` rounds).
    """
    from scipy.stats import norm

    pvalue = np.asarray(pvalue, dtype=np.float64)
    out = pvalue.copy()
    if not called.any():
        return out
    threshold = float(np.nanmax(np.where(called, pvalue, -np.inf)))
    members = [set(np.asarray(c).tolist()) for c in sets.set_columns]
    accepted = called.copy()  # round 1 conditions on every stronger called set
    for _ in range(CONDITIONAL_ROUNDS):
        pairs, reduced = [], []
        for node in np.flatnonzero(called.any(axis=1)):
            order = np.flatnonzero(called[node])[np.argsort(-null_z[node, called[node]], kind="stable")]
            stronger: list[int] = []
            for s in order:
                covered = set().union(*(members[t] for t in stronger if members[t] & members[s])) if stronger else set()
                if covered & members[s]:
                    pairs.append((node, s))
                    reduced.append(np.array(sorted(members[s] - covered), dtype=np.int64))
                if accepted[node, s]:
                    stronger.append(s)
        result = out.copy()
        testable = [i for i, cols in enumerate(reduced) if len(cols) >= MIN_CONDITIONAL_GENES]
        for node, s in pairs:
            result[node, s] = 1.0  # too few own genes, unless re-tested below
        if testable:
            # The competitive test of the reduced sets, each on its own node only (the same numbers).
            columns = [reduced[i] for i in testable]
            nodes = np.array([pairs[i][0] for i in testable])
            if sets.modules is None:
                retest = norm.sf(null_z_at(z, sets.bins, columns, nodes, n_null=sets.n_null, seed=seed))
            else:  # the co-expression null: the full test of the reduced sets, read at their own nodes
                test = competitive_test(z, MatchedSets(columns, sets.bins, sets.n_null, seed, sets.modules))
                retest = norm.sf(test.null_z[nodes, np.arange(len(testable))])
            for k, i in enumerate(testable):
                node, s = pairs[i]
                result[node, s] = max(pvalue[node, s], float(retest[k]))
        now = called & (result <= threshold)
        if (now == accepted).all():
            return result
        accepted = now
    return result


def impact_significance(
    z: np.ndarray, impact: pd.DataFrame, dead: np.ndarray, sets: MatchedSets
) -> dict[str, pd.DataFrame]:
    """Null-model statistics of enrichment scores against matched random gene sets (:func:`competitive_test`).

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

    Sets share genes: ``pvalue_conditional`` and ``fdr_conditional`` (nodes x sets, and per set in
    ``set_stats``) re-test each pair called at FDR < ``FDR`` on the genes it does not share with a
    stronger set called on the same node (:func:`conditional_pvalues`), so that a set called only
    through genes of another called set is not called.

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

    def floored(values: np.ndarray) -> np.ndarray:
        return null_floor(values, sets.n_null)

    n_live = int((~dead).sum())
    live_z = frame(null_z).loc[~dead]
    # Best of the live nodes: Sidak-correct its normal tail for the number of nodes looked at
    # (reported floored, like every p-value here, at the 1 / (1 + n_null) the random sets resolve).
    best_z, set_pvalue = _sidak_best(live_z, n_live)
    fdr = benjamini_hochberg(pvalue)
    conditional = conditional_pvalues(z, pvalue, np.nan_to_num(null_z, nan=-np.inf), fdr < FDR, sets, seed=sets.seed)
    conditional = np.where(dead[:, None], np.nan, conditional)
    # "Some node encodes this set, beyond the sets it overlaps": the best conditional p over live nodes.
    best_conditional = np.nanmin(conditional[~dead], axis=0, initial=1.0) if n_live else np.ones(len(impact.columns))
    set_conditional = -np.expm1(n_live * np.log1p(-np.minimum(best_conditional, 1 - 1e-16)))
    set_stats = pd.DataFrame(
        {
            "best_node": live_z.idxmax(axis=0) if len(live_z) else pd.Series("", index=impact.columns),
            "null_z": best_z,
            "pvalue": floored(set_pvalue),
            "pvalue_empirical": (1 + test.best_exceeding) / (1 + sets.n_null),
            "fdr": floored(benjamini_hochberg(set_pvalue)),
            "pvalue_conditional": floored(set_conditional),
            "fdr_conditional": floored(benjamini_hochberg(set_conditional)),
        }
    )
    return {
        "null_z": frame(null_z),
        "pvalue": frame(floored(pvalue)),
        "pvalue_empirical": frame(empirical),
        "fdr": frame(floored(fdr)),
        "pvalue_conditional": frame(floored(conditional)),
        "fdr_conditional": frame(floored(benjamini_hochberg(conditional))),
        "set_stats": set_stats.sort_values(["fdr", "null_z"], ascending=[True, False]),
    }


def module_significance(
    z: np.ndarray,
    modules: np.ndarray,
    dead: np.ndarray,
    sets: MatchedSets,
    set_names: list[str],
    nodes: pd.Index,
) -> dict[str, pd.DataFrame]:
    """Each co-expression module scored on each node as one unit, against expression-matched random genes.

    Under ``null="coexpression"`` a set is tested against genes of its own modules, so a set lying
    inside one module (cell-cycle sets inside a mitotic module) cannot stand out from it, however
    strongly a node carries the module. The module itself is then what the node encodes: its
    Stouffer score over its genes (``module_impact``), tested like a set under the expression null
    (``module_null_z``, ``module_fdr``: BH over live (node, module) pairs, floored at ``1 / (1 +
    n_null)``), and named by the given sets over-represented among its genes (``module_sets``,
    :func:`module_gene_sets`). ``sets`` gives the expression bins, ``n_null`` and seed of the
    random sets and the given sets' columns.
    """
    from scipy.stats import norm

    from ._coexpression import module_columns, module_gene_sets

    labelled = module_gene_sets(modules, sets.set_columns, set_names, fdr=FDR)
    all_columns = module_columns(modules)
    keep = [m for m, cols in enumerate(all_columns) if len(cols)]
    columns, names = [all_columns[m] for m in keep], labelled.index[keep]
    design = MatchedSets(columns, sets.bins, sets.n_null, sets.seed)
    test = competitive_test(z, design, live=~dead)
    null_z = np.where(dead[:, None], np.nan, test.null_z)
    fdr = null_floor(benjamini_hochberg(norm.sf(null_z)), sets.n_null)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=nodes, columns=names)

    return {
        "module_impact": frame(np.where(dead[:, None], 0.0, test.observed)),
        "module_null_z": frame(null_z),
        "module_fdr": frame(fdr),
        "module_sets": labelled.loc[names],
    }
