"""Planted-program recovery on the simulator: the paper's impact score vs scdeconv's default.

Run: ``python benchmarks/impact_recovery.py [--cells 2500] [--seeds 0 1] [--quick]``

For each seed it simulates ``simulate_hematopoiesis`` data (12 Hallmark sets planted in 6 groups,
11 clean negative sets), trains one autoencoder, and scores it twice:

- paper: ``method="guided", score="median"`` (Kinalis et al. 2019);
- default: ``method="grad_x_input", score="enrichment"``;

and, when decoupler is installed (``pip install -e ".[benchmarks]"``), decoupler's ULM on
log-normalised counts as a peer. Printed per run:

- AUPRC: best node score per set (ULM: largest group-vs-rest difference in mean activity),
  planted vs all other sets, and planted vs the clean negatives;
- best-of-node: planted sets that are the top set of some live node (paper: after its per-set
  min-max scaling);
- top-3: fraction of (group, planted set) pairs whose set is among the group's 3 largest
  group-vs-rest differences;
- seconds for scoring and for the 6 group comparisons.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

import scdeconv as sd

VARIANTS = {"paper": ("guided", "median"), "default": ("grad_x_input", "enrichment")}


def _truth(adata):
    sim = adata.uns["simulation"]
    planted = {s for sets in sim["planted_sets"].values() for s in sets}
    return sim["planted_sets"], planted, set(sim["negative_sets"])


def _auprc(scores: pd.Series, planted: set[str], negatives: set[str]) -> tuple[float, float]:
    labels = scores.index.isin(list(planted))
    clean = scores.index.isin(list(planted | negatives))
    return (
        average_precision_score(labels, scores.to_numpy()),
        average_precision_score(labels[clean], scores.to_numpy()[clean]),
    )


def score_variant(adata, method: str, score: str) -> dict[str, float]:
    groups, planted, negatives = _truth(adata)
    start = time.perf_counter()
    sd.tl.module_impact(adata, method=method, score=score, progress=False, key_added="bench")
    scoring = time.perf_counter() - start
    result = adata.uns["bench"]
    live = result["impact"].loc[~result["node_stats"]["dead"].to_numpy()]
    shown = sd.scoring.minmax_per_set(live) if score == "median" else live
    auprc, auprc_neg = _auprc(live.max(), planted, negatives)
    start = time.perf_counter()
    hits = []
    for group, sets in groups.items():
        sd.tl.group_diff(adata, "group", group, impact_key="bench", key_added="bench_diff", progress=False)
        top3 = list(adata.uns["bench_diff"]["set_scores"].index[:3])
        hits += [s in top3 for s in sets]
    return {
        "AUPRC": auprc,
        "AUPRC vs negatives": auprc_neg,
        "best-of-node": len(planted & set(shown.idxmax(axis=1))) / len(planted),
        "top-3": float(np.mean(hits)),
        "scoring s": scoring,
        "group comparisons s": time.perf_counter() - start,
    }


def score_ulm(adata) -> dict[str, float] | None:
    try:
        import decoupler as dc
    except ImportError:
        return None
    import scanpy as sc

    groups, planted, negatives = _truth(adata)
    data = adata.copy()
    sc.pp.normalize_total(data, target_sum=1e4)
    sc.pp.log1p(data)
    sets = sd.genesets.hallmark("mouse")
    net = pd.DataFrame([(s, g) for s, genes in sets.items() for g in genes], columns=["source", "target"])
    start = time.perf_counter()
    dc.mt.ulm(data, net, tmin=3)
    elapsed = time.perf_counter() - start
    activity = data.obsm["score_ulm"]
    labels = data.obs["group"].astype(str).to_numpy()
    diffs = pd.DataFrame(
        {g: activity[labels == g].mean() - activity[labels != g].mean() for g in groups}
    )  # sets x groups
    auprc, auprc_neg = _auprc(diffs.max(axis=1), planted, negatives)
    hits = [s in list(diffs[g].nlargest(3).index) for g, sets in groups.items() for s in sets]
    return {
        "AUPRC": auprc,
        "AUPRC vs negatives": auprc_neg,
        "best-of-node": np.nan,
        "top-3": float(np.mean(hits)),
        "scoring s": elapsed,
        "group comparisons s": 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=2500)
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--quick", action="store_true", help="small smoke run (600 cells, 5 epochs, 1 seed)")
    args = parser.parse_args()
    if args.quick:
        args.cells, args.genes, args.seeds = 600, 800, [0]
    rows = []
    for seed in args.seeds:
        adata = sd.datasets.simulate_hematopoiesis(args.cells, n_genes=args.genes, seed=seed)
        sd.pp.select_genes(adata)
        start = time.perf_counter()
        sd.tl.train_autoencoder(adata, seed=seed, progress=False, max_epochs=5 if args.quick else 200)
        train = time.perf_counter() - start
        for name, (method, score) in VARIANTS.items():
            rows.append({"seed": seed, "variant": name, "train s": train, **score_variant(adata, method, score)})
        ulm = score_ulm(adata)
        if ulm is not None:
            rows.append({"seed": seed, "variant": "decoupler ULM", "train s": 0.0, **ulm})
    table = pd.DataFrame(rows)
    print(f"simulate_hematopoiesis: {args.cells} cells, n_genes={args.genes}, seeds {args.seeds}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(table.groupby("variant", sort=False).mean(numeric_only=True).drop(columns="seed").round(3).to_string())


if __name__ == "__main__":
    main()
