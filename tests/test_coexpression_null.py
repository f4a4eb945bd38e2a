"""The co-expression null (``null="coexpression"``): modules, module-matched random sets, module_impact."""

import itertools

import numpy as np
import pandas as pd
import pytest

import scdeconv as sd
from scdeconv.scoring import MatchedSets, coexpression_modules, competitive_test, module_null

FAST = dict(n_latent=8, n_hidden=(16,), max_epochs=4, batch_size=32, progress=False)


def test_module_null_matches_a_hand_enumeration():
    # Two modules of three genes; the set {0, 3} takes one gene from each, so every random set is
    # one of {1, 2} x {4, 5}: four equally likely Stouffer sums.
    z = np.array([[3.0, 1.0, -1.0, 2.0, 0.5, -0.5], [0.0, 2.0, 0.0, 0.0, 0.0, 4.0], [9.0, 0, 0, 9.0, 0, 0]])
    modules = np.array([0, 0, 0, 1, 1, 1])
    null = module_null(z, modules, [np.array([0, 3])], n_null=4000, seed=0)
    combos = np.array([[z[r, a] + z[r, b] for a, b in itertools.product((1, 2), (4, 5))] for r in range(3)]) / np.sqrt(
        2
    )
    np.testing.assert_allclose(null.mean[:, 0], combos.mean(axis=1), atol=0.05)
    np.testing.assert_allclose(null.sd[:, 0], combos.std(axis=1), atol=0.05)
    # Node 0: the set (5 / sqrt 2) beats every random set; node 1: every random set reaches its 0.
    assert null.n_exceeding[0, 0] == 0 and null.n_exceeding[1, 0] == 4000
    # Node 2: only the set's own genes are non-zero, and no random set ever draws them.
    assert null.mean[2, 0] == 0 and null.sd[2, 0] == 0
    # Reproducible with the seed.
    again = module_null(z, modules, [np.array([0, 3])], n_null=4000, seed=0)
    np.testing.assert_array_equal(null.n_exceeding, again.n_exceeding)


def test_module_null_draws_several_mates_without_replacement_and_never_the_set():
    # Module 0 is genes 0-4 and the set holds two of them: every random set is a pair of {2, 3, 4}
    # (three equally likely, never a gene twice); module 1 (genes 5-6) holds one set gene and one
    # mate, drawn every time. Another set sharing the module gets its own exact distribution from
    # the same shared orderings.
    z = np.array([[0.0, 0.0, 1.0, 10.0, 100.0, 0.0, 1000.0]])
    modules = np.array([0, 0, 0, 0, 0, 1, 1])
    sets = [np.array([0, 1, 5]), np.array([2])]
    null = module_null(z, modules, sets, n_null=6000, seed=1)
    pairs = np.array([11.0, 101.0, 110.0]) + 1000.0
    np.testing.assert_allclose(null.mean[0, 0], pairs.mean() / np.sqrt(3), rtol=0.01)
    np.testing.assert_allclose(null.sd[0, 0], pairs.std() / np.sqrt(3), rtol=0.03)
    singles = np.array([0.0, 0.0, 10.0, 100.0])  # set {2}: one of genes 0, 1, 3, 4
    np.testing.assert_allclose(null.mean[0, 1], singles.mean(), rtol=0.03)
    np.testing.assert_allclose(null.sd[0, 1], singles.std(), rtol=0.03)


