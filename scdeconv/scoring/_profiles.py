"""Gene-level profiles and their gene-set scores: expression bins, binned z-scores, Stouffer sums.

Every set score in scdeconv is built from these kernels: a nodes x genes (or cells x genes) profile
is z-scored among genes of similar mean expression (:func:`binned_zscores`) and summed over each
set (:func:`set_enrichment`, Stouffer).
"""

from __future__ import annotations

import numpy as np


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


def cell_activity(
    cell_totals: np.ndarray, bins: np.ndarray, set_columns: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell activity of each set (cells x sets), and the per-gene z-scores it sums (cells x genes).

    ``cell_totals`` holds, per cell and gene, the |attribution| summed over nodes. As for the
    node scores, each cell's values are z-scored among genes of the same expression bin and
    Stouffer-summed over the set: positive where the set's genes drive the cell's representation
    more than expression-matched genes do.
    """
    gene_z = binned_zscores(cell_totals, bins)
    return set_enrichment(gene_z, set_columns), gene_z


def profile_enrichment(profile: np.ndarray, bins: np.ndarray, set_columns: list[np.ndarray]) -> np.ndarray:
    """Nodes x sets enrichment of a nodes x genes profile: binned z-scores, Stouffer-summed per set."""
    return set_enrichment(binned_zscores(profile, bins), set_columns)
