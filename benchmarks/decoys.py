"""Decoy gene sets on real data: co-expression without a programme, called by the null model how often?

Run: ``python benchmarks/decoys.py [--seed 0] [--modules 30] [--replicates 3]``

For Paul15 and the Wu et al. 2020 T cells: the default pipeline (select_genes, train, module_impact),
then co-expression modules of the model's genes (average-linkage clustering of 1 - Pearson
correlation of log-normalised expression, cut into ``--modules`` clusters). Each Hallmark set gets
``--replicates`` decoys: every gene replaced by a random other gene of its co-expression module
that is not in the set, so a decoy keeps the set's co-expression structure but not its genes. The
decoys are scored by ``module_impact`` on the same model, and the share called at the set level
(``set_stats`` FDR < 0.05, marginal and conditional) is printed next to the real sets' calls.

Then, as CAMERA argues for correlated genes (Wu & Smyth 2012), each set's null z is divided by
``sqrt(1 + (m - 1) * rho)``, with ``rho`` the mean pairwise expression correlation of its ``m``
genes (floored at 0), and the set-level FDR recomputed (Sidak over live nodes, BH over sets): the
same share for decoys and real sets after the variance inflation. "over nodes": the same with
``rho`` the correlation, across live nodes, of the genes' attribution z-scores that the impact sums
(the genes' co-variation in the space the null model draws from); "beyond random pairs": only the
correlation in excess of the mean over all gene pairs.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import scdeconv as sd
from scdeconv.scoring import benjamini_hochberg


def _expression_correlation(adata, genes: np.ndarray) -> np.ndarray:
    import scanpy as sc

    part = adata[:, genes].copy()
    sc.pp.normalize_total(part, target_sum=1e4)
    sc.pp.log1p(part)
    x = part.X.toarray() if hasattr(part.X, "toarray") else np.asarray(part.X)
    return np.nan_to_num(np.corrcoef(x, rowvar=False))


def _modules(corr: np.ndarray, n_modules: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distance = np.clip(1 - corr, 0, 2)
    np.fill_diagonal(distance, 0)
    return fcluster(linkage(squareform(distance, checks=False), "average"), n_modules, criterion="maxclust")


def _decoys(sets: dict, genes: np.ndarray, modules: np.ndarray, replicates: int, rng) -> dict[str, list[str]]:
    index = {g: i for i, g in enumerate(genes)}
    out = {}
    for name, members in sets.items():
        own = {index[g] for g in members}
        for r in range(replicates):
            picked = set()
            for i in own:
                pool = [j for j in np.flatnonzero(modules == modules[i]) if j not in own and j not in picked]
                if pool:
                    picked.add(int(rng.choice(pool)))
            if len(picked) >= 3:
                out[f"DECOY{r}_{name}"] = [str(genes[j]) for j in sorted(picked)]
    return out


def _inflated_set_fdr(result: dict, corr: np.ndarray, genes: np.ndarray, *, baseline: bool = False) -> pd.Series:
    """Set-level FDR after dividing each set's null z by CAMERA's variance inflation factor.

    ``baseline``: count only the correlation beyond that of random gene pairs (the random sets of
    the null carry that much already).
    """
    from scipy.stats import norm

    index = {g: i for i, g in enumerate(genes)}
    n = len(corr)
    background = (corr.sum() - np.trace(corr)) / (n * (n - 1)) if baseline else 0.0
    live = ~result["node_stats"]["dead"].to_numpy()
    null_z = result["null_z"].loc[live]
    vif = {}
    for name, members in result["gene_sets"].items():
        cols = [index[g] for g in members]
        block = corr[np.ix_(cols, cols)]
        m = len(cols)
        rho = max((block.sum() - np.trace(block)) / max(m * (m - 1), 1) - background, 0.0)
        vif[name] = 1 + (m - 1) * rho
    best = (null_z / np.sqrt(pd.Series(vif))[null_z.columns]).max(axis=0)
    pvalue = -np.expm1(int(live.sum()) * np.log1p(-norm.sf(best.to_numpy())))
    return pd.Series(benjamini_hochberg(pvalue), index=best.index)


def _attribution_correlation(adata) -> np.ndarray:
    """Genes x genes correlation, across live nodes, of the binned z-scores module_impact sums over sets."""
    from scdeconv._module.config import StreamOptions
    from scdeconv.tl._node_genes import attribution_zscores, impact_ranking

    params = adata.uns["scdeconv_impact"]["params"]
    z = attribution_zscores(
        adata,
        model_key=params["model_key"],
        method=params["method"],
        n_bins=int(params["n_bins"]),
        rank_by=impact_ranking(params),
        options=StreamOptions(progress=False),
    )
    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    return np.nan_to_num(np.corrcoef(z[live], rowvar=False))


def run(name: str, adata, seed: int, n_modules: int, replicates: int) -> dict:
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=seed, progress=False)
    sd.tl.module_impact(adata, progress=False)
    real = adata.uns["scdeconv_impact"]
    genes = np.asarray(adata.uns["scdeconv"]["var_names"]).astype(str)
    corr = _expression_correlation(adata, genes)
    modules = _modules(corr, n_modules)
    decoys = _decoys(real["gene_sets"], genes, modules, replicates, np.random.default_rng(seed))
    sd.tl.module_impact(adata, gene_sets=decoys, activity_key=None, progress=False, key_added="decoy_impact")
    fake = adata.uns["decoy_impact"]
    node_corr = _attribution_correlation(adata)
    row = {"data": f"{name} ({adata.n_obs} cells, {len(genes)} genes)", "real sets": len(real["set_stats"])}
    row["decoys"] = len(fake["set_stats"])
    for label, result in (("real", real), ("decoys", fake)):
        stats = result["set_stats"]
        row[f"{label} called"] = float((stats["fdr"] < 0.05).mean())
        row[f"{label} called (conditional)"] = float((stats["fdr_conditional"] < 0.05).mean())
        inflated = _inflated_set_fdr(result, corr, genes)
        row[f"{label} called (VIF)"] = float((inflated < 0.05).mean())
        by_nodes = _inflated_set_fdr(result, node_corr, genes)
        row[f"{label} called (VIF over nodes)"] = float((by_nodes < 0.05).mean())
        beyond = _inflated_set_fdr(result, node_corr, genes, baseline=True)
        row[f"{label} called (VIF over nodes, beyond random pairs)"] = float((beyond < 0.05).mean())
        if label == "real":
            heme = "HALLMARK_HEME_METABOLISM"
            row["heme called (VIF)"] = bool(heme in inflated and inflated[heme] < 0.05)
            kept = inflated.index[inflated < 0.05]
            row["real called sets (VIF)"] = ", ".join(s.removeprefix("HALLMARK_") for s in kept)
            kept = by_nodes.index[by_nodes < 0.05]
            row["heme called (VIF over nodes)"] = bool(heme in by_nodes and by_nodes[heme] < 0.05)
            row["real called sets (VIF over nodes)"] = ", ".join(s.removeprefix("HALLMARK_") for s in kept)
            row["heme called (VIF over nodes, beyond random pairs)"] = bool(heme in beyond and beyond[heme] < 0.05)
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modules", type=int, default=30)
    parser.add_argument("--replicates", type=int, default=3)
    args = parser.parse_args(argv)
    rows = [
        run("Paul15", sd.datasets.paul15(), args.seed, args.modules, args.replicates),
        run("T cells", sd.datasets.wu2020_tcells(), args.seed, args.modules, args.replicates),
    ]
    table = pd.DataFrame(rows).set_index("data").T
    with pd.option_context("display.width", 250, "display.max_colwidth", 200):
        print(f"Decoys: {args.replicates} per Hallmark set, genes permuted within {args.modules} co-expression modules")
        print(table.to_string())
    return table


if __name__ == "__main__":
    main()
