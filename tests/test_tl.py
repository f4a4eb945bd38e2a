import numpy as np
import pandas as pd
import pytest
import torch
from anndata import read_h5ad

import scdeconv as sd
from scdeconv._model_store import load_model
from scdeconv._module.saliency import jacobian

FAST = dict(n_latent=8, n_hidden=(16,), max_epochs=4, batch_size=32, progress=False)


def test_train_writes_documented_slots(counts_adata):
    sd.tl.train_autoencoder(counts_adata, **FAST)
    assert counts_adata.obsm["X_scdeconv"].shape == (counts_adata.n_obs, 8)
    model = counts_adata.uns["scdeconv"]
    assert list(model["history"].columns) == ["epoch", "train_loss", "val_loss"]
    assert len(model["history"]) == model["params"]["n_epochs"] <= 4
    assert model["params"]["ortho_penalty"] == 0.05 and model["params"]["likelihood"] == "poisson"
    assert len(model["params"]["validation_cells"]) == int(np.ceil(0.05 * counts_adata.n_obs))
    np.testing.assert_array_equal(model["var_names"], counts_adata.var_names)


def test_copy_leaves_input_untouched(counts_adata):
    before = counts_adata.copy()
    trained = sd.tl.train_autoencoder(counts_adata, copy=True, **FAST)
    assert "X_scdeconv" in trained.obsm and "scdeconv" in trained.uns
    assert not counts_adata.obsm and not counts_adata.uns
    assert (counts_adata.X != before.X).nnz == 0
    pd.testing.assert_frame_equal(counts_adata.obs, before.obs)
    impact = sd.tl.module_impact(trained, copy=True, progress=False)
    assert "scdeconv_impact" in impact.uns and "scdeconv_impact" not in trained.uns


@pytest.mark.slow  # the fast loop has tests/test_reproducibility.py::test_same_seed_is_bit_identical_within_a_process
def test_same_seed_same_result_other_seed_differs(counts_factory):
    runs = [counts_factory() for _ in range(3)]
    for adata, seed in zip(runs, (0, 0, 1), strict=True):
        sd.tl.train_autoencoder(adata, seed=seed, **FAST)
        sd.tl.module_impact(adata, progress=False)
    np.testing.assert_array_equal(runs[0].obsm["X_scdeconv"], runs[1].obsm["X_scdeconv"])
    pd.testing.assert_frame_equal(runs[0].uns["scdeconv_impact"]["impact"], runs[1].uns["scdeconv_impact"]["impact"])
    assert not np.allclose(runs[0].obsm["X_scdeconv"], runs[2].obsm["X_scdeconv"])


@pytest.mark.parametrize("likelihood", ["nb", "mse"])
def test_other_likelihoods_train(counts_adata, likelihood):
    sd.tl.train_autoencoder(counts_adata, likelihood=likelihood, **FAST)
    assert np.isfinite(counts_adata.uns["scdeconv"]["history"]["val_loss"]).all()
    assert load_model(counts_adata)[0].likelihood == likelihood


@pytest.mark.slow  # fast loop: tests/test_reproducibility.py's two h5ad round-trip tests
def test_h5ad_round_trip_keeps_model_and_scores(trained_adata, tmp_path):
    path = tmp_path / "trained.h5ad"
    trained_adata.write_h5ad(path)
    back = read_h5ad(path)
    for key in ("impact", "node_stats"):
        pd.testing.assert_frame_equal(back.uns["scdeconv_impact"][key], trained_adata.uns["scdeconv_impact"][key])
    # The reloaded model recomputes the same scores and the same representation.
    sd.tl.module_impact(back, progress=False, key_added="again")
    pd.testing.assert_frame_equal(back.uns["again"]["impact"], trained_adata.uns["scdeconv_impact"]["impact"])
    module, _ = load_model(back)
    x = module.prepare_input(torch.from_numpy(back.X[:5].toarray()))
    np.testing.assert_allclose(
        module.encode(x).detach().numpy(), trained_adata.obsm["X_scdeconv"][:5], rtol=1e-5, atol=1e-7
    )


