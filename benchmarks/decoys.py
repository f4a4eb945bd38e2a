"""Decoy gene sets on real data: co-expression without a programme, called by each null model how often?

Run: ``python benchmarks/decoys.py [--seed 0] [--modules 30] [--replicates 3] [--n-null 1000]``;
``--simulator`` instead measures the planted sets the null models keep on the simulator.

For Paul15 and the Wu et al. 2020 T cells: ``select_genes`` and ``train_autoencoder`` (defaults),
then co-expression modules of the model's genes (average-linkage clustering of 1 - Pearson
correlation of log-normalised expression over all cells, cut into ``--modules`` clusters). Each
Hallmark set gets ``--replicates`` decoys: every gene replaced by a random other gene of its
co-expression module that is not in the set, so a decoy keeps the set's co-expression structure
but not its genes. Real sets and decoys are scored by ``module_impact`` on the same model, with
the expression profile first and the attribution profile second, and one row per null model:

- ``null="expression"``: random sets matched on size and expression bins (genes exchangeable).
- ``null="coexpression"``: random sets matched on co-expression modules (``module_impact``'s
  k-means of gene loadings on 30 principal components of a random half of the cells, 20
  modules). This is close to the decoys' construction (a gene replaced by a gene of its module),
  though clustered differently (k-means on another cell sample, another module count, no
  average linkage), so part of its low decoy rate holds by construction: read it with the real
  calls it keeps.
  Three more rows under the expression profile: another cell half and null draws (``seed + 1``),
  and 10 or 50 modules.
- CAMERA's variance inflation (Wu & Smyth 2012) on ``null="expression"``: each (node, set) null z
  divided by ``sqrt(1 + (m - 1) * rho)``, ``rho`` the mean pairwise correlation of the set's ``m``
  genes (floored at 0), from raw expression ("VIF, expression"), from residuals after the node's
  design, i.e. expression minus its mean in the node's active cells and in the rest ("VIF,
  residuals of the node": CAMERA's own argument, so co-expression that *is* the node's programme
  is not penalised), the same beyond the mean correlation of random gene pairs ("beyond random
  pairs"), and from residuals of expression regressed on the whole representation ("VIF,
  residuals of the latent").

Calls are at the set level: ``set_stats`` FDR < 0.05 (Sidak over live nodes, BH over sets; for
the VIF rows recomputed from the inflated z the same way). "heme kept": HALLMARK_HEME_METABOLISM
called and, on some live node where the (node, set) pair is called (BH over live pairs), the
node's active cells are erythroid (1Ery-6Ery) at least 1.5 times as often as all cells are. "CD8
kept": HALLMARK_ALLOGRAFT_REJECTION or HALLMARK_INTERFERON_GAMMA_RESPONSE (the cytotoxic and
IFN-gamma expectations of ``benchmarks/_recovery/real.py``) called the same way on a node whose
active cells are CD8 T cells (``cluster_orig`` 8.*) 1.5 times as often as all cells are. Each cell
gives the share (of the best such node) in brackets.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import scdeconv as sd
from scdeconv._defaults import N_MODULES
from scdeconv.scoring import active_cells, benjamini_hochberg

LIFT = 1.5
HEME = ("HALLMARK_HEME_METABOLISM",)
CD8 = ("HALLMARK_ALLOGRAFT_REJECTION", "HALLMARK_INTERFERON_GAMMA_RESPONSE")


def _log_expression(adata, genes: np.ndarray) -> np.ndarray:
    import scanpy as sc

    part = adata[:, genes].copy()
    sc.pp.normalize_total(part, target_sum=1e4)
    sc.pp.log1p(part)
    x = part.X.toarray() if hasattr(part.X, "toarray") else np.asarray(part.X)
    return np.asarray(x, dtype=np.float64)


def _modules(x: np.ndarray, n_modules: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    corr = np.nan_to_num(np.corrcoef(x, rowvar=False))
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


def _standardise(r: np.ndarray) -> np.ndarray:
    r = r - r.mean(axis=0)
    sd_ = r.std(axis=0)
    return np.divide(r, sd_, out=np.zeros_like(r), where=sd_ > 1e-12)


def _mean_correlation(standardised: np.ndarray, columns: list[np.ndarray]) -> np.ndarray:
    """Per set, the mean off-diagonal correlation of its genes (columns of standardised data)."""
    membership = np.zeros((standardised.shape[1], len(columns)))
    for s, cols in enumerate(columns):
        membership[cols, s] = 1
    sums = standardised @ membership
    m = membership.sum(axis=0)
    return ((sums * sums).sum(axis=0) / len(standardised) - m) / np.maximum(m * (m - 1), 1)


def _node_residuals(x: np.ndarray, active: np.ndarray) -> np.ndarray:
    r = x.copy()
    r[active] -= x[active].mean(axis=0)
    r[~active] -= x[~active].mean(axis=0)
    return _standardise(r)


def _correlations(x: np.ndarray, latent: np.ndarray, live: np.ndarray, columns: list[np.ndarray]) -> dict:
    """Nodes x sets mean correlation of each set's genes, per VIF variant (rows of dead nodes 0)."""
    active = active_cells(latent).astype(bool)
    n_nodes = latent.shape[1]
    everything = [np.arange(x.shape[1])]
    raw = _mean_correlation(_standardise(x), columns)
    design = np.column_stack([np.ones(len(x)), latent])
    fitted = design @ np.linalg.lstsq(design, x, rcond=None)[0]
    latent_rho = _mean_correlation(_standardise(x - fitted), columns)
    node, background = np.zeros((n_nodes, len(columns))), np.zeros(n_nodes)
    for j in np.flatnonzero(live):
        residual = _node_residuals(x, active[:, j])
        node[j] = _mean_correlation(residual, columns)
        background[j] = _mean_correlation(residual, everything)[0]
    return {
        "VIF, expression": np.broadcast_to(raw, node.shape),
        "VIF, residuals of the node": node,
        "VIF, residuals of the node, beyond random pairs": node - background[:, None],
        "VIF, residuals of the latent": np.broadcast_to(latent_rho, node.shape),
    }


