"""Calibration and power of scdeconv's statistics on the simulator, over seeds.

Run: ``python benchmarks/calibration.py [--cells 1500] [--genes 1200] [--seeds 0 1 2] [--stability-seeds 3]``
or, for the donor-aware group tests only,
``python benchmarks/calibration.py --donors 8 --donor-effect 0.5 --condition-effect 1.0 --cells 2400 --genes 800``

For each seed it simulates ``simulate_hematopoiesis`` data (12 Hallmark sets planted in 6 groups,
11 clean negative sets whose genes are never perturbed), trains the default model and prints:

- null model of ``module_impact`` (default score): mean and sd of the null z of (live node,
  negative set) pairs (calibrated: 0 and 1), the share of those pairs at FDR < 0.05 (false
  calls), and the power: planted sets called at some live node (FDR < 0.05), or part of a
  co-expression module called there (the default ``null="coexpression"``), and at the set level
  (``set_stats`` FDR < 0.05); and, at the set level before and after the conditional test of
  overlapping sets (``fdr_conditional``), planted power and the unplanted sets called among those
  sharing at least 20 % of their genes with one planted set ("overlapping") and the rest ("others");
- ``group_diff`` per group vs rest: ``node_set_tests`` power (planted sets with a live node at
  FDR < 0.05 and a positive effect) and the largest share of (live node, negative set) pairs
  called in a group, for the combined test and for its self-contained (Welch) part alone, and the
  number of nodes a planted set is called on (where it is called); the FDR is over the pairs the
  whole-data impact calls (``pairs="called"``, the default), and "(all pairs)" recomputes it over
  every live pair (``pairs="all"``);
  ``set_tests`` power (planted sets at FDR < 0.05, positive effect) and the number of negative
  sets called, for the combined test and for its Mann-Whitney part alone;
- with ``--donors N`` instead: the data come from N donors (``donor_effect``: each donor's random
  log multiplier of every programme's activity; odd donors ``stim``, even ``ctrl``), and in
  ``stim`` donors INTERFERON_ALPHA_RESPONSE (active in Mo cells) is stronger by
  ``condition_effect`` (``--design within_donors``: half of each donor's cells are ``stim``, and
  the sample-level test is paired). ``group_diff(condition, "stim", "ctrl")`` in the Ery cells (no true
  difference, only donor effects on HEME_METABOLISM, OXIDATIVE_PHOSPHORYLATION and ProgA: every
  call is false) and in the Mo cells (one true difference), with cells as replicates and with
  ``sample_key="donor"``, on all donors and on the first 4, 8 and 12 of them: sets called at
  FDR < 0.05 (by the combined test and by its self-contained part alone) and (live node, set)
  pairs called;
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
        "power (node or its module)": module_power(adata, planted),
        "neg sets called": int((result["set_stats"].loc[negatives, "fdr"] < 0.05).sum()),
        **overlap_figures(result, planted),
    }


def module_power(adata, planted: list[str]) -> float:
    """Planted sets called on a live node, or part of a co-expression module called there (null="coexpression")."""
    table = sd.get.impact_df(adata)
    found = table["fdr"] < 0.05
    if "module" in table:
        found |= table["module"] != ""
    return float(np.mean([s in set(table.loc[found, "gene_set"]) for s in planted]))


def overlap_figures(result, planted: list[str]) -> dict[str, float]:
    """Set-level calls of unplanted sets sharing >= 20% of their genes with a planted set, before and after."""
    genes = {name: set(map(str, g)) for name, g in result["gene_sets"].items()}
    unplanted = [s for s in result["set_stats"].index if s not in planted]
    share = {s: max(len(genes[s] & genes[p]) / max(len(genes[s]), 1) for p in planted if p in genes) for s in unplanted}
    overlapping = [s for s in unplanted if share[s] >= 0.2]
    others = [s for s in unplanted if share[s] < 0.2]
    stats = result["set_stats"]
    row = {"overlapping unplanted sets": len(overlapping), "other unplanted sets": len(others)}
    for label, column in (("", "fdr"), (", conditional", "fdr_conditional")):
        row[f"power (set{label})"] = float((stats.loc[planted, column] < 0.05).mean())
        row[f"overlapping called{label}"] = int((stats.loc[overlapping, column] < 0.05).sum())
        row[f"others called{label}"] = int((stats.loc[others, column] < 0.05).sum())
    return row


def group_figures(adata, negatives: list[str]) -> dict[str, float]:
    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    from scdeconv.scoring import benjamini_hochberg

    node_found, set_found, worst_pairs, neg_sets_called = [], [], 0.0, 0
    welch_found, worst_welch = [], 0.0
    mw_found, mw_neg_called = [], 0
    nodes_per_set, nodes_per_set_all, all_found, worst_all = [], [], [], 0.0
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
        # group_diff(pairs="all"): the same p-values, BH over every live pair instead of the called ones.
        sd.tl.group_diff(adata, "group", group, pairs="all", progress=False, key_added="bench_diff_all")
        every = adata.uns["bench_diff_all"]["node_set_tests"]["fdr"].loc[live]
        all_found += [bool(((every[s] < 0.05) & (effect[s] > 0)).any()) for s in sets]
        worst_all = max(worst_all, float((every[negatives] < 0.05).to_numpy().mean()))
        # How many nodes a planted set is called on, where it is called at all: one per programme is the ideal.
        nodes_per_set += [int(((fdr[s] < 0.05) & (effect[s] > 0)).sum()) for s in sets]
        nodes_per_set_all += [int(((every[s] < 0.05) & (effect[s] > 0)).sum()) for s in sets]
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
        "diff nodes per planted set": float(np.mean([n for n in nodes_per_set if n > 0] or [0])),
        "diff power (all pairs)": float(np.mean(all_found)),
        "diff neg pairs called (all pairs, worst)": worst_all,
        "diff nodes per planted set (all pairs)": float(np.mean([n for n in nodes_per_set_all if n > 0] or [0])),
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


TARGET = "HALLMARK_INTERFERON_ALPHA_RESPONSE"  # the set a condition changes in the donor design (Mo cells)
NESTED = "HALLMARK_INTERFERON_GAMMA_RESPONSE"  # shares most of the target's genes: called with it


def _calls(adata, live, sample_key) -> tuple[pd.DataFrame, pd.DataFrame]:
    sd.tl.group_diff(adata, "compared", "stim", "ctrl", sample_key=sample_key, progress=False, key_added="bench_donor")
    result = adata.uns["bench_donor"]
    return result["set_tests"], result["node_set_tests"]["fdr"].loc[live]


def donor_figures(adata, seed: int) -> list[dict]:
    """False calls between conditions with no true difference, and power for one, over cells and samples."""
    from scdeconv.scoring import benjamini_hochberg

    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    donors = list(adata.obs["donor"].cat.categories)
    rows = []
    for n_donors in sorted({4, 8, 12, len(donors)} & set(range(4, len(donors) + 1))):
        kept = adata.obs["donor"].isin(donors[:n_donors]).to_numpy()
        planted = float(adata.uns["simulation"]["params"]["condition_effect"]) != 0
        for cells, truth in (("Ery", False), ("Mo", planted)):
            part = adata[kept & (adata.obs["group"] == cells).to_numpy()].copy()
            part.obs["compared"] = part.obs["condition"]
            for replicates, key in (("cells", None), ("samples", "donor")):
                sets, pairs = _calls(part, live, key)
                called = sets.index[(sets["fdr"] < 0.05).to_numpy()]
                others = [s for s in called if not truth or s not in (TARGET, NESTED)]
                target_up = bool(TARGET in called and sets.loc[TARGET, "effect"] > 0)
                alone = pd.Series(
                    benjamini_hochberg(sets["pvalue_mw" if key is None else "pvalue_samples"].to_numpy()), sets.index
                )
                alone_called = [s for s in alone.index[alone < 0.05] if not truth or s not in (TARGET, NESTED)]
                rows.append(
                    {
                        "seed": seed,
                        "donors": n_donors,
                        "cells": f"{cells} ({part.n_obs})",
                        "truth": "IFN-alpha up" if truth else "none",
                        "replicates": replicates,
                        "sets called": len(others),
                        "sets called (self-contained alone)": len(alone_called),
                        "target fdr": float(sets.loc[TARGET, "fdr"]) if truth else np.nan,
                        "target called (up)": target_up if truth else "",
                        "node pairs called": float((pairs < 0.05).to_numpy().mean()),
                    }
                )
    return rows


def run_donors(
    seed: int, n_cells: int, n_genes: int, n_donors: int, donor_effect: float, condition_effect: float, design: str
):
    adata = sd.datasets.simulate_hematopoiesis(
        n_cells,
        n_genes=n_genes,
        seed=seed,
        n_donors=n_donors,
        donor_effect=donor_effect,
        condition_effect=condition_effect,
        condition_programs=(TARGET,),
        condition_design=design,
    )
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=seed, progress=False)
    sd.tl.module_impact(adata, progress=False)
    return donor_figures(adata, seed)


def run(seed: int, n_cells: int, n_genes: int, stability_seeds: int, groups: bool = True) -> dict[str, float]:
    start = time.perf_counter()
    adata = sd.datasets.simulate_hematopoiesis(n_cells, n_genes=n_genes, seed=seed)
    sim = adata.uns["simulation"]
    planted = sorted({s for sets in sim["planted_sets"].values() for s in sets})
    negatives = list(sim["negative_sets"])
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=seed, progress=False)
    sd.tl.module_impact(adata, progress=False)
    row = {"seed": seed, **null_model_figures(adata, planted, negatives)}
    if groups:
        row.update(group_figures(adata, negatives))
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
    parser.add_argument("--no-groups", action="store_true", help="skip the group tests (null model only)")
    parser.add_argument("--donors", type=int, default=0, help="run the donor design with this many donors instead")
    parser.add_argument("--donor-effect", type=float, default=0.5)
    parser.add_argument("--condition-effect", type=float, default=1.0)
    parser.add_argument("--design", choices=["donors", "within_donors"], default="donors", help="condition_design")
    args = parser.parse_args(argv)
    if args.donors:
        rows = [
            row
            for seed in args.seeds
            for row in run_donors(
                seed, args.cells, args.genes, args.donors, args.donor_effect, args.condition_effect, args.design
            )
        ]
        table = pd.DataFrame(rows)
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
            print(
                f"simulate_hematopoiesis({args.cells}, n_genes={args.genes}, n_donors={args.donors}, "
                f"donor_effect={args.donor_effect}, condition_effect={args.condition_effect} on {TARGET}, "
                f"condition_design={args.design!r}); "
                "group_diff(condition, 'stim', 'ctrl'), FDR < 0.05, of 50 sets; with truth, sets called excludes "
                f"the target and {NESTED} (which holds most of its genes)"
            )
            print(table.to_string(index=False))
        return table
    rows = [run(seed, args.cells, args.genes, args.stability_seeds, not args.no_groups) for seed in args.seeds]
    table = pd.DataFrame(rows).set_index("seed").T
    table["mean"] = table.mean(axis=1)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
        print(f"simulate_hematopoiesis({args.cells}, n_genes={args.genes}), default model and scores")
        print(table.to_string())
    return table


if __name__ == "__main__":
    main()