def test_median_score_matches_hand_computation(trained_adata):
    """The paper's impact: per-cell median |guided saliency| over the set's genes, mean over cells."""
    adata = sd.tl.module_impact(trained_adata, method="guided", score="median", copy=True, progress=False)
    result = adata.uns["scdeconv_impact"]
    module, genes = load_model(adata)
    x = module.prepare_input(torch.from_numpy(adata.X.toarray()))
    saliency = jacobian(module, x, guided=True).abs().numpy()  # cells x nodes x genes, fine for a toy
    for name, members in result["gene_sets"].items():
        cols = pd.Index(genes).get_indexer(members)
        expected = np.median(saliency[:, :, cols], axis=2).mean(axis=0)
        np.testing.assert_allclose(result["impact"][name].to_numpy(), expected, rtol=1e-5)


def test_node_cells_all_averages_over_every_cell(trained_adata):
    # node_cells="all" (0.1's profile): each gene's mean |attribution| over all cells, z-scored in bins.
    adata = sd.tl.module_impact(
        trained_adata, profile="attribution", node_cells="all", n_null=0, copy=True, progress=False
    )
    result = adata.uns["scdeconv_impact"]
    module, genes = load_model(adata)
    x = module.prepare_input(torch.from_numpy(adata.X.toarray()))
    profile = (jacobian(module, x, guided=False) * x.unsqueeze(1)).abs().mean(dim=0).numpy()
    z = sd.scoring.binned_zscores(profile, sd.scoring.expression_bins(x.mean(dim=0).numpy(), 10))
    live = ~result["node_stats"]["dead"].to_numpy()
    for name, members in result["gene_sets"].items():
        cols = pd.Index(genes).get_indexer(members)
        expected = z[:, cols].sum(1) / np.sqrt(len(cols))
        np.testing.assert_allclose(result["impact"][name][live], expected[live], rtol=1e-4, atol=1e-6)
    assert result["params"]["node_cells"] == "all"
    with pytest.raises(ValueError, match="node_cells must be one of"):
        sd.tl.module_impact(trained_adata, node_cells="some", copy=True, progress=False)


def test_node_genes_rank_by_expression_shift_in_active_cells(trained_adata):
    # rank_by="expression" (default): each gene's mean encoder input over the node's active cells
    # (top quarter by activation) minus its mean over all cells, divided by its SD over all cells.
    adata = sd.tl.node_genes(trained_adata, n_top=4, copy=True, progress=False)
    module, genes = load_model(adata)
    x = module.prepare_input(torch.from_numpy(adata.X.toarray())).numpy().astype(np.float64)
    latent = np.asarray(adata.obsm["X_scdeconv"])
    active = latent >= np.quantile(latent, 0.75, axis=0)
    shift = np.stack([(x[active[:, j]].mean(0) - x.mean(0)) / x.std(0) for j in range(latent.shape[1])])
    result = adata.uns["scdeconv_node_genes"]
    assert result["params"]["rank_by"] == "expression"
    live = result["node_status"]["status"].to_numpy() == "live"
    assert live.sum() >= 4  # the comparison below checks something
    for j, node in enumerate(result["names"].columns):
        expected = np.sort(shift[j])[::-1][:4]
        best = np.asarray(genes)[np.argsort(-shift[j], kind="stable")[:4]]
        listed = live[j] & (expected > 0)  # only rising genes of live nodes are listed
        np.testing.assert_allclose(result["scores"][node][listed], expected[listed], rtol=1e-5)
        np.testing.assert_array_equal(result["names"][node][listed], best[listed])
        assert (result["names"][node][~listed] == "").all() and result["scores"][node][~listed].isna().all()
    with pytest.raises(ValueError, match="rank_by must be one of"):
        sd.tl.node_genes(trained_adata, rank_by="loading", copy=True, progress=False)


