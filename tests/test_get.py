import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import scdeconv as sd


def test_activity_getter_chains_with_scanpy(trained_adata):
    import scanpy as sc

    act = sd.get.activity(trained_adata)
    table = trained_adata.obsm["scdeconv_activity"]
    assert act.shape == table.shape and list(act.var_names) == list(table.columns)
    np.testing.assert_array_equal(act.X, table.to_numpy())
    assert "X_scdeconv" in act.obsm and "group" in act.obs
    sc.tl.rank_genes_groups(act, "group", method="t-test")
    assert "rank_genes_groups" in act.uns and "rank_genes_groups" not in trained_adata.uns
    with pytest.raises(KeyError, match="module_impact"):
        sd.get.activity(trained_adata, key="missing")


def test_impact_df_carries_statistics(trained_adata):
    table = sd.get.impact_df(trained_adata)
    assert {"node", "gene_set", "impact", "scaled", "rank", "null_z", "pvalue", "fdr"} <= set(table.columns)
    live = (~trained_adata.uns["scdeconv_impact"]["node_stats"]["dead"]).sum()
    assert len(table) == live * trained_adata.uns["scdeconv_impact"]["impact"].shape[1]
    assert table["fdr"].between(0, 1).all()
    # One direction per (node, set), the stored table's, for live nodes only.
    direction = trained_adata.uns["scdeconv_impact"]["direction"]
    assert set(table["direction"]) <= {"up", "down"}
    row = table.iloc[0]
    assert row["direction"] == direction.loc[row["node"], row["gene_set"]]


def test_median_score_has_no_null_and_activity_can_be_skipped(trained_adata):
    adata = sd.tl.module_impact(
        trained_adata, method="guided", score="median", activity_key=None, copy=True, progress=False
    )
    result = adata.uns["scdeconv_impact"]
    assert "fdr" not in result and result["params"]["n_null"] == 0
    assert "fdr" not in sd.get.impact_df(adata).columns


def test_heatmap_marks_significant_cells(trained_adata):
    fdr = trained_adata.uns["scdeconv_impact"]["fdr"]

    def shown(ax):
        rows = [t.get_text() for t in ax.get_yticklabels()]
        cols = ["HALLMARK_" + t.get_text() for t in ax.get_xticklabels()]
        return fdr.loc[rows, cols].to_numpy()

    # A cut between the shown FDRs: dots on exactly the cells below it, at their (column, row).
    ax = sd.pl.impact_heatmap(trained_adata, view="paper", threshold=0.0, show=False)
    cut = float(np.median(shown(ax)))
    plt.close(ax.figure)
    ax = sd.pl.impact_heatmap(trained_adata, view="paper", threshold=0.0, fdr=cut, show=False)
    significant = shown(ax) < cut
    assert 0 < significant.sum() < significant.size
    rows, cols = np.nonzero(significant)
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), np.column_stack([cols, rows]))
    plt.close(ax.figure)
    # only_significant blanks (masks) the others and leaves the significant cells' colours as they were.
    full = sd.pl.impact_heatmap(trained_adata, view="paper", threshold=0.0, show=False).images[0].get_array()
    ax = sd.pl.impact_heatmap(trained_adata, view="paper", threshold=0.0, fdr=cut, only_significant=True, show=False)
    drawn = np.ma.masked_invalid(ax.images[0].get_array())
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn), ~(shown(ax) < cut))
    np.testing.assert_allclose(drawn.compressed(), np.asarray(full)[shown(ax) < cut])
    assert not ax.collections  # no dots: the blanks say it
    plt.close("all")
    median = sd.tl.module_impact(trained_adata, method="guided", score="median", copy=True, progress=False)
    with pytest.raises(KeyError, match="has no 'fdr'"):
        sd.pl.impact_heatmap(median, view="paper", fdr=0.05, show=False)


def test_impact_df_has_set_sizes_and_empirical_pvalue(trained_adata):
    table = sd.get.impact_df(trained_adata)
    sizes = trained_adata.uns["scdeconv_impact"]["gene_set_sizes"]
    assert {"n_present", "pvalue_empirical"} <= set(table.columns)
    assert (table["n_present"].to_numpy() == sizes.loc[table["gene_set"], "n_present"].to_numpy()).all()
    assert list(table.columns[:2]) == ["node", "gene_set"]


