import matplotlib.pyplot as plt
import numpy as np
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


def test_median_score_has_no_null_and_activity_can_be_skipped(trained_adata):
    adata = sd.tl.module_impact(
        trained_adata, method="guided", score="median", activity_key=None, copy=True, progress=False
    )
    result = adata.uns["scdeconv_impact"]
    assert "fdr" not in result and result["params"]["n_null"] == 0
    assert "fdr" not in sd.get.impact_df(adata).columns


def test_heatmap_marks_significant_cells(trained_adata):
    fdr = trained_adata.uns["scdeconv_impact"]["fdr"]
    ax = sd.pl.impact_heatmap(trained_adata, threshold=0.0, fdr=1.0, show=False)
    shown = len(ax.get_yticks()) * len(ax.get_xticks())
    # fdr=1.0 marks every shown live cell with a finite FDR.
    assert len(ax.collections[0].get_offsets()) == shown and np.isfinite(fdr.to_numpy()).any()
    plt.close(ax.figure)
    ax = sd.pl.impact_heatmap(trained_adata, threshold=0.0, fdr=1e-12, only_significant=True, show=False)
    assert np.ma.getmaskarray(ax.images[0].get_array()).all() or np.isnan(ax.images[0].get_array()).all()
    plt.close(ax.figure)
    median = sd.tl.module_impact(trained_adata, method="guided", score="median", copy=True, progress=False)
    with pytest.raises(KeyError, match="has no 'fdr'"):
        sd.pl.impact_heatmap(median, fdr=0.05, show=False)
