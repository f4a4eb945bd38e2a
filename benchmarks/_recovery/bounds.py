"""What bounds known-set recovery at each level: the scoring given the true groups, and how separable the cells are."""

from __future__ import annotations

import numpy as np
import pandas as pd

import scdeconv as sd
from scdeconv.scoring import active_expression_shift, profile_enrichment

from .config import LEVELS, Config
from .metrics import recovery_metrics
from .outputs import Output
from .simulation import prepare, simulator_truth


def oracle_set_scores(x: np.ndarray, labels: np.ndarray, bins: np.ndarray, sets: dict) -> pd.Series:
    """scdeconv's expression-profile set score with one oracle node per true group (its cells active).

    The same kernels as ``module_impact(profile="expression")``: each node's active cells' mean
    minus all cells' mean in SDs, z-scored within expression bins, Stouffer-summed per set; a
    set's score is its best node's. Only the nodes are replaced, by the groups the data were made of.
    """
    weights = np.stack([(labels == g).astype(np.float64) for g in np.unique(labels)], axis=1)
    shift = active_expression_shift(x.sum(axis=0), (x * x).sum(axis=0), weights.T @ x, weights.sum(axis=0), len(x))
    names = list(sets)
    enrichment = profile_enrichment(shift, bins, [np.asarray(sets[n]) for n in names])
    return pd.Series(enrichment.max(axis=0), index=names)


def run_bounds(level: str, seed: int, cfg: Config) -> dict:
    """Oracle-node AUPRC, and the accuracy with which the true groups can be told from one cell's input."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    raw = sd.datasets.simulate_hematopoiesis(cfg.n_cells, n_genes=cfg.n_genes, seed=seed, **LEVELS[level])
    truth = simulator_truth(raw)
    _, ctx = prepare(raw, mode="hvg", seed=seed, labels_col="group")
    x, labels = ctx["lognorm"], ctx["labels"]
    oracle = Output("oracle nodes", set_scores=oracle_set_scores(x, labels, ctx["bins"], ctx["sets"]))
    # A supervised ceiling of per-cell separability: a ridge-penalised logistic regression given the labels.
    classifier = LogisticRegression(max_iter=3000, C=0.1)
    _, counts = np.unique(labels, return_counts=True)
    return {
        "level": level,
        "seed": seed,
        "oracle-node AUPRC": recovery_metrics(oracle, truth)["AUPRC"],
        "supervised accuracy": float(cross_val_score(classifier, x, labels, cv=5).mean()),
        "largest group share": float(counts.max() / counts.sum()),
    }