def test_group_diff_df_set_level(trained_adata):
    table = sd.get.group_diff_df(trained_adata, level="set")
    assert list(table.columns[:1]) == ["gene_set"]
    assert {"effect", "pvalue", "fdr", "group1", "group2"} <= set(table.columns)
    assert (table["group1"] == "ery").all() and (table["group2"] == "rest").all()
    assert table["fdr"].is_monotonic_increasing
    with pytest.raises(ValueError, match="level must be"):
        sd.get.group_diff_df(trained_adata, level="cell")


def test_node_genes_df_is_tidy(trained_adata):
    adata = sd.tl.node_genes(trained_adata, n_top=5, progress=False, copy=True)
    table = sd.get.node_genes_df(adata)
    assert list(table.columns) == ["node", "rank", "gene", "score"]
    names = adata.uns["scdeconv_node_genes"]["names"]
    assert len(table) == int((names != "").to_numpy().sum())  # one row per listed gene, blanks left out
    node = str(table["node"].iloc[0])
    first = table[table["node"] == node]
    assert list(first["rank"]) == list(range(1, len(first) + 1)) and first["score"].is_monotonic_decreasing
    assert list(first["gene"]) == [g for g in names[node] if g]
    assert set(sd.get.node_genes_df(adata, nodes=node)["node"]) == {node}
    with pytest.raises(KeyError, match="Unknown nodes"):
        sd.get.node_genes_df(adata, nodes=["node_99"])
    with pytest.raises(KeyError, match=r"sd\.tl\.node_genes"):
        sd.get.node_genes_df(trained_adata, key="missing")


def _umap_titles(act, color, **kwargs):
    import scanpy as sc

    ax = sc.pl.umap(act, color=color, show=False, **kwargs)
    return [a.get_title() for a in (ax if isinstance(ax, list) else [ax])]


@pytest.mark.slow  # compiles UMAP with numba (~10 s)
def test_activity_works_with_scanpy_umap(trained_adata):
    import scanpy as sc

    act = sd.get.activity(trained_adata)
    sc.pp.neighbors(act, use_rep="X_scdeconv", n_neighbors=10)
    sc.tl.umap(act, random_state=0)
    name = act.var_names[0]
    assert name.startswith("HALLMARK_")
    assert _umap_titles(act, [name, "group"]) == [name, "group"]
    short = name.removeprefix("HALLMARK_")  # the label sd.pl shows
    assert _umap_titles(act, short, gene_symbols="short_name") == [short]
    plt.close("all")
    assert "X_umap" not in trained_adata.obsm


def test_activity_short_names_work_both_ways_in_scanpy(trained_adata):
    full = sd.get.activity(trained_adata)
    act = sd.get.activity(trained_adata, strip_prefix=True)
    act.obsm["X_umap"] = trained_adata.obsm["X_scdeconv"][:, :2]  # any 2-d embedding will do
    name = full.var_names[0]
    short = name.removeprefix("HALLMARK_")
    assert act.var_names[0] == short and list(act.var["gene_set"]) == list(full.var_names)
    assert list(act.var["short_name"]) == list(full.var["short_name"]) == list(act.var_names)
    np.testing.assert_array_equal(act.X, full.X)
    assert _umap_titles(act, [short, "group"]) == [short, "group"]
    assert _umap_titles(act, name, gene_symbols="gene_set") == [name]
    np.testing.assert_array_equal(act[:, short].X, full[:, name].X)
    plt.close("all")


def test_activity_short_names_stay_unique():
    from scdeconv.get._activity import short_names

    names = pd.Index(["HALLMARK_A", "A", "HALLMARK_B", "TREG", "HALLMARK_C", "HALLMARK_HALLMARK_C"])
    assert short_names(names) == ["HALLMARK_A", "A", "B", "TREG", "C", "HALLMARK_HALLMARK_C"]
    names = pd.Index(["HALLMARK_X", "HALLMARK_HALLMARK_X"])  # both would be "X" / "HALLMARK_X"
    assert len(set(short_names(names))) == 2