def _node_lifting_module_0(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten 40-gene modules and gene z-scores of two nodes; node 0 lifts all of module 0 by 1.5."""
    rng = np.random.default_rng(seed)
    modules = np.repeat(np.arange(10), 40)
    z = rng.standard_normal((2, len(modules)))
    z[0, modules == 0] += 1.5
    return modules, z


def test_module_null_calls_a_planted_set_but_not_a_module_that_merely_moves():
    # A node lifts a whole 40-gene module by 1.5; a planted set of 15 of its genes lifts a further 2.
    modules, z = _node_lifting_module_0(seed=3)
    planted = np.arange(15)
    z[0, planted] += 2.0
    bystander = np.arange(20, 35)  # 15 genes of the lifted module with nothing of their own
    bins = np.zeros(z.shape[1], dtype=np.int64)
    columns = [planted, bystander]
    exchangeable = competitive_test(z, MatchedSets(columns, bins, 1000, 0))
    matched = competitive_test(z, MatchedSets(columns, bins, 1000, 0, modules))
    assert exchangeable.pvalue[0, 0] < 1e-4 and exchangeable.pvalue[0, 1] < 1e-4  # both "called"
    assert matched.pvalue[0, 0] < 1e-4  # the planted set still stands out from its module
    assert matched.pvalue[0, 1] > 0.01  # the bystander does not


def test_coexpression_modules_recover_planted_blocks():
    rng = np.random.default_rng(4)
    factors = rng.standard_normal((300, 3))
    loadings = np.kron(np.eye(3), np.ones((1, 12)))  # three blocks of 12 genes
    x = factors @ loadings + 0.5 * rng.standard_normal((300, 36))
    labels = coexpression_modules(x, 3, seed=0)
    for block in range(3):
        assert len(set(labels[block * 12 : (block + 1) * 12])) == 1
    assert len(set(labels)) == 3


def test_module_impact_coexpression_null_is_the_recorded_default(counts_adata):
    sd.tl.train_autoencoder(counts_adata, **FAST)
    gene_sets = {"A": list(counts_adata.var_names[:10]), "B": list(counts_adata.var_names[10:25])}
    sd.tl.module_impact(
        counts_adata,
        gene_sets=gene_sets,
        n_modules=4,
        n_null=50,
        profile="expression",
        progress=False,
    )
    result = counts_adata.uns["scdeconv_impact"]
    assert result["params"]["null"] == "coexpression" and result["params"]["n_modules"] == 4
    assert result["gene_modules"].shape == (counts_adata.n_vars,) and set(result["gene_modules"]) <= set(range(4))
    assert result["null_z"].shape == (8, 2) and "fdr_conditional" in result["set_stats"]
    sd.tl.module_impact(
        counts_adata, gene_sets=gene_sets, null="expression", n_null=50, progress=False, key_added="plain"
    )
    assert (
        counts_adata.uns["plain"]["params"]["null"] == "expression" and "gene_modules" not in counts_adata.uns["plain"]
    )


@pytest.mark.parametrize(
    ("kw", "message"), [({"null": "camera"}, "null must be one of"), ({"n_modules": 1}, "n_modules")]
)
def test_module_impact_rejects_bad_null_settings(counts_adata, kw, message):
    sd.tl.train_autoencoder(counts_adata, **FAST)
    with pytest.raises(ValueError, match=message):
        sd.tl.module_impact(counts_adata, **{"null": "coexpression", **kw}, progress=False)


def test_coexpression_null_is_the_same_streamed_in_chunks_from_disk(counts_factory, tmp_path):
    import anndata

    memory = counts_factory(n_cells=150, seed=3)
    memory.X = memory.X.toarray()
    sd.tl.train_autoencoder(memory, **FAST)
    path = tmp_path / "data.h5ad"
    memory.write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    kw = dict(null="coexpression", n_modules=3, n_null=30, activity_key=None, progress=False)
    sd.tl.module_impact(memory, **kw)
    sd.tl.module_impact(backed, chunk_size=40, **kw)
    first, second = memory.uns["scdeconv_impact"], backed.uns["scdeconv_impact"]
    np.testing.assert_array_equal(first["gene_modules"], second["gene_modules"])
    np.testing.assert_allclose(first["null_z"], second["null_z"], rtol=1e-5, atol=1e-6)


def test_a_module_a_node_carries_is_called_as_a_unit_and_named_by_the_set_inside_it():
    # Node 0 lifts a whole 40-gene module by 1.5; a 30-gene set lies inside that module and has
    # nothing of its own, so the coexpression null cannot call it (test above). The module itself,
    # against random genes, is called on node 0 only, and the set is what it is made of.
    from scdeconv.scoring import module_gene_sets, module_significance

    modules, z = _node_lifting_module_0(seed=5)
    n_genes = z.shape[1]
    inside = np.arange(5, 35)
    spread = np.arange(0, n_genes, 20)  # 20 genes, two per module: over-represented in none
    design = MatchedSets([inside, spread], np.zeros(n_genes, dtype=np.int64), 1000, 0, modules)
    import pandas as pd

    out = module_significance(z, modules, np.zeros(2, bool), design, ["INSIDE", "SPREAD"], pd.Index(["n0", "n1"]))
    fdr = out["module_fdr"]
    assert fdr.loc["n0", "module_0"] < 0.01  # null z about 1.5 * sqrt(40) = 9.5
    assert (fdr.drop(columns="module_0").to_numpy() > 0.05).all() and (fdr.loc["n1"] > 0.05).all()
    assert out["module_sets"].loc["module_0", "sets"] == "INSIDE"  # 30 of its 40 genes
    assert out["module_sets"].loc["module_0", "top_share"] == pytest.approx(30 / 40)
    assert (out["module_sets"].drop(index="module_0")["sets"] == "").all()
    # The same labelling from the function itself, with an empty module left out of the scores.
    labelled = module_gene_sets(np.where(modules == 9, 10, modules), [inside], ["INSIDE"], fdr=0.05)
    assert labelled.loc["module_9", "n_genes"] == 0 and labelled.loc["module_0", "sets"] == "INSIDE"


def test_annotate_nodes_names_a_node_by_its_module_when_no_set_is_called(counts_adata):
    sd.tl.train_autoencoder(counts_adata, **FAST)
    gene_sets = {"A": list(counts_adata.var_names[:10]), "B": list(counts_adata.var_names[10:25])}
    kw = dict(gene_sets=gene_sets, n_modules=4, n_null=50, progress=False)
    sd.tl.module_impact(counts_adata, null="coexpression", **kw)
    impact = counts_adata.uns["scdeconv_impact"]
    assert impact["module_null_z"].shape == (8, impact["module_sets"].shape[0])
    impact["fdr_conditional"].loc[:, :] = 1.0  # no set called on any node: modules decide
    impact["module_sets"]["sets"] = ["A; B", *[""] * (len(impact["module_sets"]) - 1)]
    impact["module_fdr"].loc[:, :] = 1.0
    named, unnamed = impact["node_stats"].index[~impact["node_stats"]["dead"]][:2]
    first_module, second_module = impact["module_sets"].index[:2]
    impact["module_fdr"].loc[named, first_module] = 0.001  # carries the module made of A and B
    impact["module_fdr"].loc[unnamed, second_module] = 0.001  # carries a module of no given set
    sd.tl.annotate_nodes(counts_adata)
    table = sd.get.nodes_df(counts_adata).set_index("node")
    assert table.loc[named, "annotation"] == f"{first_module}: A; B" and not table.loc[named, "novel"]
    assert table.loc[named, "module_fdr"] == pytest.approx(0.001)
    assert table.loc[unnamed, "annotation"] == "novel programme" and table.loc[unnamed, "novel"]
    assert table.loc[unnamed, "module"] == second_module
    # Without modules (the expression null) the table has no module columns.
    sd.tl.module_impact(counts_adata, null="expression", key_added="plain", activity_key=None, **kw)
    sd.tl.annotate_nodes(counts_adata, impact_key="plain", key_added="plain_nodes")
    assert "module" not in sd.get.nodes_df(counts_adata, key="plain_nodes")


def test_carrying_modules_names_the_strongest_called_module_a_set_is_part_of():
    # Under null="coexpression" a set inside a module the node carries is not called itself; the
    # module is. carrying_modules names it per (node, set), which group_diff's pairs="called" and
    # impact_df's "module" column read: only the node's strongest called module (largest null z),
    # since modules tested against expression-matched genes are called on most nodes.
    from scdeconv._results import carrying_modules, strongest_modules

    nodes, names, modules = pd.Index(["node_0", "node_1"]), ["INSIDE", "OTHER", "ALSO"], ["m_0", "m_1", "m_2"]
    stored = {
        "impact": pd.DataFrame(0.0, index=nodes, columns=names),
        "module_fdr": pd.DataFrame([[0.001, 0.5, 0.01], [0.5, 0.5, 0.5]], index=nodes, columns=modules),
        "module_null_z": pd.DataFrame([[6.0, 0.0, 4.0], [0.0, 0.0, 0.0]], index=nodes, columns=modules),
        "module_sets": pd.DataFrame({"all_sets": ["INSIDE; ALSO", "OTHER", "ALSO"]}, index=modules),
    }
    assert strongest_modules(stored).tolist() == ["m_0", ""]
    carrying = carrying_modules(stored)
    assert carrying.loc["node_0"].tolist() == ["m_0", "", "m_0"]
    assert (carrying.loc["node_1"] == "").all()  # nothing called there
    stored["module_null_z"].loc["node_0", "m_2"] = 9.0  # now m_2 is the strongest: it holds ALSO only
    assert carrying_modules(stored).loc["node_0"].tolist() == ["", "", "m_2"]
    assert strongest_modules(stored, fdr=0.005).tolist() == ["m_0", ""]  # m_2 (FDR 0.01) is not called at 0.005
    no_modules = {"impact": stored["impact"]}  # null="expression"
    assert (carrying_modules(no_modules) == "").all().all() and (strongest_modules(no_modules) == "").all()


def test_module_gene_sets_labels_with_the_first_sets_and_keeps_all_of_them():
    # Four sets of 10 genes, all inside module 0 (40 of 400 genes): each is over-represented there.
    from scdeconv.scoring import module_gene_sets

    modules = np.repeat(np.arange(10), 40)
    columns = [np.arange(10 * k, 10 * k + 10) for k in range(4)]
    labelled = module_gene_sets(modules, columns, ["A", "B", "C", "D"], fdr=0.05, n_sets=3)
    assert len(labelled.loc["module_0", "sets"].split("; ")) == 3
    assert sorted(labelled.loc["module_0", "all_sets"].split("; ")) == ["A", "B", "C", "D"]
    assert (labelled.drop(index="module_0")["all_sets"] == "").all()


@pytest.mark.parametrize("shape", [(60, 25), (25, 60)])  # more cells than genes, and fewer
def test_principal_loadings_match_the_svd(shape):
    from scdeconv.scoring._coexpression import _principal_loadings

    x = np.random.default_rng(1).standard_normal(shape)
    x -= x.mean(axis=0)
    _, values, vt = np.linalg.svd(x, full_matrices=False)
    # Each component's sign is arbitrary: compare up to it, column by column.
    expected, got = vt[:6].T * values[:6], _principal_loadings(x, 6)
    np.testing.assert_allclose(np.abs(got), np.abs(expected), atol=1e-10)
    np.testing.assert_allclose(np.abs((got * expected).sum(axis=0)), (expected**2).sum(axis=0), rtol=1e-10)


def test_a_set_that_falls_less_than_its_module_is_not_called():
    # A node shuts module 0 down by 2; a set of 15 of its genes falls only by 0.5. It beats its
    # module mates by far, but it does not rise: both nulls must reject, so it is not called.
    modules, z = _node_lifting_module_0(seed=5)
    z[0, modules == 0] -= 1.5 + 2.0  # undo the helper's lift, then shut the module down
    falling_less = np.arange(15)
    z[0, falling_less] += 1.5
    bins = np.zeros(z.shape[1], dtype=np.int64)
    mates_only = sd.scoring.module_null(z, modules, [falling_less], n_null=1000, seed=0)
    assert ((sd.scoring.set_enrichment(z, [falling_less]) - mates_only.mean) / mates_only.sd)[0, 0] > 4
    both = competitive_test(z, MatchedSets([falling_less], bins, 1000, 0, modules))
    assert both.null_z[0, 0] < 0 and both.pvalue[0, 0] > 0.5 and both.pvalue_empirical[0, 0] > 0.5
    # Two-sided, the two nulls disagree in sign: no evidence either way.
    two_sided = competitive_test(z, MatchedSets([falling_less], bins, 1000, 0, modules), two_sided=True)
    assert two_sided.null_z[0, 0] == 0 and two_sided.pvalue[0, 0] == 1


def test_stability_finds_a_set_its_run_names_by_module():
    # A run "finds" a set when it is called at the set level or is part of a node's strongest
    # called module (under null="coexpression" the module stands for the sets it is made of).
    from scdeconv.tl._stability import _found

    nodes, names, modules = pd.Index(["node_0"]), ["CALLED", "INSIDE", "ELSEWHERE"], ["m_0", "m_1"]
    result = {
        "impact": pd.DataFrame(0.0, index=nodes, columns=names),
        "set_stats": pd.DataFrame({"fdr": [0.01, 0.5, 0.5]}, index=names),
        "module_fdr": pd.DataFrame([[0.001, 0.5]], index=nodes, columns=modules),
        "module_null_z": pd.DataFrame([[5.0, 1.0]], index=nodes, columns=modules),
        "module_sets": pd.DataFrame({"all_sets": ["INSIDE", "ELSEWHERE"]}, index=modules),
    }
    assert _found(result, 0.05).tolist() == [1.0, 1.0, 0.0]
    assert _found({k: result[k] for k in ("impact", "set_stats")}, 0.05).tolist() == [1.0, 0.0, 0.0]
