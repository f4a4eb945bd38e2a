"""Co-expression modules of genes: what the ``null="coexpression"`` random sets are matched on."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.linalg import eigh

N_COMPONENTS = 30  # principal components of the cells' expression that embed each gene
KMEANS_ITERATIONS = 50
KMEANS_RESTARTS = 4


def coexpression_modules(
    expression: np.ndarray, n_modules: int, *, n_components: int = N_COMPONENTS, seed: int = 0
) -> np.ndarray:
    """Module label (``0 .. n_modules-1``) of each gene, from the correlation of its expression over cells.

    ``expression`` is cells x genes (the encoder input of a sample of cells). Each gene is embedded
    by its loadings on the first ``n_components`` principal components of the standardised
    expression (scaled by the singular values), normalised to unit length, so that the Euclidean
    distance between two genes is a monotone function of their correlation within those
    components; the genes are then clustered by spherical k-means (k-means++ seeding,
    ``KMEANS_RESTARTS`` restarts, the tightest kept). Genes constant over the cells embed at 0 and
    join the nearest module.
    """
    x = np.array(expression, dtype=np.float64)  # one working copy, standardised in place
    n_cells, n_genes = x.shape
    n_modules = int(min(max(n_modules, 1), n_genes))
    x -= x.mean(axis=0)
    sd = np.sqrt(np.einsum("ij,ij->j", x, x) / max(n_cells, 1))  # x.std would hold two more copies of x
    np.divide(x, sd, out=x, where=sd > 1e-12)
    x[:, sd <= 1e-12] = 0.0
    embedding = _principal_loadings(x, int(min(n_components, n_cells, n_genes)))
    norms = np.linalg.norm(embedding, axis=1, keepdims=True)
    embedding = np.divide(embedding, norms, out=np.zeros_like(embedding), where=norms > 1e-12)
    rng = np.random.default_rng(seed)
    best, best_inertia = np.zeros(n_genes, dtype=np.int64), np.inf
    for _ in range(KMEANS_RESTARTS):
        labels, inertia = _kmeans(embedding, n_modules, rng)
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def _principal_loadings(x: np.ndarray, k: int) -> np.ndarray:
    """Genes x ``k``: each gene's loadings on the first ``k`` principal components, scaled by the singular values.

    That is ``V_k S_k`` of the SVD ``x = U S V^T``, from the eigendecomposition of the smaller Gram
    matrix (genes x genes or cells x cells): no cells x genes factor besides ``x`` is held.
    """
    gram_of_genes = x.shape[1] <= x.shape[0]
    gram = x.T @ x if gram_of_genes else x @ x.T  # x^T x = V S^2 V^T; x x^T = U S^2 U^T, and V S = x^T U
    n = len(gram)
    eigenvalues, vectors = eigh(gram, subset_by_index=[n - k, n - 1])  # the k largest, ascending
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    if gram_of_genes:
        return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    return x.T @ vectors


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Lloyd's k-means from a k-means++ start: labels and the within-cluster sum of squares."""
    n = len(points)
    centres = [points[rng.integers(n)]]
    closest = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        weights = closest / closest.sum() if closest.sum() > 0 else np.full(n, 1 / n)
        centres.append(points[rng.choice(n, p=weights)])
        closest = np.minimum(closest, ((points - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    labels = np.full(n, -1)
    for _ in range(KMEANS_ITERATIONS):
        distance = (points**2).sum(axis=1)[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)[None]
        new = distance.argmin(axis=1)
        if (new == labels).all():
            break
        labels = new
        for c in range(k):
            members = labels == c
            if members.any():
                centres[c] = points[members].mean(axis=0)
    distance = ((points - centres[labels]) ** 2).sum(axis=1)
    return labels.astype(np.int64), float(distance.sum())


def module_columns(modules: np.ndarray) -> list[np.ndarray]:
    """Per module ``0 .. max``, the column indices of its genes (empty modules give empty arrays)."""
    modules = np.asarray(modules)
    return [np.flatnonzero(modules == m) for m in range(int(modules.max()) + 1 if len(modules) else 0)]


def module_gene_sets(
    modules: np.ndarray, set_columns: list[np.ndarray], set_names: list[str], *, fdr: float, n_sets: int = 3
) -> pd.DataFrame:
    """What each co-expression module is made of: the given gene sets over-represented among its genes.

    Per module: ``n_genes``; ``all_sets`` (``"; "``-joined, by p-value), those whose overlap with
    the module is over-represented at Benjamini-Hochberg ``fdr`` (one-sided hypergeometric test
    over the model's genes, BH over all module x set pairs), and ``sets``, the first ``n_sets`` of
    them (the label); ``top_set`` and ``top_share`` (the share of the module's genes in its most
    over-represented set, or ``""`` and 0).
    """
    from scipy.stats import hypergeom

    from ._stats import benjamini_hochberg

    columns = module_columns(modules)
    n_genes = len(modules)
    overlap = np.array([[np.isin(cols, s).sum() for s in set_columns] for cols in columns], dtype=np.int64)
    module_size = np.array([len(c) for c in columns])[:, None]
    set_size = np.array([len(s) for s in set_columns])[None, :]
    pvalue = hypergeom.sf(overlap - 1, n_genes, set_size, module_size)  # P(overlap >= observed)
    adjusted = benjamini_hochberg(np.where(overlap > 0, pvalue, 1.0))
    rows = []
    for m, cols in enumerate(columns):
        order = [k for k in np.argsort(pvalue[m], kind="stable") if adjusted[m, k] < fdr]
        rows.append({
            "n_genes": len(cols),
            "sets": "; ".join(set_names[k] for k in order[:n_sets]),
            "all_sets": "; ".join(set_names[k] for k in order),
            "top_set": set_names[order[0]] if order else "",
            "top_share": float(overlap[m, order[0]] / max(len(cols), 1)) if order else 0.0,
        })  # fmt: skip
    return pd.DataFrame(rows, index=[f"module_{m}" for m in range(len(columns))])
