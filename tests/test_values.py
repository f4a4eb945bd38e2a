"""Fast checks of the values the statistics produce, recomputed by hand through the public API only.

Each test here pins one number a plausible one-line bug would change (issue 14, item 8): the
orthogonality penalty's effect on the weights, the sign of group comparisons, the Sidak
correction of ``set_stats``, the null model's standardisation, the dead-node rule, one-to-one
orthologs, the reconstruction report. References are written from the documented definitions
with numpy, torch autograd and the public helpers of ``sd.scoring`` (never private modules, so the
internals can change underneath).
"""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_counts
from scipy import sparse
from scipy.stats import norm

import scdeconv as sd

TINY = dict(n_latent=8, n_hidden=(16,), batch_size=32, progress=False)


# --- references ----------------------------------------------------------------------------------
def _dense(adata) -> np.ndarray:
    return np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=np.float64)


def _grad_x_input(adata) -> tuple[np.ndarray, np.ndarray]:
    """|gradient x input| of every node w.r.t. the encoder input (cells x nodes x genes, float64), by autograd.

    Also returns the encoder input (cells x genes). A tiny model, so the full array is fine.
    """
    module, genes = sd.get.model(adata)
    module = module.double()
    counts = torch.from_numpy(_dense(adata[:, list(genes)]))
    x = module.prepare_input(counts).requires_grad_(True)
    latent = module.encode(x)
    grads = [torch.autograd.grad(latent[:, j].sum(), x, retain_graph=True)[0] for j in range(latent.shape[1])]
    attribution = (torch.stack(grads, dim=1) * x.unsqueeze(1)).abs()
    return attribution.detach().numpy(), x.detach().numpy()


def _active(adata) -> np.ndarray:
    """Cells x nodes: the documented active cells, at or above each node's 75th percentile of activation."""
    latent = np.asarray(adata.obsm["X_scdeconv"], dtype=np.float64)
    return latent >= np.quantile(latent, 0.75, axis=0, keepdims=True)