def _inflated(result: dict, rho: np.ndarray, live: np.ndarray) -> tuple[pd.Series, pd.DataFrame]:
    """Set-level FDR and live (node, set) pair FDR after dividing each null z by CAMERA's VIF."""
    from scipy.stats import norm

    sizes = np.array([len(result["gene_sets"][s]) for s in result["null_z"].columns], dtype=np.float64)
    vif = 1 + (sizes[None] - 1) * np.maximum(rho, 0)
    null_z = result["null_z"].loc[live] / np.sqrt(vif[live])
    pvalue = -np.expm1(int(live.sum()) * np.log1p(-norm.sf(null_z.max(axis=0).to_numpy())))
    pairs = norm.sf(null_z.to_numpy())
    pair_fdr = benjamini_hochberg(pairs.ravel()).reshape(pairs.shape)
    return pd.Series(benjamini_hochberg(pvalue), index=null_z.columns), pd.DataFrame(
        pair_fdr, index=null_z.index, columns=null_z.columns
    )


def _kept(set_fdr: pd.Series, pair_fdr: pd.DataFrame, names, share: pd.Series, overall: float) -> str:
    """ "yes (share)" when one of ``names`` is called on a node whose active cells are enriched for the target."""
    best = None
    for name in names:
        if name not in set_fdr or set_fdr[name] >= 0.05:
            continue
        nodes = pair_fdr.index[pair_fdr[name] < 0.05]
        if len(nodes):
            top = float(share[nodes].max())
            best = top if best is None else max(best, top)
    if best is None:
        return "no (not called)"
    return f"{'yes' if best >= LIFT * overall else 'no'} ({best:.2f})"


def _row(real: tuple, fake: pd.Series, names, share, overall) -> dict:
    set_fdr, pair_fdr = real
    return {
        "real called": f"{int((set_fdr < 0.05).sum())}/{len(set_fdr)}",
        "decoys called": f"{100 * float((fake < 0.05).mean()):.1f}%",
        "kept": _kept(set_fdr, pair_fdr, names, share, overall),
    }


def _stored(result: dict, live: np.ndarray) -> tuple[pd.Series, pd.DataFrame]:
    return result["set_stats"]["fdr"], result["fdr"].loc[live]


