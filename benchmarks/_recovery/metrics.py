"""Metrics (a)-(e): program recovery, group tests, embedding quality, top-gene precision."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from scdeconv.scoring import activity_tests

from .config import FDR, TOP
from .outputs import Output


def recovery_metrics(out: Output, truth: dict) -> dict:
    """(a) AUPRC and precision@k of planted sets among all scored sets, and against clean negatives."""
    if out.set_scores is None:
        return {}
    scores = out.set_scores.dropna()
    if scores.empty:  # e.g. every component of a peer vanished: no set score to rank
        return {"AUPRC": np.nan, "AUPRC vs neg": np.nan}
    labels = scores.index.isin(truth["planted"])
    clean = scores.index.isin(truth["planted"] | truth["negative"])
    k = int(labels.sum())
    return {
        "AUPRC": average_precision_score(labels, scores.to_numpy()),
        "AUPRC vs neg": average_precision_score(labels[clean], scores.to_numpy()[clean]),
        f"P@{k}": float(labels[np.argsort(-scores.to_numpy(), kind="stable")[:k]].mean()),
    }


def group_metrics(out: Output, labels: np.ndarray, truth: dict) -> dict:
    """(b) Each group vs the rest: planted sets called (power), clean negatives called (FPR, FDP)."""
    if out.activity is None:
        return {}
    act = out.activity.to_numpy()
    names = list(out.activity.columns)
    calls = {}
    for group in truth["groups"]:
        tests = activity_tests(act[labels == group], act[labels != group], names)
        calls[group] = set(tests.index[(tests["fdr"] < FDR) & (tests["effect"] > 0)])
    return call_rates(calls, truth)


def call_rates(calls: dict[str, set[str]], truth: dict) -> dict:
    """Power (planted sets called in their group), FPR and FDP (clean negatives called) from each group's calls."""
    tp = sum(len(calls[g] & set(planted)) for g, planted in truth["groups"].items())
    fp = sum(len(calls[g] & truth["negative"]) for g in truth["groups"])
    n_pos = sum(len(planted) for planted in truth["groups"].values())
    n_neg = len(truth["negative"]) * len(truth["groups"])
    return {"power": tp / n_pos, "FPR neg": fp / n_neg, "FDP": fp / max(tp + fp, 1)}


def embedding_metrics(out: Output, x_input: np.ndarray, labels: np.ndarray, seed: int, n_max: int = 1000) -> dict:
    """(d) Trustworthiness and 15-NN overlap against the input, 15-NN accuracy of the labels (5-fold)."""
    from sklearn.manifold import trustworthiness
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    if out.embedding is None:
        return {}
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(labels), size=min(n_max, len(labels)), replace=False))
    emb, x, y = np.asarray(out.embedding)[rows], x_input[rows], labels[rows]
    k = min(15, len(rows) - 2)
    nn_in = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(return_distance=False)
    nn_emb = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(return_distance=False)
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(nn_in[:, :k], nn_emb[:, :k], strict=True)])
    n_folds = int(min(5, pd.Series(y).value_counts().min())) if len(set(y)) > 1 else 0
    acc = np.nan
    if n_folds >= 2:
        acc = cross_val_score(KNeighborsClassifier(n_neighbors=min(15, len(rows) // 4)), emb, y, cv=n_folds).mean()
    return {"trust": trustworthiness(x, emb, n_neighbors=k), "kNN overlap": overlap, "kNN acc": acc}


def best_precision(components: list[set[str]], programs: dict[str, set[str]], n: int = TOP) -> dict[str, float]:
    """Per program: the largest share of its genes among some component's top ``n`` genes."""
    return {p: max((len(c & genes) / n for c in components), default=np.nan) for p, genes in programs.items()}


# The simulation table's row of what sd.tl.group_diff itself calls (self-contained and competitive tests).
GROUP_DIFF_ROW = "scdeconv (group_diff)"


def group_diff_metrics(adata, *, impact_key: str, groupby: str, truth: dict) -> dict:
    """(b) as scdeconv's users get it: every group vs the rest by ``sd.tl.group_diff(group1="all")``.

    A set is called in a group where its ``set_tests`` FDR is below ``FDR`` and its direction is
    up; the package's test is the Mann-Whitney test above and a competitive test against random
    sets of the same size and expression bins, the larger p-value counting.
    """
    import scdeconv as sd

    result = sd.tl.group_diff(adata, groupby, "all", impact_key=impact_key, progress=False, copy=True)
    tests = result.uns["scdeconv_group_diff"]["set_tests"]
    called = tests[(tests["fdr"] < FDR) & (tests["direction"] == "up")]
    return call_rates({g: set(called.loc[called["group"] == g, "gene_set"]) for g in truth["groups"]}, truth)