def test_node_genes_never_lists_genes_of_dead_or_rare_nodes_or_ties_at_zero(trained_adata):
    # node_0 fires in 2 cells (rare: fewer than MIN_ACTIVE_CELLS), node_1 is constant (dead): its
    # active cells are all cells, every shift is 0, and a stable sort would list the first genes.
    adata = trained_adata.copy()
    latent = np.asarray(adata.obsm["X_scdeconv"]).copy()
    latent[:, 0] = 0.0
    latent[:2, 0] = 1.0
    latent[:, 1] = 0.5
    adata.obsm["X_scdeconv"] = latent
    sd.tl.node_genes(adata, n_top=5, progress=False)
    result = adata.uns["scdeconv_node_genes"]
    assert list(result["node_status"].loc[["node_0", "node_1"], "status"]) == ["rare", "dead"]
    assert (result["names"][["node_0", "node_1"]] == "").all().all()
    listed = result["names"].to_numpy() != ""
    assert listed.any() and (result["scores"].to_numpy()[listed] > 0).all()
    table = sd.get.node_genes_df(adata)
    assert not {"node_0", "node_1"} & set(table["node"].astype(str)) and (table["score"] > 0).all()
    with pytest.raises(ValueError, match="No node lists any gene"):
        sd.pl.node_genes(adata, nodes=["node_0", "node_1"], show=False)


def test_enrichment_score_is_binned_stouffer(trained_adata):
    # profile="attribution": each gene's mean |gradient x input| over the node's active cells.
    result = sd.tl.module_impact(trained_adata, profile="attribution", n_null=0, copy=True, progress=False).uns[
        "scdeconv_impact"
    ]
    module, genes = load_model(trained_adata)
    x = module.prepare_input(torch.from_numpy(trained_adata.X.toarray()))
    attributions = (jacobian(module, x, guided=False) * x.unsqueeze(1)).abs().numpy()  # cells x nodes x genes
    # Each node's profile: mean over its active cells, those at or above its activation's 75th percentile.
    latent = module.encode(x).detach().numpy()
    active = latent >= np.quantile(latent, 0.75, axis=0)
    profile = np.stack([attributions[active[:, j], j].mean(axis=0) for j in range(latent.shape[1])])
    np.testing.assert_allclose(result["gene_mean"], x.mean(dim=0).numpy(), rtol=1e-5)
    bins = sd.scoring.expression_bins(x.mean(dim=0).numpy(), 10)
    for name, members in result["gene_sets"].items():
        cols = pd.Index(genes).get_indexer(members)
        z = np.zeros_like(profile)
        for b in np.unique(bins):
            block = profile[:, bins == b]
            z[:, bins == b] = (block - block.mean(1, keepdims=True)) / block.std(1, keepdims=True)
        live = ~result["node_stats"]["dead"].to_numpy()
        expected = z[:, cols].sum(1) / np.sqrt(len(cols))
        np.testing.assert_allclose(result["impact"][name][live], expected[live], rtol=1e-4, atol=1e-6)
        assert (result["impact"][name][~live] == 0).all()  # dead nodes score 0, not amplified noise