def _profile(attribution: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Nodes x genes: each node's mean |attribution| over its weighted cells (0 for a node with none)."""
    total = np.einsum("cj,cjg->jg", weights, attribution)
    n = np.broadcast_to(weights.sum(axis=0)[:, None], total.shape)
    return np.divide(total, n, out=np.zeros_like(total), where=n > 0)


def _set_columns(adata, key: str = "scdeconv_impact") -> list[np.ndarray]:
    genes = pd.Index(np.asarray(adata.uns["scdeconv"]["var_names"]).astype(str))
    return [genes.get_indexer(np.asarray(m).astype(str)) for m in adata.uns[key]["gene_sets"].values()]


def _frobenius_non_orthogonality(adata) -> float:
    """||I - W W^T||_F^2 of the weights into the representation layer of the stored model."""
    w = sd.get.model(adata)[0].latent_weight.detach().double()
    return float(((torch.eye(w.shape[0], dtype=w.dtype) - w @ w.T) ** 2).sum())


# --- training: the orthogonality penalty reaches the weights ---------------------------------------
def test_orthogonality_penalty_makes_the_latent_weights_more_orthogonal():
    # Same data, seed and initial weights; only ortho_penalty differs. Measured on make_counts(120)
    # with seeds 0-2: after 5 epochs ||I - W W^T||^2 is 5.25 / 7.91 / 8.05 unpenalised and
    # 3.46 / 5.34 / 5.37 with 0.05 (ratio 0.66-0.68; 1.0 gives about the same, Adam's steps are
    # normalised), and the penalised term falls every epoch (4.82 after 1 epoch, from 4.91 at
    # initialisation) while the unpenalised one drifts up. Bounds: ratio < 0.8, and the penalised
    # run at 5 epochs at least 10% below itself at 1 epoch (measured 28%).
    values = {}
    for penalty, epochs in ((0.0, 5), (0.05, 5), (0.05, 1)):
        adata = make_counts(n_cells=120, seed=0)
        sd.tl.train_autoencoder(adata, ortho_penalty=penalty, max_epochs=epochs, seed=0, **TINY)
        assert adata.uns["scdeconv"]["params"]["ortho_penalty"] == penalty
        values[penalty, epochs] = _frobenius_non_orthogonality(adata)
    assert values[0.05, 5] < 0.8 * values[0.0, 5], values
    assert values[0.05, 5] < 0.9 * values[0.05, 1], values


# --- module_impact: null model, Sidak, dead nodes ---------------------------------------------------
def test_null_z_is_the_impact_standardised_by_the_matched_null(trained_adata):
    # The whole enrichment pipeline by hand: grad x input by autograd, each node's profile over
    # its active cells, z-scores within the stored expression bins, Stouffer sums; then the
    # documented null (sd.scoring.matched_null with the recorded n_null and seed over the live
    # nodes) and null_z = (impact - null mean) / null sd, pvalue its normal tail. On the
    # attribution profile (the expression profile's impact is checked by hand in test_tl.py; the
    # null model is the same function of either profile's z-scores). The expression-bin null; the
    # co-expression null's random sets are checked against a hand enumeration in
    # test_coexpression_null.py.
    attributed = sd.tl.module_impact(trained_adata, profile="attribution", null="expression", copy=True, progress=False)
    result = attributed.uns["scdeconv_impact"]
    params = result["params"]
    attribution, x = _grad_x_input(trained_adata)
    np.testing.assert_allclose(result["gene_mean"], x.mean(axis=0), rtol=1e-5)
    bins = sd.scoring.expression_bins(np.asarray(result["gene_mean"]), params["n_bins"])
    z = sd.scoring.binned_zscores(_profile(attribution, _active(trained_adata).astype(float)), bins)
    columns = _set_columns(trained_adata)
    dead = result["node_stats"]["dead"].to_numpy()
    impact = sd.scoring.set_enrichment(z, columns)
    np.testing.assert_allclose(result["impact"].to_numpy()[~dead], impact[~dead], rtol=1e-4, atol=1e-5)
    null = sd.scoring.matched_null(z, bins, columns, n_null=params["n_null"], live=~dead, seed=params["seed"])
    expected = (impact - null.mean) / null.sd
    stored = result["null_z"].to_numpy()
    assert np.isnan(stored[dead]).all() and np.isfinite(stored[~dead]).all()
    np.testing.assert_allclose(stored[~dead], expected[~dead], rtol=1e-3, atol=1e-4)
    floor = 1 / (1 + params["n_null"])  # the smallest p-value n_null random sets resolve
    np.testing.assert_allclose(
        result["pvalue"].to_numpy()[~dead], np.maximum(norm.sf(stored[~dead]), floor), rtol=1e-10
    )
    # The null's spread is not 1 here (the model's genes co-vary), so a wrong divisor shows.
    assert np.abs(null.sd[~dead] - 1).max() > 0.05
    fdr = result["fdr"].to_numpy()
    bh = sd.scoring.benjamini_hochberg(norm.sf(stored[~dead]))  # over the normal tails, then floored
    np.testing.assert_allclose(fdr[~dead], np.maximum(bh, floor))


def test_set_stats_pvalue_is_sidak_over_live_nodes(trained_adata):
    # "Some node encodes this set": the best live node's normal tail p, Sidak-corrected for the
    # number of live nodes, 1 - (1 - p)^n_live; BH over sets.
    result = trained_adata.uns["scdeconv_impact"]
    live = ~result["node_stats"]["dead"].to_numpy()
    n_live = int(live.sum())
    assert n_live > 1  # (the fixture also has dead nodes, measured 2 of 8: counting all nodes would show)
    best_z = result["null_z"].loc[live].max(axis=0)
    stats = result["set_stats"].loc[best_z.index]
    p_best = norm.sf(best_z.to_numpy())
    expected = np.maximum(1 - (1 - p_best) ** n_live, 1 / (1 + result["params"]["n_null"]))  # floored
    np.testing.assert_allclose(stats["pvalue"].to_numpy(), expected, rtol=1e-9)
    assert (stats["pvalue"].to_numpy() > 2 * p_best).any()  # the correction does something here
    np.testing.assert_array_equal(stats["best_node"], result["null_z"].loc[live].idxmax(axis=0))
    np.testing.assert_allclose(stats["null_z"], best_z)
    floor = 1 / (1 + result["params"]["n_null"])
    sidak = 1 - (1 - p_best) ** n_live
    np.testing.assert_allclose(stats["fdr"], np.maximum(sd.scoring.benjamini_hochberg(sidak), floor))
    table = result["set_stats"]
    assert table["fdr"].is_monotonic_increasing  # best first


def test_matched_null_has_the_moments_of_matched_random_sets():
    # Two expression bins with different z levels; the set takes 2 genes of bin 0 (4 genes) and 1
    # of bin 1 (3 genes), so its matched random sets are the 6 x 3 = 18 such combinations, which
    # we enumerate: exact mean, sd and exceedance probability of the Stouffer score. With 40,000
    # draws the sample sd is within 1% (standard error 0.35%) and the exceedance share within 0.01.
    z = np.array([[0.0, 1.0, 3.0, 4.0, 10.0, 12.0, 17.0], [2.0, -1.0, 0.5, 0.0, -3.0, 1.0, 4.0]])
    bins = np.array([0, 0, 0, 0, 1, 1, 1])
    chosen = np.array([1, 2, 5])
    scores = np.array(
        [[z[n, [*a, b]].sum() / np.sqrt(3) for a, b in product(combinations(range(4), 2), range(4, 7))]
         for n in range(2)]
    )  # fmt: skip
    observed = z[:, chosen].sum(axis=1) / np.sqrt(3)
    null = sd.scoring.matched_null(z, bins, [chosen], n_null=40_000, seed=3)
    np.testing.assert_allclose(null.mean[:, 0], scores.mean(axis=1), rtol=0.01, atol=0.02)
    np.testing.assert_allclose(null.sd[:, 0], scores.std(axis=1), rtol=0.01)
    share = (scores >= observed[:, None]).mean(axis=1)  # ties count: the set itself is one draw
    np.testing.assert_allclose(null.n_exceeding[:, 0] / 40_000, share, atol=0.01)


def _with_latent_row_scaled(adata, node: int, factor: float):
    """A copy whose model has node ``node``'s incoming weights (and bias) multiplied by ``factor``."""
    adata = adata.copy()
    weights = adata.uns["scdeconv"]["weights"]
    module, genes = sd.get.model(adata)
    last = len(module.encoder) - 1
    for part in ("weight", "bias"):
        name = f"encoder_{last}_{part}"
        values = np.array(weights[name], copy=True)
        values[node] *= factor
        weights[name] = values
    module, genes = sd.get.model(adata)
    with torch.no_grad():
        latent = module.encode(module.prepare_input(torch.from_numpy(_dense(adata[:, list(genes)]).astype(np.float32))))
    adata.obsm["X_scdeconv"] = latent.numpy()  # the stored representation follows the model
    return adata


def test_constant_node_is_dead_and_varying_nodes_are_not(trained_adata):
    stats = trained_adata.uns["scdeconv_impact"]["node_stats"]
    latent = np.asarray(trained_adata.obsm["X_scdeconv"])
    np.testing.assert_allclose(stats["activation_std"], latent.std(axis=0), rtol=1e-5)
    spread = latent.std(axis=0) / latent.std(axis=0).max()
    # Documented: status "dead" = activation nearly constant over cells. Every node with at least 1%
    # of the largest spread is not dead, every node below 0.01% is (the fixture has both kinds);
    # "rare" nodes vary but fire in too few cells; `dead` is "not live" (either).
    status = stats["status"]
    assert (status[spread > 1e-2] != "dead").all() and (status[spread < 1e-4] == "dead").all()
    assert (stats["dead"] == (status != "live")).all()
    assert (spread > 1e-2).sum() >= 3  # (measured: 6 live, 2 dead nodes)
    # Two live nodes other than the widest-spread one (which sets the scale of "nearly constant").
    live = np.flatnonzero(~stats["dead"].to_numpy())
    killed, dimmed = live[np.argsort(-latent.std(axis=0)[live])][1:3]
    # Node `killed` gets zero incoming weights and bias: the same activation in every cell.
    adata = _with_latent_row_scaled(trained_adata, killed, 0.0)
    # Node `dimmed` keeps its pattern at 5% of the scale: small, but varying, so alive.
    adata = _with_latent_row_scaled(adata, dimmed, 0.05)
    sd.tl.module_impact(adata, n_null=50, progress=False)
    result = adata.uns["scdeconv_impact"]
    new = result["node_stats"]
    assert new["activation_std"].iloc[killed] < 1e-6
    expected = stats["dead"].to_numpy().copy()
    expected[killed] = True
    np.testing.assert_array_equal(new["dead"].to_numpy(), expected)
    assert (result["impact"].iloc[killed] == 0).all() and result["null_z"].iloc[killed].isna().all()
    assert f"node_{killed}" not in set(result["set_stats"]["best_node"])
    assert f"node_{killed}" not in set(sd.get.impact_df(adata)["node"])


# --- group_diff: the sign follows the argument order ---------------------------------------------
@pytest.fixture(scope="module")
def both_ways(trained_adata):
    """group_diff ery vs mono and mono vs ery (ery carries the planted heme programme)."""
    out = {}
    for first, second in (("ery", "mono"), ("mono", "ery")):
        adata = sd.tl.group_diff(trained_adata, "group", first, second, progress=False, copy=True)
        out[first] = adata.uns["scdeconv_group_diff"]
    return out


def test_group_diff_is_positive_for_the_programme_planted_in_group1(trained_adata, both_ways):
    # make_counts plants HEME_METABOLISM genes x4 in "ery": its per-cell activity is higher there
    # (measured rank-biserial 1.0), its attributions gain in ery at every live node (diff
    # measured 5.8 at the carrier node), and Welch's effect there is positive (measured 1.2).
    heme = "HALLMARK_HEME_METABOLISM"
    ery = both_ways["ery"]
    impact = trained_adata.uns["scdeconv_impact"]
    live = ~impact["node_stats"]["dead"].to_numpy()
    carrier = impact["impact"].loc[live, heme].idxmax()
    assert ery["set_tests"].loc[heme, "effect"] > 0.5
    assert ery["set_tests"].loc[heme, "mean_activity1"] > ery["set_tests"].loc[heme, "mean_activity2"]
    assert ery["diff"].loc[carrier, heme] > 1 and ery["set_scores"].loc[heme, "max_diff"] > 1
    assert ery["node_set_tests"]["effect"].loc[carrier, heme] > 0
    assert ery["node_set_tests"]["statistic"].loc[carrier, heme] > 0
    # and the interferon programme planted in "mono" the other way
    ifn = "HALLMARK_INTERFERON_GAMMA_RESPONSE"
    assert ery["set_tests"].loc[ifn, "effect"] < -0.5 and (ery["diff"].loc[live, ifn] < 0).all()


def test_set_tests_effect_is_the_rank_biserial_of_group1_over_group2(trained_adata, both_ways):
    from scipy.stats import mannwhitneyu

    act = sd.get.activity(trained_adata)
    tests = both_ways["ery"]["set_tests"]
    ery = (trained_adata.obs["group"] == "ery").to_numpy()
    values = act[:, list(tests.index)].X
    u = mannwhitneyu(values[ery], values[~ery], axis=0).statistic
    np.testing.assert_allclose(tests["effect"], 2 * u / (ery.sum() * (~ery).sum()) - 1, rtol=1e-10)
    np.testing.assert_allclose(tests["mean_activity2"], values[~ery].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_swapping_the_groups_flips_every_signed_result_exactly(both_ways):
    a, b = both_ways["ery"], both_ways["mono"]
    assert (a["params"]["group1"], b["params"]["group1"]) == ("ery", "mono")
    assert a["params"]["n_cells1"] == b["params"]["n_cells2"]
    pd.testing.assert_frame_equal(a["diff"], -b["diff"], rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(a["impact_group1"], b["impact_group2"])
    for name in ("effect", "statistic", "null_z"):
        pd.testing.assert_frame_equal(a["node_set_tests"][name], -b["node_set_tests"][name], rtol=1e-6, atol=1e-9)
    for name in ("pvalue", "fdr"):
        pd.testing.assert_frame_equal(a["node_set_tests"][name], b["node_set_tests"][name], rtol=1e-6, atol=1e-12)
    sa, sb = a["set_tests"], b["set_tests"].loc[a["set_tests"].index]
    np.testing.assert_allclose(sa["effect"], -sb["effect"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sa["null_z"], -sb["null_z"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sa["mean_activity1"], sb["mean_activity2"])
    np.testing.assert_allclose(sa["pvalue"], sb["pvalue"], rtol=1e-6)


def test_enrichment_diff_matches_a_hand_computation(trained_adata, both_ways):
    # Documented: for each node, the log ratio of each gene's mean |attribution| in group1 over
    # group2 (each node's active cells among the group's cells) is z-scored among expression-
    # matched genes and Stouffer-summed over the set; dead nodes 0.
    result = both_ways["ery"]
    impact = trained_adata.uns["scdeconv_impact"]
    attribution, _ = _grad_x_input(trained_adata)
    active = _active(trained_adata).astype(float)
    ery = (trained_adata.obs["group"] == "ery").to_numpy()
    profiles = [_profile(attribution[cells], active[cells]) for cells in (ery, ~ery)]
    bins = sd.scoring.expression_bins(np.asarray(impact["gene_mean"]), impact["params"]["n_bins"])
    shift = sd.scoring.binned_zscores(sd.scoring.log_ratio(*profiles), bins)
    expected = sd.scoring.set_enrichment(shift, _set_columns(trained_adata))
    dead = impact["node_stats"]["dead"].to_numpy()
    expected[dead] = 0
    np.testing.assert_allclose(result["diff"].to_numpy(), expected, rtol=1e-3, atol=1e-4)


# --- gene sets: one-to-one orthologs only ----------------------------------------------------------
def test_human_to_mouse_keeps_one_to_one_orthologs_only():
    # In data/biomart_human_to_mouse.csv.gz: ALAS2 -> Alas2 and GATA1 -> Gata1 are ortholog_one2one;
    # GYPA and GYPB (both in HALLMARK_HEME_METABOLISM) are ortholog_one2many to the single mouse
    # Gypa, ADH1A/B/C to Adh1: kept, they would map several human genes onto one mouse gene.
    mouse = sd.genesets.human_to_mouse
    assert mouse(["ALAS2", "GYPA", "GATA1", "GYPB", "ADH1C"]) == ["Alas2", "Gata1"]
    assert mouse(["GYPA"]) == [] and mouse(["ADH1A", "ADH1B", "ADH1C"]) == []
    heme = sd.genesets.hallmark("mouse")["HALLMARK_HEME_METABOLISM"]
    assert "Alas2" in heme and "Gypa" not in heme
    for name, genes in sd.genesets.hallmark("mouse").items():
        assert len(genes) == len(set(genes)), name


# --- training: the reconstruction report ----------------------------------------------------------
def test_reconstruction_report_matches_a_hand_computation(trained_adata):
    # On the held-out cells: per gene the Pearson correlation over cells, and 1 - D(model) / D(null)
    # with Poisson deviances, the null giving each cell the gene's share of the held-out counts;
    # per cell the correlation over genes; all on log1p-normalised input. (The fixture's 5-epoch
    # model explains less deviance than the null for most genes, median -1.2: a value, not a bound.)
    model = trained_adata.uns["scdeconv"]
    quality = model["reconstruction"]
    module, genes = sd.get.model(trained_adata)
    module = module.double()
    held_out = list(model["params"]["validation_cells"])
    obs = _dense(trained_adata[held_out, list(genes)])
    with torch.no_grad():
        mu = module.expected_counts(torch.from_numpy(obs)).numpy()
        x = module.prepare_input(torch.from_numpy(obs)).numpy()
        y = module.prepare_input(torch.from_numpy(mu)).numpy()
    base = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0) / obs.sum()

    def deviance(expected):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (2 * (np.where(obs > 0, obs * np.log(obs / expected), 0) - (obs - expected))).sum(axis=0)

    with np.errstate(invalid="ignore", divide="ignore"):  # genes without counts here: NaN, as documented
        explained = np.where(obs.sum(axis=0) > 0, 1 - deviance(mu) / deviance(base), np.nan)
        gene_corr = [np.corrcoef(x[:, g], y[:, g])[0, 1] for g in range(x.shape[1])]
        cell_corr = [np.corrcoef(x[c], y[c])[0, 1] for c in range(x.shape[0])]
    genes_table = quality["genes"]
    assert list(genes_table.index) == list(genes) and list(quality["cells"].index) == held_out
    np.testing.assert_allclose(genes_table["deviance_explained"], explained, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(genes_table["correlation"], gene_corr, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(quality["cells"]["correlation"], cell_corr, rtol=1e-6, atol=1e-9)
    # The held-out cells are the recorded validation split, disjoint from training: as many as
    # the documented 5% (rounded up), and distinct.
    assert len(held_out) == int(np.ceil(0.05 * trained_adata.n_obs)) == len(set(held_out))


def test_validation_cells_do_not_reach_the_training_steps():
    # The split depends only on the seed and the number of cells, so the same cells are held out
    # of two data sets that differ only in those cells' counts. Training steps see training cells
    # only, so the per-epoch training losses are the same to the bit (patience keeps every epoch);
    # the validation losses differ. A split that leaked held-out cells into training breaks the first.
    a = make_counts(n_cells=120, seed=0)
    sd.tl.train_autoencoder(a, max_epochs=3, patience=10, seed=0, **TINY)
    b = make_counts(n_cells=120, seed=0)
    held_out = b.obs_names.isin(a.uns["scdeconv"]["params"]["validation_cells"])
    x = b.X.toarray()
    x[held_out] *= 3
    b.X = sparse.csr_matrix(x)
    sd.tl.train_autoencoder(b, max_epochs=3, patience=10, seed=0, **TINY)
    a, b = a.uns["scdeconv"], b.uns["scdeconv"]
    np.testing.assert_array_equal(a["params"]["validation_cells"], b["params"]["validation_cells"])
    assert len(a["history"]) == len(b["history"]) == 3
    np.testing.assert_array_equal(a["history"]["train_loss"], b["history"]["train_loss"])
    assert (a["history"]["val_loss"] != b["history"]["val_loss"]).all()
