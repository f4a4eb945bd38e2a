"""Calibration and power of scdeconv's statistics on the simulator, over seeds.

Run: ``python benchmarks/calibration.py [--cells 1500] [--genes 1200] [--seeds 0 1 2] [--stability-seeds 3]``

For each seed it simulates ``simulate_hematopoiesis`` data (12 Hallmark sets planted in 6 groups,
11 clean negative sets whose genes are never perturbed), trains the default model and prints:

- null model of ``module_impact`` (default score): mean and sd of the null z of (live node,
  negative set) pairs (calibrated: 0 and 1), the share of those pairs at FDR < 0.05 (false
  calls), and the power: planted sets called at some live node (FDR < 0.05), and at the set level
  (``set_stats`` FDR < 0.05);
- ``group_diff`` per group vs rest: ``node_set_tests`` power (planted sets with a live node at
  FDR < 0.05 and a positive effect) and the largest share of (live node, negative set) pairs
  called in a group, for the combined test and for its self-contained (Welch) part alone;
  ``set_tests`` power (planted sets at FDR < 0.05, positive effect) and the number of negative
  sets called, for the combined test and for its Mann-Whitney part alone;
- ``stability`` over ``--stability-seeds`` models: median matched correlation of the nodes
  carrying planted sets vs the other live nodes, and the share of planted vs negative sets found
  again.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import scdeconv as sd


def null_model_figures(adata, planted: list[str], negatives: list[str]) -> dict[str, float]:
    result = adata.uns["scdeconv_impact"]
    live = ~result["node_stats"]["dead"].to_numpy()
    z = result["null_z"].loc[live, negatives].to_numpy()
    fdr = result["fdr"].loc[live]
    return {
        "dead nodes": int((~live).sum()),
        "null z mean (neg)": float(z.mean()),
        "null z sd (neg)": float(z.std()),
        "neg pairs called": float((fdr[negatives] < 0.05).to_numpy().mean()),
        "power (node)": float(np.mean([fdr[s].min() < 0.05 for s in planted])),
        "power (set)": float((result["set_stats"].loc[planted, "fdr"] < 0.05).mean()),
        "neg sets called": int((result["set_stats"].loc[negatives, "fdr"] < 0.05).sum()),
    }


def group_figures(adata, negatives: list[str]) -> dict[str, float]:
    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    from scdeconv.scoring import benjamini_hochberg

    node_found, set_found, worst_pairs, neg_sets_called = [], [], 0.0, 0
    welch_found, worst_welch = [], 0.0
    mw_found, mw_neg_called = [], 0
    for group, sets in adata.uns["simulation"]["planted_sets"].items():
        sd.tl.group_diff(adata, "group", group, progress=False, key_added="bench_diff")
        tests = adata.uns["bench_diff"]["node_set_tests"]
        fdr, effect = tests["fdr"].loc[live], tests["effect"].loc[live]
        node_found += [bool(((fdr[s] < 0.05) & (effect[s] > 0)).any()) for s in sets]
        worst_pairs = max(worst_pairs, float((fdr[negatives] < 0.05).to_numpy().mean()))
        # The self-contained Welch test alone (what node_set_tests called before its competitive part).
        welch = pd.DataFrame(
            benjamini_hochberg(tests["pvalue_welch"].loc[live].to_numpy()), index=fdr.index, columns=fdr.columns
        )
        welch_found += [bool(((welch[s] < 0.05) & (effect[s] > 0)).any()) for s in sets]
        worst_welch = max(worst_welch, float((welch[negatives] < 0.05).to_numpy().mean()))
        set_tests = adata.uns["bench_diff"]["set_tests"]
        set_found += [bool(set_tests.loc[s, "fdr"] < 0.05 and set_tests.loc[s, "effect"] > 0) for s in sets]
        neg_sets_called += int((set_tests.loc[negatives, "fdr"] < 0.05).sum())
        # Mann-Whitney alone (what set_tests called before its competitive part).
        mw_fdr = pd.Series(benjamini_hochberg(set_tests["pvalue_mw"].to_numpy()), index=set_tests.index)
        mw_found += [bool(mw_fdr[s] < 0.05 and set_tests.loc[s, "effect"] > 0) for s in sets]
        mw_neg_called += int((mw_fdr[negatives] < 0.05).sum())
    return {
        "diff power (node tests)": float(np.mean(node_found)),
        "diff neg pairs called (worst group)": worst_pairs,
        "diff power (Welch only)": float(np.mean(welch_found)),
        "diff neg pairs called (Welch only, worst)": worst_welch,
        "diff power (set tests)": float(np.mean(set_found)),
        "diff neg sets called (of 66)": neg_sets_called,
        "diff power (set tests, MW only)": float(np.mean(mw_found)),
        "diff neg sets called (MW only)": mw_neg_called,
    }


def stability_figures(adata, planted: list[str], negatives: list[str], n_seeds: int) -> dict[str, float]:
    sd.tl.stability(adata, n_seeds=n_seeds, progress=False)
    result = adata.uns["scdeconv_stability"]
    impact = adata.uns["scdeconv_impact"]
    live = impact["impact"].loc[~impact["node_stats"]["dead"].to_numpy()]
    carriers = set(live[planted].idxmax())
    others = [n for n in live.index if n not in carriers]
    stability = result["nodes"]["stability"]
    found = result["gene_sets"]["fraction_found"]
    return {
        "stability carriers": float(stability[sorted(carriers)].median()),
        "stability others": float(stability[others].median()),
        "planted found again": float(found[planted].mean()),
        "negatives found again": float(found[negatives].mean()),
    }


def run(seed: int, n_cells: int, n_genes: int, stability_seeds: int) -> dict[str, float]:
    start = time.perf_counter()
    adata = sd.datasets.simulate_hematopoiesis(n_cells, n_genes=n_genes, seed=seed)
    sim = adata.uns["simulation"]
    planted = sorted({s for sets in sim["planted_sets"].values() for s in sets})
    negatives = list(sim["negative_sets"])
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=seed, progress=False)
    sd.tl.module_impact(adata, progress=False)
    row = {"seed": seed, **null_model_figures(adata, planted, negatives), **group_figures(adata, negatives)}
    if stability_seeds > 1:
        row.update(stability_figures(adata, planted, negatives, stability_seeds))
    row["seconds"] = time.perf_counter() - start
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1500)
    parser.add_argument("--genes", type=int, default=1200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stability-seeds", type=int, default=3, help="models for stability; 1 skips it")
    args = parser.parse_args(argv)
    rows = [run(seed, args.cells, args.genes, args.stability_seeds) for seed in args.seeds]
    table = pd.DataFrame(rows).set_index("seed").T
    table["mean"] = table.mean(axis=1)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
        print(f"simulate_hematopoiesis({args.cells}, n_genes={args.genes}), default model and scores")
        print(table.to_string())
    return table


if __name__ == "__main__":
    main()