def test_expression_profile_is_binned_stouffer_of_the_active_cells_shift(trained_adata):
    # profile="expression": each gene's mean encoder input over the node's active cells (top
    # quarter by activation) minus its mean over all cells, in SDs over all cells; z-scored within
    # expression bins and Stouffer-summed per set, signed (negative: lower in the active cells).
    result = trained_adata.uns["scdeconv_impact"]  # the default profile
    adata = trained_adata
    module, genes = load_model(adata)
    x = module.prepare_input(torch.from_numpy(adata.X.toarray())).numpy().astype(np.float64)
    latent = np.asarray(adata.obsm["X_scdeconv"])
    active = latent >= np.quantile(latent, 0.75, axis=0)
    sd_gene = np.where(x.std(0) > 0, x.std(0), np.inf)
    shift = np.stack([(x[active[:, j]].mean(0) - x.mean(0)) / sd_gene for j in range(latent.shape[1])])
    bins = sd.scoring.expression_bins(x.mean(0), 10)
    z = np.zeros_like(shift)
    for b in np.unique(bins):
        block = shift[:, bins == b]
        z[:, bins == b] = (block - block.mean(1, keepdims=True)) / block.std(1, keepdims=True)
    live = ~result["node_stats"]["dead"].to_numpy()
    assert result["params"]["profile"] == "expression" and live.any()
    for name, members in result["gene_sets"].items():
        cols = pd.Index(genes).get_indexer(members)
        expected = z[:, cols].sum(1) / np.sqrt(len(cols))
        np.testing.assert_allclose(result["impact"][name][live], expected[live], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(result["direction"][name][live], np.where(expected[live] >= 0, "up", "down"))
    assert (result["direction"].loc[~live] == "").all().all()
    # Its own null: random expression-matched sets scored on the same shift profile.
    assert np.isfinite(result["null_z"].loc[live].to_numpy()).all()
    # The direction does not depend on the profile scored: the attribution profile reports the same.
    attribution = sd.tl.module_impact(trained_adata, profile="attribution", n_null=0, copy=True, progress=False)
    pd.testing.assert_frame_equal(attribution.uns["scdeconv_impact"]["direction"], result["direction"])
    assert attribution.uns["scdeconv_impact"]["params"]["profile"] == "attribution"


def test_expression_profile_needs_active_cells(trained_adata):
    with pytest.raises(ValueError, match="profile must be one of"):
        sd.tl.module_impact(trained_adata, profile="shift", copy=True, progress=False)
    with pytest.raises(ValueError, match="needs node_cells='active'; pass profile='attribution'"):
        sd.tl.module_impact(trained_adata, node_cells="all", copy=True, progress=False)
    # The paper's per-cell medians have no gene profile: recorded as attribution evidence, no error.
    median = sd.tl.module_impact(trained_adata, score="median", copy=True, progress=False)
    assert median.uns["scdeconv_impact"]["params"]["profile"] == "attribution"


def test_groupby_and_group_diff(trained_adata):
    adata = sd.tl.module_impact(trained_adata, groupby="group", copy=True, progress=False)
    assert set(adata.uns["scdeconv_impact"]["impact_by_group"]) == {"ery", "mono"}
    result = trained_adata.uns["scdeconv_group_diff"]
    assert result["params"]["group1"] == "ery" and result["params"]["group2"] == "rest"
    assert result["params"]["n_cells1"] + result["params"]["n_cells2"] == trained_adata.n_obs
    scaled = result["scaled_diff"].to_numpy()
    assert np.isclose(np.abs(scaled).max(), 1.0)
    table = sd.get.group_diff_df(trained_adata, threshold=0.0)
    assert {"node", "gene_set", "diff", "scaled_diff"} <= set(table.columns)


def test_node_set_fdr_is_over_the_pairs_the_impact_calls(trained_adata):
    # Default pairs="called": BH over the live pairs whose whole-data impact FDR is below 0.05, or
    # whose set the node's strongest called co-expression module is made of (the default null); the others
    # keep their p-values and get no FDR. pairs="all" gives the same p-values, BH over all.
    from scdeconv.scoring import benjamini_hochberg
    from scdeconv.scoring._stats import null_floor

    result = trained_adata.uns["scdeconv_group_diff"]
    assert result["params"]["pairs"] == "called"
    impact = trained_adata.uns["scdeconv_impact"]
    called = (impact["fdr"] < 0.05).to_numpy()
    module_fdr, made_of = impact["module_fdr"], impact["module_sets"]["all_sets"]
    for node_row, node in enumerate(impact["fdr"].index):
        strongest = impact["module_null_z"].loc[node][module_fdr.loc[node] < 0.05]
        for name in filter(None, made_of[strongest.idxmax()].split("; ") if len(strongest) else []):
            called[node_row, impact["fdr"].columns.get_loc(name)] = True
    assert 0 < called.sum() < called.size  # the filter keeps some pairs and drops others here
    tests = result["node_set_tests"]
    fdr, pvalue = tests["fdr"].to_numpy(), tests["pvalue"].to_numpy()
    assert np.isnan(fdr[~called]).all()
    n_null = result["params"]["n_null"]
    # BH over the unfloored p-values (the competitive tail), reported floored, as node_set_tests does.
    from scipy.stats import norm

    tails = np.fmax(tests["pvalue_welch"].to_numpy(), 2 * norm.sf(np.abs(tests["null_z"].to_numpy())))
    expected = null_floor(benjamini_hochberg(np.where(called, tails, np.nan)), n_null)
    np.testing.assert_allclose(fdr[called], expected[called])
    every = sd.tl.group_diff(trained_adata, "group", "ery", pairs="all", copy=True, progress=False)
    every = every.uns["scdeconv_group_diff"]
    assert every["params"]["pairs"] == "all"
    np.testing.assert_array_equal(every["node_set_tests"]["pvalue"].to_numpy(), pvalue)
    live = ~impact["node_stats"]["dead"].to_numpy()
    assert not np.isnan(every["node_set_tests"]["fdr"].to_numpy()[live]).any()
    with pytest.raises(ValueError, match="pairs must be one of 'called', 'all'"):
        sd.tl.group_diff(trained_adata, "group", "ery", pairs="some", copy=True, progress=False)


def test_set_tests_combine_mann_whitney_and_competitive(trained_adata):
    # set_tests: Mann-Whitney of the stored per-cell activities, a competitive test from per-gene
    # mean changes (whose Stouffer sum over a set is exactly the set's mean activity change), and
    # pvalue = the larger of the two, with BH over sets.
    from scipy.stats import mannwhitneyu, norm

    tests = trained_adata.uns["scdeconv_group_diff"]["set_tests"]
    act = sd.get.activity(trained_adata)[:, list(tests.index)]
    ery = (trained_adata.obs["group"] == "ery").to_numpy()
    expected = mannwhitneyu(act.X[ery], act.X[~ery], axis=0, alternative="two-sided").pvalue
    np.testing.assert_allclose(tests["pvalue_mw"], expected, rtol=1e-10)
    np.testing.assert_allclose(tests["mean_activity1"], act.X[ery].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tests["pvalue"], np.fmax(tests["pvalue_mw"], tests["pvalue_competitive"]))
    # BH over the unfloored p-values (the competitive part's normal tail), reported floored at 1 / (1 + n_null).
    floor = 1 / (1 + trained_adata.uns["scdeconv_group_diff"]["params"]["n_null"])
    tails = np.fmax(tests["pvalue_mw"], 2 * norm.sf(np.abs(tests["null_z"]))).to_numpy()
    np.testing.assert_allclose(tests["fdr"], np.maximum(sd.scoring.benjamini_hochberg(tails), floor))
    assert tests["pvalue"].min() >= floor and (tests["pvalue"] == floor).any()  # the floor bites here
    # The null z has the sign of the set's mean activity change wherever the change is clear.
    change = tests["mean_activity1"] - tests["mean_activity2"]
    clear = change.abs() > change.abs().median()
    assert (np.sign(tests["null_z"][clear]) == np.sign(change[clear])).mean() >= 0.9


def test_median_group_diff_is_difference_of_group_impacts(trained_adata):
    adata = sd.tl.module_impact(trained_adata, method="guided", score="median", copy=True, progress=False)
    sd.tl.group_diff(adata, "group", "ery", "mono", progress=False)
    result = adata.uns["scdeconv_group_diff"]
    ery = sd.tl.module_impact(
        adata[adata.obs["group"] == "ery"].copy(), method="guided", score="median", copy=True, progress=False
    )
    pd.testing.assert_frame_equal(
        result["impact_group1"], ery.uns["scdeconv_impact"]["impact"], check_exact=False, rtol=1e-5
    )
    pd.testing.assert_frame_equal(result["diff"], result["impact_group1"] - result["impact_group2"])
    # node_set_tests: Welch's test of the per-cell set medians, as scipy computes it on the cells.
    from conftest import stream
    from scipy.stats import ttest_ind

    from scdeconv._model_store import load_model
    from scdeconv._module.reducers import SetMedians
    from scdeconv.tl._saliency_pass import model_counts

    module, genes = load_model(adata, "scdeconv")
    counts, _ = model_counts(adata, "scdeconv")
    names = list(result["diff"].columns)
    columns = [pd.Index(genes).get_indexer(adata.uns["scdeconv_impact"]["gene_sets"][n]) for n in names]
    per_cell = {}
    for g in ("ery", "mono"):
        rows = np.flatnonzero(adata.obs["group"] == g)
        medians = SetMedians(len(rows), module.n_latent, columns)  # each cell its own group
        stream(module, counts[rows], [medians], labels=np.arange(len(rows)), method="guided")
        per_cell[g] = medians.sums
    expected = ttest_ind(per_cell["ery"], per_cell["mono"], axis=0, equal_var=False)
    tests = result["node_set_tests"]
    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    np.testing.assert_allclose(tests["statistic"].to_numpy()[live], expected.statistic[live], rtol=1e-3, atol=1e-4)
    fdr, pvalue = tests["fdr"].to_numpy()[live], tests["pvalue"].to_numpy()[live]
    assert fdr.max() <= 1 and (fdr >= pvalue).all()


class TestErrors:
    def test_non_count_input_names_layer(self, counts_adata):
        counts_adata.X = counts_adata.X.log1p()
        with pytest.raises(ValueError, match=r"non-integer.*layer="):
            sd.tl.train_autoencoder(counts_adata, **FAST)

    def test_negative_values(self, counts_adata):
        counts_adata.X = counts_adata.X.toarray() - 1
        with pytest.raises(ValueError, match="negative values"):
            sd.tl.train_autoencoder(counts_adata, **FAST)

    def test_nan(self, counts_adata):
        counts_adata.X = counts_adata.X.toarray()
        counts_adata.X[3, 4] = np.nan
        with pytest.raises(ValueError, match="NaN or infinite"):
            sd.tl.train_autoencoder(counts_adata, **FAST)

    def test_missing_layer(self, counts_adata):
        with pytest.raises(KeyError, match="Layer 'counts' not found"):
            sd.tl.train_autoencoder(counts_adata, layer="counts", **FAST)

    def test_impact_before_training(self, counts_adata):
        with pytest.raises(KeyError, match=r"Run `sd.tl.train_autoencoder\(adata\)` first"):
            sd.tl.module_impact(counts_adata)

    def test_group_diff_before_impact(self, counts_adata):
        sd.tl.train_autoencoder(counts_adata, **FAST)
        with pytest.raises(KeyError, match=r"Run `sd.tl.module_impact\(adata\)` first"):
            sd.tl.group_diff(counts_adata, "group", "ery")

    def test_unknown_and_tiny_groups(self, trained_adata):
        with pytest.raises(ValueError, match=r"Group\(s\) \['ERY'\] not found.*'ery', 'mono'"):
            sd.tl.group_diff(trained_adata, "group", "ERY", copy=True)
        with pytest.raises(KeyError, match="groupby 'celltype' is not a column"):
            sd.tl.group_diff(trained_adata, "celltype", "ery", copy=True)
        adata = trained_adata.copy()
        adata.obs["one"] = ["a"] + ["b"] * (adata.n_obs - 1)
        with pytest.raises(ValueError, match="group1 has 1 cells"):
            sd.tl.group_diff(adata, "one", "a")

    def test_no_gene_set_overlap(self, trained_adata):
        with pytest.raises(ValueError, match="No gene set has at least 3"):
            sd.tl.module_impact(trained_adata, gene_sets={"S": ["Foo1", "Foo2", "Foo3"]}, copy=True)

    def test_model_genes_missing_after_subsetting(self, trained_adata):
        subset = trained_adata[:, 5:].copy()
        with pytest.raises(ValueError, match="subset or re-indexed after training"):
            sd.tl.module_impact(subset, progress=False)

    def test_batch_larger_than_training_set(self, counts_adata):
        with pytest.raises(ValueError, match="batch_size=500 exceeds"):
            sd.tl.train_autoencoder(counts_adata, batch_size=500, progress=False)

    def test_cells_and_genes_without_counts_are_left_out(self, counts_adata, caplog):
        # Everyday after subsetting a 10x matrix: the run goes on without them, says so, records it.
        counts_adata.X = counts_adata.X.toarray()
        counts_adata.X[7] = 0
        counts_adata.X[:, 5] = 0
        empty_gene = counts_adata.var_names[5]
        with caplog.at_level("INFO", logger="scdeconv"):
            sd.tl.train_autoencoder(counts_adata, **FAST)
        params = counts_adata.uns["scdeconv"]["params"]
        assert params["n_cells_without_counts"] == 1 and params["n_genes_without_counts"] == 1
        assert empty_gene not in set(counts_adata.uns["scdeconv"]["var_names"])
        assert len(counts_adata.uns["scdeconv"]["var_names"]) == counts_adata.n_vars - 1
        assert "cell7" not in set(params["validation_cells"])
        assert "Left out of training 1 of 120 cells and 1 genes without counts" in caplog.text
        sd.tl.module_impact(counts_adata, n_null=50, progress=False)
        activity = counts_adata.obsm["scdeconv_activity"]
        assert activity.loc["cell7"].isna().all() and activity.drop(index="cell7").notna().all().all()
        assert counts_adata.uns["scdeconv_impact"]["params"]["n_cells"] == 119

    def test_duplicated_symbols(self, counts_adata):
        counts_adata.var_names = ["Gata1"] * 2 + list(counts_adata.var_names[2:])
        with pytest.raises(ValueError, match="var_names_make_unique"):
            sd.tl.train_autoencoder(counts_adata, **FAST)

    def test_bad_score_and_method(self, trained_adata):
        with pytest.raises(ValueError, match="score must be one of"):
            sd.tl.module_impact(trained_adata, score="mean", copy=True)
        with pytest.raises(ValueError, match="method must be one of"):
            sd.tl.module_impact(trained_adata, method="lrp", copy=True, progress=False)


def test_reconstruction_quality_on_held_out_cells(trained_adata):
    import matplotlib.pyplot as plt

    quality = trained_adata.uns["scdeconv"]["reconstruction"]
    held_out = trained_adata.uns["scdeconv"]["params"]["validation_cells"]
    assert list(quality["cells"].index) == list(held_out)
    assert list(quality["genes"].index) == list(trained_adata.uns["scdeconv"]["var_names"])
    # The values themselves are recomputed by hand in tests/test_values.py.
    ax = sd.pl.reconstruction(trained_adata, show=False)
    assert len(ax.patches) == 3 and "median" in ax.get_legend().get_texts()[0].get_text()
    plt.close(ax.figure)


def test_reconstruction_matches_numpy(counts_adata):
    from scdeconv._module.inference import reconstruction_quality

    sd.tl.train_autoencoder(counts_adata, **FAST)
    module, _ = load_model(counts_adata)
    rows = np.arange(0, counts_adata.n_obs, 7)
    quality = reconstruction_quality(module, counts_adata.X, rows, batch_size=5)
    x = torch.from_numpy(counts_adata.X[rows].toarray()).double()
    m = module.double()
    mu = m.expected_counts(x).detach()
    xn, yn = m.prepare_input(x).numpy(), m.prepare_input(mu).numpy()
    g = 3
    np.testing.assert_allclose(quality["gene_correlation"][g], np.corrcoef(xn[:, g], yn[:, g])[0, 1], rtol=1e-6)
    np.testing.assert_allclose(quality["cell_correlation"][2], np.corrcoef(xn[2], yn[2])[0, 1], rtol=1e-6)
    share = x.numpy().sum(0) / x.numpy().sum()
    base = x.numpy().sum(1, keepdims=True) * share
    obs, mu = x.numpy(), mu.numpy()

    def dev(e):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2 * (np.where(obs > 0, obs * np.log(obs / e), 0) - (obs - e))

    expected = 1 - dev(mu)[:, g].sum() / dev(base)[:, g].sum()
    np.testing.assert_allclose(quality["gene_deviance_explained"][g], expected, rtol=1e-6)


def test_stability_rescores_retrained_models_as_the_reference_was_scored():
    # The retrained models' impact must use the reference's profile and null model, not today's
    # defaults; results written before those were choices scored attributions on expression bins.
    from scdeconv.tl._stability import _impact_arguments

    params = {"method": "grad_x_input", "score": "enrichment", "species": "mouse", "min_size": 3, "n_bins": 10,
              "n_null": 100, "node_cells": "active", "seed": 0, "profile": "attribution", "null": "coexpression",
              "n_modules": 7}  # fmt: skip
    arguments = _impact_arguments({"params": params, "gene_sets": {"S": ["a", "b", "c"]}})
    assert (arguments["profile"], arguments["null"], arguments["n_modules"]) == ("attribution", "coexpression", 7)
    older = {k: v for k, v in params.items() if k not in ("profile", "null", "n_modules")}
    arguments = _impact_arguments({"params": older, "gene_sets": {}})
    assert (arguments["profile"], arguments["null"]) == ("attribution", "expression") and "n_modules" not in arguments