def run(name: str, adata, target: np.ndarray, names, seed: int, n_modules: int, replicates: int, n_null: int):
    """Rows (profile, null) -> {real called, decoys called, kept} for one data set."""
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=seed, progress=False)
    genes = np.asarray(adata.uns["scdeconv"]["var_names"]).astype(str)
    x = _log_expression(adata, genes)
    latent = np.asarray(adata.obsm["X_scdeconv"])
    active = active_cells(latent).astype(bool)
    overall = float(target.mean())
    share = pd.Series(
        [float(target[active[:, j]].mean()) for j in range(latent.shape[1])],
        index=[f"node_{j}" for j in range(latent.shape[1])],
    )
    decoys, rho = None, None
    rows = {}
    variants = [(p, n, seed, N_MODULES) for p in ("expression", "attribution") for n in ("expression", "coexpression")]
    # Robustness of the co-expression null: another cell half and null draws, other module counts.
    variants[2:2] = [("expression", "coexpression", seed + 1, N_MODULES)]
    variants[3:3] = [("expression", "coexpression", seed, k) for k in (10, 50)]
    for profile, null, null_seed, k in variants:
        kw = dict(profile=profile, null=null, n_null=n_null, seed=null_seed, activity_key=None, progress=False)
        if null == "coexpression":
            kw["n_modules"] = k
        label = f"null={null!r}"
        if null == "coexpression" and (null_seed != seed or k != N_MODULES):
            label += f" (n_modules={k}, seed {null_seed})"
        sd.tl.module_impact(adata, key_added="real_impact", **kw)
        real = adata.uns["real_impact"]
        if decoys is None:
            modules = _modules(x, n_modules)
            decoys = _decoys(real["gene_sets"], genes, modules, replicates, np.random.default_rng(seed))
        sd.tl.module_impact(adata, gene_sets=decoys, key_added="decoy_impact", **kw)
        fake = adata.uns["decoy_impact"]
        live = ~real["node_stats"]["dead"].to_numpy()
        rows[(profile, label)] = _row(_stored(real, live), fake["set_stats"]["fdr"], names, share, overall)
        if null != "expression":
            continue
        if rho is None:  # the same genes, cells and nodes for both profiles
            index = {g: i for i, g in enumerate(genes)}
            rho = {
                which: _correlations(
                    x, latent, live, [np.array([index[g] for g in r["gene_sets"][c]]) for c in r["null_z"]]
                )
                for which, r in (("real", real), ("fake", fake))
            }
        for variant in rho["real"]:
            inflated_real = _inflated(real, rho["real"][variant], live)
            inflated_fake = _inflated(fake, rho["fake"][variant], live)[0]
            rows[(profile, variant)] = _row(inflated_real, inflated_fake, names, share, overall)
    table = pd.DataFrame(rows).T
    table.columns = pd.MultiIndex.from_product([[f"{name} ({adata.n_obs} cells, {len(genes)} genes)"], table.columns])
    return table, len(decoys)


def simulated(seed: int, n_null: int) -> pd.DataFrame:
    """Power on the simulator (1,500 cells, 1,200 genes): planted sets called per profile and null model."""
    adata = sd.datasets.simulate_hematopoiesis(1500, n_genes=1200, seed=seed)
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=seed, progress=False)
    planted = {s for sets in adata.uns["simulation"]["planted_sets"].values() for s in sets}
    negatives = set(adata.uns["simulation"]["negative_sets"])
    rows = {}
    for profile in ("expression", "attribution"):
        for null in ("expression", "coexpression"):
            kw = dict(profile=profile, null=null, n_null=n_null, seed=seed, activity_key=None, progress=False)
            sd.tl.module_impact(adata, **kw)
            stats = adata.uns["scdeconv_impact"]["set_stats"]
            called = set(stats.index[stats["fdr"] < 0.05])
            others = set(stats.index) - planted - negatives
            rows[(profile, f"null={null!r}")] = {
                "planted called": f"{len(called & planted)}/{len(planted)}",
                "never perturbed called": f"{len(called & negatives)}/{len(negatives)}",
                "other sets called": f"{len(called & others)}/{len(others)}",
                "planted missed": ", ".join(sorted(x.removeprefix("HALLMARK_") for x in planted - called)),
            }
    return pd.DataFrame(rows).T


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modules", type=int, default=30)
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--n-null", type=int, default=1000)
    parser.add_argument("--simulator", action="store_true", help="only the planted sets of the simulator")
    args = parser.parse_args(argv)
    if args.simulator:
        table = simulated(args.seed, args.n_null)
        with pd.option_context("display.width", 250, "display.max_colwidth", 80):
            print(
                f"Simulator (simulate_hematopoiesis, 1500 cells, 1200 genes, seed {args.seed}; n_null {args.n_null}): "
                "set-level calls at FDR < 0.05; 'other sets' share genes with planted ones or are untouched"
            )
            print(table.to_string())
        return table
    paul = sd.datasets.paul15()
    erythroid = paul.obs["paul15_clusters"].astype(str).isin([f"{i}Ery" for i in range(1, 7)]).to_numpy()
    tcells = sd.datasets.wu2020_tcells()
    cd8 = tcells.obs["cluster_orig"].astype(str).str.startswith("8.").to_numpy()
    common = (args.seed, args.modules, args.replicates, args.n_null)
    first, n_first = run("Paul15", paul, erythroid, HEME, *common)
    second, n_second = run("T cells", tcells, cd8, CD8, *common)
    table = pd.concat([first, second], axis=1)
    table.index.names = ["profile", "null model"]
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(
            f"Decoys: {args.replicates} per Hallmark set ({n_first} on Paul15, {n_second} on the T cells), genes "
            f"permuted within {args.modules} co-expression modules; n_null {args.n_null}; calls at set-level FDR < 0.05"
        )
        print(
            "kept: Paul15 HEME_METABOLISM on an erythroid node; T cells ALLOGRAFT_REJECTION or "
            f"INTERFERON_GAMMA_RESPONSE on a CD8 node (share of the node's active cells; yes at >= {LIFT} x overall: "
            f"{erythroid.mean():.2f} erythroid, {cd8.mean():.2f} CD8)"
        )
        print(table.to_string())
    return table


if __name__ == "__main__":
    main()
