"""One record per node on Paul15: ``sd.tl.annotate_nodes`` after the default pipeline (seed 0).

Run: ``python benchmarks/paul15_nodes.py [--seed 0] [--null coexpression|expression]``. Prints the
set-level calls before and after the conditional test of overlapping sets, the node status counts
and the table of live nodes (best gene set, module or "novel programme", its conditional FDR, the
called sets, the clusters where the node is active, its top genes), and the time of
``group_diff`` for one cluster and for all of them (``group1="all"``).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

import scdeconv as sd


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--null", default="coexpression", choices=["expression", "coexpression"])
    args = parser.parse_args(argv)
    start = time.perf_counter()
    adata = sd.datasets.paul15()
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=args.seed, progress=False)
    sd.tl.module_impact(adata, null=args.null, progress=False)
    sd.tl.node_genes(adata, n_top=8, progress=False)
    sd.tl.annotate_nodes(adata, groupby="paul15_clusters", n_genes=8)
    table = sd.get.nodes_df(adata)
    stats = adata.uns["scdeconv_impact"]["set_stats"]
    marginal, conditional = int((stats["fdr"] < 0.05).sum()), int((stats["fdr_conditional"] < 0.05).sum())
    columns = ["node", "status", "annotation", "best_fdr", "called_sets", "active_in", "top_genes"]
    if "module" in table:  # null="coexpression": the node's strongest called module and what it is made of
        columns[4:4] = ["module", "module_fdr"]
    with pd.option_context("display.width", 250, "display.max_colwidth", 80, "display.float_format", "{:.2g}".format):
        print(f"Paul15, default model, seed {args.seed}, null={args.null!r}; sets at FDR < 0.05: {marginal}, "
              f"conditional {conditional}")  # fmt: skip
        print(stats[stats["fdr"] < 0.05][["best_node", "null_z", "fdr", "fdr_conditional"]].to_string())
        print(table["status"].value_counts().to_string())
        print(f"novel programmes: {int(table['novel'].sum())}")
        print(table[table["status"].isin(["live", "redundant"])][columns].to_string(index=False))
        if "module_sets" in adata.uns["scdeconv_impact"]:
            print(adata.uns["scdeconv_impact"]["module_sets"].to_string())
    print(f"seconds {time.perf_counter() - start:.1f}")
    # Every cluster against the rest from one saliency pass, against one cluster alone.
    lap = time.perf_counter()
    sd.tl.group_diff(adata, "paul15_clusters", "7MEP", progress=False, key_added="one")
    one, lap = time.perf_counter() - lap, time.perf_counter()
    sd.tl.group_diff(adata, "paul15_clusters", "all", progress=False, key_added="every")
    every, n = time.perf_counter() - lap, len(adata.uns["every"]["contrasts"])
    print(f"group_diff: one cluster vs rest {one:.1f} s; group1='all' ({n} clusters, one pass) {every:.1f} s")
    return table


if __name__ == "__main__":
    main()
