"""Impact of gene sets on representation nodes, from saliency (numpy only).

Two scores, both from attributions streamed by :mod:`scdeconv._module.saliency`:

- ``"median"``, the paper's (Kinalis et al. 2019): for each cell, the median |saliency| over the
  genes of S present in the data; then the mean over cells.
- ``"enrichment"`` (default): how much more the genes of S drive node j than genes of the same
  expression level do. For node j, the mean |attribution| of each gene over cells is z-scored
  among the genes of its expression bin; the set's score is the Stouffer sum
  ``sum(z[S]) / sqrt(|S|)``. It is comparable across nodes and sets, and unaffected by a node's
  overall gain or by the typical attribution of a gene's expression level, the two things that
  dominate the paper's median.

The module also holds the paper's display transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "active_cells",
    "active_expression_shift",
    "benjamini_hochberg",
    "binned_zscores",
    "cell_activity",
    "expression_bins",
    "log_ratio",
    "matched_null",
    "minmax_per_set",
    "scaled_difference",
    "set_enrichment",
    "visible_nodes",
    "welch_from_moments",
]

SCORES: tuple[str, ...] = ("enrichment", "median")


ACTIVE_QUANTILE = 0.75  # a node's active cells: its top quarter by activation


def active_cells(latent: np.ndarray, quantile: float = ACTIVE_QUANTILE) -> np.ndarray:
    """Cells x nodes 0/1 weights: the cells where each node's activation reaches its ``quantile``.

    A program active in a minority of cells drives the node mostly there; averaging attributions
    over these cells, not all cells, keeps the program from being diluted by the rest.
    """
    latent = np.asarray(latent, dtype=np.float64)
    return (latent >= np.quantile(latent, quantile, axis=0, keepdims=True)).astype(np.float64)


def active_expression_shift(
    total: np.ndarray, squares: np.ndarray, weighted: np.ndarray, weight_totals: np.ndarray, n_cells: int
) -> np.ndarray:
    """Nodes x genes: how far each gene's mean in a node's active cells sits above its mean, in SDs.

    From streamed sums: per gene ``total`` and ``squares`` of the expression over ``n_cells``
    cells, per node ``weighted`` (its active cells' sums) and ``weight_totals`` (their number).
    Constant genes, and nodes with no active cells, score 0.
    """
    mean = total / max(n_cells, 1)
    sd = np.sqrt(np.maximum(squares / max(n_cells, 1) - mean**2, 0.0))
    counts = np.asarray(weight_totals, dtype=np.float64)[:, None]
    active_mean = np.divide(weighted, counts, out=np.broadcast_to(mean, weighted.shape).copy(), where=counts > 0)
    return np.divide(active_mean - mean, sd, out=np.zeros_like(active_mean), where=sd > 1e-12)


def expression_bins(mean_expression: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin index (0..n_bins-1) of each gene by its mean expression (equal-count bins)."""
    ranks = np.argsort(np.argsort(mean_expression, kind="stable"), kind="stable")
    return (ranks * n_bins // max(len(ranks), 1)).astype(np.int64)


def binned_zscores(profile: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Z-score each row of ``profile`` (nodes x genes) among the genes of each expression bin.

    Rows with no spread within a bin (a dead node) get zeros there.
    """
    z = np.zeros_like(profile, dtype=np.float64)
    for b in np.unique(bins):
        cols = bins == b
        block = profile[:, cols].astype(np.float64)
        spread = block.std(axis=1, keepdims=True)
        z[:, cols] = np.where(
            spread > 0, (block - block.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1), 0
        )
    return z


def log_ratio(profile1: np.ndarray, profile2: np.ndarray) -> np.ndarray:
    """``log(profile1 / profile2)`` per node and gene, with a small per-node floor against zeros."""
    floor = 1e-3 * np.maximum((profile1 + profile2).mean(axis=1, keepdims=True) / 2, 1e-12)
    return np.log(profile1 + floor) - np.log(profile2 + floor)


def set_enrichment(z: np.ndarray, set_columns: list[np.ndarray]) -> np.ndarray:
    """Stouffer combination of gene z-scores over each set: nodes x sets, ``sum(z[S]) / sqrt(|S|)``.

    A superset is the size-weighted combination of its parts: for disjoint ``A`` and ``B``,
    ``sqrt(|A|+|B|) score(A+B) = sqrt(|A|) score(A) + sqrt(|B|) score(B)``, so genes added with
    z-scores near 0 dilute a set's score by ``sqrt(|A| / (|A|+|B|))``. Genes of a set that are
    absent from the data are ignored (:func:`scdeconv.genesets.match_gene_sets`). The paper's
    per-cell median of a superset lies between the medians of its two parts.
    """
    return np.stack([z[:, cols].sum(axis=1) / np.sqrt(len(cols)) for cols in set_columns], axis=1)


def minmax_per_set(impact: pd.DataFrame) -> pd.DataFrame:
    """Min-max scale each gene set (column) across nodes to [0, 1], as the paper's heatmaps do.

    A set with the same impact on every node scales to 0.
    """
    low = impact.min(axis=0)
    span = impact.max(axis=0) - low
    return (impact - low) / span.where(span > 0, np.inf)


def visible_nodes(scaled: pd.DataFrame, threshold: float = 0.7) -> pd.Index:
    """Nodes with at least one scaled score above ``threshold`` (the paper hides the rest)."""
    return scaled.index[(scaled > threshold).any(axis=1)]


def scaled_difference(diff: pd.DataFrame) -> pd.DataFrame:
    """Scale a difference table by its largest absolute value, to [-1, 1] (the paper's panel e)."""
    top = float(np.nanmax(np.abs(diff.to_numpy()))) if diff.size else 0.0
    return diff / top if top > 0 else diff * 0.0


def cell_activity(cell_totals: np.ndarray, bins: np.ndarray, set_columns: list[np.ndarray]) -> np.ndarray:
    """Per-cell activity of each set: cells x sets.

    ``cell_totals`` holds, per cell and gene, the |attribution| summed over nodes. As for the
    node scores, each cell's values are z-scored among genes of the same expression bin and
    Stouffer-summed over the set: positive where the set's genes drive the cell's representation
    more than expression-matched genes do.
    """
    return set_enrichment(binned_zscores(cell_totals, bins), set_columns)


_NULL_SET_BLOCK = 64  # gene sets whose null scores are held at once (64 x n_null x nodes floats)


@dataclass
class NullModel:
    """Null scores of expression-matched random gene sets, summarised (nodes x sets, or per set)."""

    mean: np.ndarray  # nodes x sets: mean null score
    sd: np.ndarray  # nodes x sets: standard deviation of the null scores
    n_exceeding: np.ndarray  # nodes x sets: null scores reaching the observed one
    best_exceeding: np.ndarray  # sets: random sets whose best standardised node score reaches the set's
    n_null: int


def matched_null(
    z: np.ndarray,
    bins: np.ndarray,
    set_columns: list[np.ndarray],
    *,
    n_null: int,
    live: np.ndarray | None = None,
    seed: int = 0,
) -> NullModel:
    """Score random gene sets matched to each set on size and expression bins.

    For each set, ``n_null`` random sets draw, from every expression bin, as many genes (without
    replacement) as the set has there, and are scored like the set (Stouffer sum of ``z``).
    Besides per-node summaries, the best standardised score over ``live`` nodes of each random
    set gives a max-statistic null for the question "does any node encode this set?", which
    accounts for the number of nodes looked at.

    The draws are shared across sets: random set ``r`` of every set takes the first genes of one
    random ordering ``r`` of each bin, so the scores of all sets come from prefix sums of ``z``
    along ``n_null`` orderings per bin instead of one gather per set (the fixed cost of the null
    model drops from seconds to a fraction of the Jacobian's time). Each set's null sample is still
    an exact matched random sample; the sets' p-values become dependent through the shared draws
    (positively: a high-scoring draw raises every set's p-value), the kind of dependence under
    which Benjamini-Hochberg is known to hold up (Benjamini & Yekutieli 2001).
    """
    rng = np.random.default_rng(seed)
    live = np.ones(z.shape[0], dtype=bool) if live is None else np.asarray(live, dtype=bool)
    z = np.asarray(z, dtype=np.float64)
    n_nodes, n_sets = z.shape[0], len(set_columns)
    bin_ids = np.unique(bins)
    # needed[b, s]: genes of set s in expression bin b
    needed = (
        np.stack(
            [np.bincount(np.searchsorted(bin_ids, bins[cols]), minlength=len(bin_ids)) for cols in set_columns], axis=1
        )
        if n_sets
        else np.zeros((len(bin_ids), 0), dtype=np.int64)
    )
    genes_by_nodes = np.ascontiguousarray(z.T)
    orderings = {}  # bin -> n_null x (most genes any set takes from it): random orderings of its genes
    for b_index, b in enumerate(bin_ids):
        if needed[b_index].any():
            pool = np.flatnonzero(bins == b)
            picks = np.argsort(rng.random((n_null, len(pool))), axis=1)[:, : int(needed[b_index].max())]
            orderings[b_index] = pool[picks]
    observed = set_enrichment(z, set_columns)
    shape = (n_nodes, n_sets)
    model = NullModel(
        mean=np.empty(shape),
        sd=np.empty(shape),
        n_exceeding=np.empty(shape, dtype=np.int64),
        best_exceeding=np.empty(n_sets, dtype=np.int64),
        n_null=n_null,
    )
    for first in range(0, n_sets, _NULL_SET_BLOCK):  # sets in blocks: memory bounded for any collection
        block = np.arange(first, min(first + _NULL_SET_BLOCK, n_sets))
        null_sums = np.zeros((len(block), n_null, n_nodes))
        for b_index, ordering in orderings.items():
            counts = needed[b_index, block]
            taking = np.flatnonzero(counts)
            if len(taking) == 0:
                continue
            # Prefix sums along each ordering, laid out (position, draw, node) so that both the
            # running sum and the pick of each set's prefix move whole contiguous slabs.
            prefix = np.cumsum(genes_by_nodes[ordering[:, : counts.max()].T], axis=0)  # longest x n_null x nodes
            null_sums[taking] += prefix[counts[taking] - 1]
        for i, s in enumerate(block):
            null = null_sums[i] / np.sqrt(len(set_columns[s]))  # n_null x nodes
            mean, sd = null.mean(axis=0), null.std(axis=0)
            model.mean[:, s], model.sd[:, s] = mean, sd
            model.n_exceeding[:, s] = (null >= observed[:, s]).sum(axis=0)
            scale = np.where(sd > 0, sd, np.inf)
            best_null = ((null - mean) / scale)[:, live].max(axis=1, initial=-np.inf)
            best_observed = ((observed[:, s] - mean) / scale)[live].max(initial=-np.inf)
            model.best_exceeding[s] = (best_null >= best_observed).sum()
    return model


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


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (FDR) of any-shaped array; NaNs are left out and kept."""
    flat = np.asarray(pvalues, dtype=np.float64).ravel()
    out = np.full_like(flat, np.nan)
    valid = np.flatnonzero(~np.isnan(flat))
    order = valid[np.argsort(flat[valid], kind="stable")]
    ranked = flat[order] * len(order) / np.arange(1, len(order) + 1)
    out[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return out.reshape(np.shape(pvalues))
