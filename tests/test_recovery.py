"""Scientific checks on the simulator, whose planted programs are known."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

import scdeconv as sd

# Trains on 1,500 simulated cells (plus more seeds): minutes in all. CI runs it; the fast loop skips it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def simulated():
    # 1,500 cells x 1,200 genes keeps training near 20 s on 2 CPU cores while every planted set
    # keeps >= 31 genes (the simulator's documented minimum for this panel size).
    adata = sd.datasets.simulate_hematopoiesis(1500, n_genes=1200, seed=0)
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, seed=0, progress=False)
    sd.tl.module_impact(adata, progress=False)
    return adata


def planted(adata) -> set[str]:
    return {s for sets in adata.uns["simulation"]["planted_sets"].values() for s in sets}


def test_each_group_planted_sets_lead_its_group_diff(simulated):
    # Each group has 2 planted sets; both must be among its 3 largest differences vs the rest.
    # Measured on seeds 0, 1 and 2 (1,500 cells): every planted set ranked 1st or 2nd, so a
    # top-3 bound leaves one rank of slack; the paper's median/guided variant ranked most of
    # them below 5th on 2,500 cells, so this bound does separate the two.
    for group, sets in simulated.uns["simulation"]["planted_sets"].items():
        sd.tl.group_diff(simulated, "group", group, progress=False, key_added="diff_check")
        top3 = list(simulated.uns["diff_check"]["set_scores"].index[:3])
        missing = [s for s in sets if s not in top3]
        assert not missing, f"{group}: {missing} not in top 3 {top3}"
        assert (simulated.uns["diff_check"]["set_scores"].loc[list(sets), "max_diff"] > 0).all()


def test_each_planted_set_leads_some_node(simulated):
    # Planted sets come in pairs co-activated in one group, so one node can carry both: we ask
    # that each planted set be among the 2 best-scoring sets of some live node, scored on the
    # expression shift of the node's active cells (the default profile; seed 0: 11 of 12 the
    # single best set of some node, TGF_BETA second). The attribution profile holds it only at the
    # margin: its TGF_BETA ranks 2nd or 4th at best depending on the CPU's rounding (CI's machine
    # and the developers'), so it is asked for the top 5, every other planted set still the top 2.
    impact = simulated.uns["scdeconv_impact"]
    live = impact["impact"].loc[~impact["node_stats"]["dead"].to_numpy()]
    top2 = {s for _, row in live.iterrows() for s in row.nlargest(2).index}
    assert planted(simulated) <= top2, sorted(planted(simulated) - top2)
    attribution = sd.tl.module_impact(simulated, profile="attribution", n_null=0, progress=False, copy=True)
    result = attribution.uns["scdeconv_impact"]
    live = result["impact"].loc[~result["node_stats"]["dead"].to_numpy()]
    best_rank = live.rank(axis=1, ascending=False).min()
    ranks = best_rank[sorted(planted(simulated))]
    assert (ranks <= 5).all() and (ranks <= 2).sum() >= len(ranks) - 1, ranks.to_dict()


def test_planted_sets_rank_above_never_planted(simulated):
    # AUPRC of the best node score per set, planted (12) vs clean negatives (11 sets whose genes
    # are never perturbed). Measured 0.98 on seeds 0-2; chance is 12/23 = 0.52.
    impact = simulated.uns["scdeconv_impact"]["impact"]
    negatives = set(simulated.uns["simulation"]["negative_sets"])
    sets = [s for s in impact.columns if s in planted(simulated) or s in negatives]
    labels = np.array([s in planted(simulated) for s in sets])
    assert average_precision_score(labels, impact[sets].max().to_numpy()) >= 0.9


def test_node_genes_of_the_heme_node_are_planted_heme_genes(simulated):
    # The node that HEME_METABOLISM explains best should be driven by the genes planted in the
    # erythroid group (heme and oxidative phosphorylation, co-activated there): at least 3 times
    # as many of its top 20 genes as chance (their share among the model's genes, 6.7%, so 1.35
    # genes). Measured on seed 0: 6 of 20 (4.4x chance).
    sd.tl.node_genes(simulated, n_top=20, progress=False)
    truth = simulated.uns["simulation"]
    node = simulated.uns["scdeconv_impact"]["impact"]["HALLMARK_HEME_METABOLISM"].idxmax()
    top = set(simulated.uns["scdeconv_node_genes"]["names"][node])
    ery = {g for s in truth["planted_sets"]["Ery"] for g in truth["program_genes"][s]}
    chance = len(ery & set(simulated.uns["scdeconv"]["var_names"])) / len(simulated.uns["scdeconv"]["var_names"])
    assert len(top & ery) >= 3 * 20 * chance, (sorted(top & ery), chance)


def test_null_model_is_calibrated_on_clean_negatives(simulated):
    # The 11 negative sets' genes are never perturbed: their null z-scores should be centred and
    # no wider than standard normal, and almost never be called. On the expression profile they
    # are narrower (seed 0: mean -0.05, sd 0.69): unperturbed genes move less with a node than
    # random genes, some of which are planted, so the null is conservative for them (on the
    # attribution profile, seeds 0-2: mean -0.24..-0.05, sd 0.99-1.02). Bound: at most 5% of live
    # (node, negative set) pairs at FDR < 0.05 (measured 0.2% on the attribution profile).
    result = simulated.uns["scdeconv_impact"]
    assert result["params"]["profile"] == "expression"
    live = ~result["node_stats"]["dead"].to_numpy()
    negatives = list(simulated.uns["simulation"]["negative_sets"])
    z = result["null_z"].loc[live, negatives].to_numpy()
    assert abs(z.mean()) < 0.5 and z.std() < 1.3
    assert (result["fdr"].loc[live, negatives] < 0.05).to_numpy().mean() <= 0.05
    assert (result["set_stats"].loc[negatives, "fdr"] < 0.05).mean() <= 0.1  # at most 1 of 11 sets


def test_null_model_power_on_planted_sets(simulated):
    # Planted sets found on some live node at FDR < 0.05. Issue 4 targets power >= 0.8 (10 of 12).
    # Under the default null="coexpression" a planted programme is a co-expression module, so its
    # sets cannot stand out from their own module mates: the set is found when it is called or is
    # part of a module called on the node (impact_df's "module"). This fixture's model (seed 0):
    # 8 of 12 called themselves, 12 of 12 with their modules. The expression null (genes
    # exchangeable) calls the sets themselves: 12 of 12 here.
    table = sd.get.impact_df(simulated)
    found = table[(table["fdr"] < 0.05) | (table["module"] != "")]
    assert np.mean([s in set(found["gene_set"]) for s in planted(simulated)]) >= 0.8
    exchangeable = sd.tl.module_impact(simulated, null="expression", copy=True, activity_key=None, progress=False)
    fdr = exchangeable.uns["scdeconv_impact"]["fdr"]
    assert np.mean([fdr[s].min() < 0.05 for s in planted(simulated)]) >= 0.8


def test_cell_activity_separates_each_group(simulated):
    # Per-cell activity of a planted set should tell its group from the rest (AUROC measured
    # 0.96-1.00 on seeds 0-1), and a clean negative set should not (measured 0.44-0.58).
    from sklearn.metrics import roc_auc_score

    act = sd.get.activity(simulated)
    groups = simulated.obs["group"].astype(str).to_numpy()
    negatives = list(simulated.uns["simulation"]["negative_sets"])
    for group, sets in simulated.uns["simulation"]["planted_sets"].items():
        for s in sets:
            assert roc_auc_score(groups == group, act[:, s].X.ravel()) >= 0.9, (group, s)
        for s in negatives:
            assert 0.3 < roc_auc_score(groups == group, act[:, s].X.ravel()) < 0.7, (group, s)


def test_group_diff_tests_call_planted_sets_with_the_right_sign(simulated):
    # Each group vs the rest. set_tests (Mann-Whitney on per-cell activity and a competitive test
    # against matched random sets, both must reject): its planted sets significant (FDR < 0.05)
    # with a large positive effect (rank-biserial; measured 0.92-1.00 on seeds 0-1). Clean
    # negative sets shift a little, since activity is relative within a cell (|effect| <= 0.22 on
    # seed 1, hence the 0.4 bound), and Mann-Whitney alone called 16 / 8 / 16 of the 66 (group,
    # negative set) pairs on seeds 0-2; both tests together called none. Bound: 5% of the 66
    # pairs (the level), i.e. at most 3.
    # node_set_tests (Welch per node and set and a competitive test against matched random sets,
    # both must reject; BH over all live pairs): a planted set is found when some live node calls
    # it with a positive effect. Measured on seeds 0-2 (benchmarks/calibration.py): all 12 planted
    # sets on every seed; never-perturbed sets called in 0.0% of (live node, negative set) pairs in
    # every group (Welch alone: up to 14-17% per group). Bounds: power >= 10/12 (the 0.8)
    # and at most 5% of negative pairs per group (the level; one node in 20 of slack).
    negatives = list(simulated.uns["simulation"]["negative_sets"])
    live = ~simulated.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    found, negatives_called = [], 0
    for group, sets in simulated.uns["simulation"]["planted_sets"].items():
        sd.tl.group_diff(simulated, "group", group, progress=False, key_added="tests_check")
        tests = simulated.uns["tests_check"]["set_tests"]
        assert (tests.loc[list(sets), "fdr"] < 0.05).all() and (tests.loc[list(sets), "effect"] > 0.8).all(), group
        assert (tests.loc[negatives, "effect"].abs() < 0.4).all(), tests.loc[negatives, "effect"].abs().max()
        negatives_called += int((tests.loc[negatives, "fdr"] < 0.05).sum())
        node_tests = simulated.uns["tests_check"]["node_set_tests"]
        fdr, effect = node_tests["fdr"].loc[live], node_tests["effect"].loc[live]
        found += [bool(((fdr[s] < 0.05) & (effect[s] > 0)).any()) for s in sets]
        assert (fdr[negatives] < 0.05).to_numpy().mean() <= 0.05, group
    assert sum(found) >= 10, found
    assert negatives_called <= 3, negatives_called


def test_stability_across_seeds(simulated):
    # Two more seeds; nodes matched by their gene-set impact profiles. Nodes are far from
    # reproducible one by one (matched correlations around 0.4), but the nodes carrying planted
    # programs match better than the other live nodes (measured medians 0.48 vs 0.37), and
    # planted sets are found again much more often than clean negatives (0.81 vs 0.0).
    sd.tl.stability(simulated, n_seeds=3, progress=False)
    result = simulated.uns["scdeconv_stability"]
    impact = simulated.uns["scdeconv_impact"]
    live = impact["impact"].loc[~impact["node_stats"]["dead"].to_numpy()]
    carriers = set(live[sorted(planted(simulated))].idxmax())
    others = [n for n in live.index if n not in carriers]
    stability = result["nodes"]["stability"]
    assert stability[sorted(carriers)].median() > stability[others].median()
    found = result["gene_sets"]["fraction_found"]
    negatives = list(simulated.uns["simulation"]["negative_sets"])
    assert found[sorted(planted(simulated))].mean() >= 0.6 and found[negatives].mean() <= 0.1
    assert result["consensus_impact"].shape == impact["impact"].shape


def test_prerank_gsea_agrees_with_the_enrichment_score(simulated):
    # Preranked GSEA of each node's gene ranking against the Stouffer enrichment score, over live
    # (node, set) pairs: Spearman 0.92 measured (200 permutations); both must rank planted sets
    # high at the node where the impact is largest (NES measured 1.55-2.21).
    from scipy.stats import spearmanr

    sd.tl.node_gsea(simulated, n_perm=100, progress=False)
    gsea = simulated.uns["scdeconv_gsea"]
    impact = simulated.uns["scdeconv_impact"]
    live = ~impact["node_stats"]["dead"].to_numpy()
    x, y = impact["impact"].loc[live].to_numpy().ravel(), gsea["nes"].loc[live].to_numpy().ravel()
    finite = np.isfinite(y)
    assert spearmanr(x[finite], y[finite]).statistic >= 0.7
    best = impact["impact"].loc[live].idxmax()
    assert all(gsea["nes"].loc[best[s], s] > 1 for s in planted(simulated))


def _best_component_precision(rankings: list[list[str]], programs: dict, n_top: int = 20) -> float:
    """Mean over programs of the largest share of the program's genes among some ranking's top n."""
    return float(np.mean([max(len(set(r[:n_top]) & set(g)) / n_top for r in rankings) for g in programs.values()]))


def test_node_genes_discover_programs_outside_the_gene_sets_better_than_pca():
    # Three planted blocks of 25 genes outside Hallmark (ProgA/B/C). node_genes ranks a node's
    # genes by their expression shift in its active cells; the best live node's top 20 should hold
    # more of each block than the best principal component's top 20 |loadings| (20 components on
    # the same log-normalised genes; the recovery benchmark's peer). Measured on seeds 0-4 (1,000
    # cells): 0.80 / 0.75 / 0.80 / 0.63 / 0.77 vs PCA 0.50 / 0.72 / 0.62 / 0.65 / 0.58 (ranking by
    # attribution contrast: 0.35-0.52), so seed 0 passes with a 0.3 margin; the 0.6 floor is 12
    # times chance (25 of ~460 genes).
    import scanpy as sc
    from sklearn.decomposition import PCA

    adata = sd.datasets.simulate_hematopoiesis(1000, n_genes=800, seed=0)
    programs = adata.uns["simulation"]["novel_programs"]
    sd.pp.select_genes(adata, mode="hvg")
    sd.tl.train_autoencoder(adata, seed=0, progress=False)
    sd.tl.node_genes(adata, n_top=20, progress=False)
    names = adata.uns["scdeconv_node_genes"]["names"]
    live = np.asarray(adata.obsm["X_scdeconv"]).std(axis=0) > 1e-3
    ours = _best_component_precision([names[c].tolist() for c in names.columns[live]], programs)

    data = adata[:, list(adata.uns["scdeconv"]["var_names"])].copy()
    sc.pp.normalize_total(data, target_sum=1e4)
    sc.pp.log1p(data)
    pca = PCA(n_components=20, random_state=0).fit(data.X.toarray())
    genes = data.var_names.to_numpy()
    pcs = [list(genes[np.argsort(-np.abs(c))]) for c in pca.components_]
    theirs = _best_component_precision(pcs, programs)
    assert ours >= 0.6 and ours > theirs, (ours, theirs)
