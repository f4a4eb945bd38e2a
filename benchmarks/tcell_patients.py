"""CD8 vs CD4 T cells (Wu et al. 2020) with cells and with patients as replicates.

Run: ``python benchmarks/tcell_patients.py [--seed 0] [--min-cells 3]``. The default pipeline on the
200 bundled T cells, then ``group_diff(lineage, CD8, CD4)`` over cells and with
``sample_key="patient"`` (patients with at least ``--min-cells`` cells of a lineage), printing the
sets called at FDR < 0.05 with their direction.
"""

from __future__ import annotations

import argparse

import pandas as pd

import scdeconv as sd


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-cells", type=int, default=3)
    args = parser.parse_args(argv)
    adata = sd.datasets.wu2020_tcells()
    print(pd.crosstab(adata.obs["patient"], adata.obs["lineage"]).T.to_string())
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=args.seed, progress=False)
    sd.tl.module_impact(adata, progress=False)
    lineages = list(adata.obs["lineage"].astype(str).unique())
    cd8, cd4 = next(x for x in lineages if "8" in x), next(x for x in lineages if "4" in x)
    rows = []
    for label, key in (("cells", None), ("patients", "patient")):
        sd.tl.group_diff(
            adata, "lineage", cd8, cd4, sample_key=key, min_sample_cells=args.min_cells, progress=False, key_added=label
        )
        tests = sd.get.group_diff_df(adata, label, level="set")
        called = tests[tests["fdr"] < 0.05]
        pairs = (called["gene_set"], called["direction"])
        params = adata.uns[label]["params"]
        design = f"{params.get('sample_test', '')} over {params.get('n_samples1', '')}/{params.get('n_samples2', '')}"
        rows.append(
            {
                "replicates": label if key is None else f"{label} ({design})",
                "sets called": len(called),
                "calls": ", ".join(f"{g.removeprefix('HALLMARK_')} ({d})" for g, d in zip(*pairs, strict=True)),
            }
        )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_colwidth", 400):
        print(f"group_diff(lineage, {cd8!r}, {cd4!r}), set tests at FDR < 0.05 (seed {args.seed})")
        print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
