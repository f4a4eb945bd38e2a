"""annotate_nodes / get.nodes_df: one record per node, from what module_impact, node_genes and stability wrote."""

import numpy as np
import pandas as pd
import pytest

import scdeconv as sd


def test_redundant_nodes_keep_the_stronger_twin():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 3))
    latent = np.column_stack([base, 2 * base[:, 1] + 0.01 * rng.normal(size=200), -base[:, 0]])
    live = np.array([True, True, True, True, False])
    strength = np.array([1.0, 1.0, 1.0, 5.0, 9.0])
    twins = sd.scoring.redundant_nodes(latent, live, strength, 0.9)
    # node 3 copies node 1 and is stronger: node 1 is the redundant one; node 4 is not live.
    assert list(twins) == [-1, 3, -1, -1, -1]
    # A perfectly anti-correlated node is as redundant as a copy.
    twins = sd.scoring.redundant_nodes(latent, np.ones(5, bool), strength, 0.9)
    assert twins[0] == 4 and twins[1] == 3


def test_group_lift_by_hand():
    active = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0]], dtype=float)
    labels = np.array([0, 0, 1, 1, 1, -1])
    lift = sd.scoring.group_lift(active, labels, 2)
    # node 0: 2 of its 3 active cells in group 0 (2 of 5 cells): (2/3) / (2/5) = 5/3; group 1: (1/3) / (3/5).
    np.testing.assert_allclose(lift[0], [5 / 3, 5 / 9])
    np.testing.assert_allclose(lift[1], [0.0, 5 / 3])


@pytest.fixture(scope="module")
def annotated(trained_adata):
    adata = sd.tl.node_genes(trained_adata, n_top=5, progress=False, copy=True)
    sd.tl.annotate_nodes(adata, groupby="group", n_genes=3)
    return adata


def test_node_records_follow_the_impact_result(annotated):
    table = sd.get.nodes_df(annotated)
    impact = annotated.uns["scdeconv_impact"]
    stats = impact["node_stats"]
    assert list(table["node"]) == list(stats.index)
    live = ~stats["dead"].to_numpy()
    for row, is_live in zip(table.itertuples(), live, strict=True):
        if not is_live:
            assert row.status in ("dead", "rare") and row.annotation == "" and not row.novel
            continue
        fdr = impact["fdr_conditional"].loc[row.node]
        assert row.n_called == int((fdr < 0.05).sum())
        assert row.best_set == impact["null_z"].loc[row.node].idxmax()
        np.testing.assert_allclose(row.best_fdr, fdr[row.best_set])
        assert row.novel == (row.n_called == 0)
        assert row.annotation == ("novel programme" if row.novel else row.best_set)
        assert len(row.top_genes.split("; ")) == 3
    # Where each node is active: the categories over-represented among its active cells.
    lift = sd.scoring.group_lift(
        sd.scoring.active_cells(annotated.obsm["X_scdeconv"]), pd.Categorical(annotated.obs["group"]).codes, 2
    )
    np.testing.assert_allclose(table["top_lift"], lift.max(axis=1))
    has_place = table.loc[live, "active_in"].str.len().to_numpy() > 0
    np.testing.assert_array_equal(has_place, lift[live].max(axis=1) >= 2.0)
    assert annotated.uns["scdeconv_nodes"]["params"]["node_genes_key"] == "scdeconv_node_genes"
    assert "stability" not in table  # no tl.stability run
    # module_impact reports a direction per (node, set): the record carries the best set's.
    direction = impact["direction"]
    assert [direction.loc[r.node, r.best_set] for r in table.itertuples() if r.status == "live"] == list(
        table.loc[table["status"] == "live", "direction"]
    )


def test_direction_column_when_impact_reports_one(trained_adata):
    adata = trained_adata.copy()
    impact = adata.uns["scdeconv_impact"]
    impact["direction"] = pd.DataFrame("up", index=impact["impact"].index, columns=impact["impact"].columns)
    impact["direction"].iloc[:, 0] = "down"
    sd.tl.annotate_nodes(adata)
    table = sd.get.nodes_df(adata, include_dead=False)
    expected = [impact["direction"].loc[r.node, r.best_set] for r in table.itertuples()]
    assert list(table["direction"]) == expected


def test_annotate_nodes_copy_roundtrip_and_errors(trained_adata, tmp_path):
    import anndata

    before = set(trained_adata.uns)
    adata = sd.tl.annotate_nodes(trained_adata, copy=True)
    assert set(trained_adata.uns) == before and "scdeconv_nodes" in adata.uns
    adata.write_h5ad(tmp_path / "n.h5ad")
    back = anndata.read_h5ad(tmp_path / "n.h5ad")
    pd.testing.assert_frame_equal(sd.get.nodes_df(back), sd.get.nodes_df(adata), check_dtype=False)
    with pytest.raises(KeyError, match=r"Run `sd.tl.annotate_nodes\(adata\)` first"):
        sd.get.nodes_df(trained_adata)
    with pytest.raises(KeyError, match="groupby 'cluster' is not a column"):
        sd.tl.annotate_nodes(trained_adata, groupby="cluster", copy=True)


def test_report_rows_one_per_live_node(annotated):
    from scdeconv._report import node_records

    rows = node_records(annotated)
    table = sd.get.nodes_df(annotated, include_dead=False)
    assert rows[0].startswith("Nodes: ") and f"{int(table['novel'].sum())} novel" in rows[0]
    body = [r for r in rows if r.startswith("| node_")]
    assert [r.split(" | ")[0].strip("| ") for r in body] == list(table["node"])
