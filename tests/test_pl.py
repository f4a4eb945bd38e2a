"""Tests of ``sd.pl``: returned objects, labels, filters, overlay mask, save, errors, side effects."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from scdeconv import pl
from scdeconv._keys import node_names
from scdeconv.pl import _embedding_comparison
from scdeconv.pl._impact_heatmap import heatmap_table
from scdeconv.scoring import minmax_per_set, scaled_difference

# scanpy's own scatter code calls Colormap.set_bad (deprecated in matplotlib 3.11)
pytestmark = pytest.mark.filterwarnings("ignore:The set_bad function:PendingDeprecationWarning")

SETS = [
    "HALLMARK_HEME_METABOLISM",
    "HALLMARK_E2F_TARGETS",
    "HALLMARK_G2M_CHECKPOINT",
    "HALLMARK_INTERFERON_GAMMA_RESPONSE",
    "HALLMARK_HYPOXIA",
    "HALLMARK_APOPTOSIS",
]
SHORT = [s.removeprefix("HALLMARK_") for s in SETS]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _planted_impact(seed: int = 0) -> pd.DataFrame:
    """Impact whose per-set min-max scaling is the identity, so what is shown is known.

    Each set has max 1 (held by a live node) and min 0 (node_8). Expected visibility:
    nodes 0-4 always (a 1.0 or 0.95), node_5 never (<= 0.6), node_6 only below 0.8,
    node_7 is dead (a 1.0 would show it), node_8 never (all 0).
    """
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 0.6, size=(9, len(SETS)))
    impact = pd.DataFrame(values, index=node_names(9), columns=SETS)
    impact.loc["node_0", "HALLMARK_HEME_METABOLISM"] = 1.0
    impact.loc["node_1", ["HALLMARK_E2F_TARGETS", "HALLMARK_G2M_CHECKPOINT"]] = [1.0, 0.95]
    impact.loc["node_2", "HALLMARK_INTERFERON_GAMMA_RESPONSE"] = 1.0
    impact.loc["node_3", "HALLMARK_HYPOXIA"] = 1.0
    impact.loc["node_4", ["HALLMARK_APOPTOSIS", "HALLMARK_G2M_CHECKPOINT"]] = 1.0
    impact.loc["node_6", "HALLMARK_HEME_METABOLISM"] = 0.8
    impact.loc["node_7", ["HALLMARK_HEME_METABOLISM", "HALLMARK_E2F_TARGETS"]] = 1.0
    impact.loc["node_8"] = 0.0
    return impact


def _planted_fdr(impact: pd.DataFrame) -> pd.DataFrame:
    """FDRs whose calls are known: *** where the impact is >= 0.95, * at 0.8, no call elsewhere.

    Calls at FDR < 0.05: node_0 HEME; node_1 E2F, G2M; node_2 IFNG; node_3 HYPOXIA; node_4 APOPTOSIS,
    G2M; node_6 HEME (one star); node_7 HEME and E2F, but node_7 is dead and must never be shown.
    """
    values = impact.to_numpy()
    fdr = np.where(values >= 0.95, 0.0005, np.where(values >= 0.8, 0.03, 0.6))
    return pd.DataFrame(fdr, index=impact.index, columns=impact.columns)


def _impact_result(impact: pd.DataFrame) -> dict:
    dead = pd.Series(False, index=impact.index)
    dead["node_7"] = True
    node_stats = pd.DataFrame(
        {"dead": dead, "activation_std": np.where(dead, 0.0, 1.0), "max_impact": impact.max(axis=1)}
    )
    sizes = pd.DataFrame({"n_genes": 200, "n_present": 50}, index=impact.columns)
    return {
        "params": {"method": "guided", "score": "median", "model_key": "scdeconv"},
        "impact": impact,
        "fdr": _planted_fdr(impact),
        "node_stats": node_stats,
        "gene_set_sizes": sizes,
        "gene_sets": {name: np.array([f"{name}_gene"]) for name in impact.columns},
    }


@pytest.fixture
def adata_impact() -> ad.AnnData:
    adata = ad.AnnData(np.zeros((4, 3), dtype=np.float32))
    adata.uns["scdeconv_impact"] = _impact_result(_planted_impact())
    return adata


@pytest.fixture
def adata_diff(adata_impact) -> ad.AnnData:
    impact = adata_impact.uns.pop("scdeconv_impact")
    adata_impact.uns["my_impact"] = impact  # the plot must find it through params["impact_key"]
    rng = np.random.default_rng(1)
    g1 = impact["impact"] * rng.uniform(0.5, 1.5, size=impact["impact"].shape)
    g2 = impact["impact"] * rng.uniform(0.5, 1.5, size=impact["impact"].shape)
    diff = g1 - g2
    adata_impact.uns["scdeconv_group_diff"] = {
        "params": {
            "groupby": "cell_type",
            "group1": "MEP",
            "group2": "rest",
            "impact_key": "my_impact",
            "n_cells1": 40,
            "n_cells2": 60,
        },
        "impact_group1": g1,
        "impact_group2": g2,
        "diff": diff,
        "scaled_diff": scaled_difference(diff),
        "set_tests": pd.DataFrame({"effect": 0.0, "fdr": 1.0}, index=diff.columns),
        "node_set_tests": {"fdr": _diff_fdr(diff), "effect": diff * 2.0},
    }
    return adata_impact


# (node, set) differences called at FDR < 0.05 in adata_diff; node_7 is dead and never shown.
DIFF_CALLS = {
    ("node_0", SETS[0]): 0.004,
    ("node_2", SETS[3]): 0.02,
    ("node_5", SETS[5]): 0.0001,
    ("node_7", SETS[0]): 0.001,
}


def _diff_fdr(diff: pd.DataFrame) -> pd.DataFrame:
    fdr = pd.DataFrame(0.5, index=diff.index, columns=diff.columns)
    for (node, gene_set), value in DIFF_CALLS.items():
        fdr.loc[node, gene_set] = value
    return fdr


@pytest.fixture
def adata_model() -> ad.AnnData:
    adata = ad.AnnData(np.zeros((4, 3), dtype=np.float32))
    history = pd.DataFrame(
        {"epoch": np.arange(10), "train_loss": np.linspace(2.0, 1.0, 10), "val_loss": np.linspace(2.1, 1.2, 10)}
    )
    adata.uns["scdeconv"] = {
        "params": {"n_latent": 8, "likelihood": "poisson", "ortho_penalty": 0.05, "best_epoch": 6},
        "var_names": np.array(["a", "b", "c"]),
        "weights": {},
        "history": history,
    }
    return adata


def _tick_labels(ax: Axes, axis: str) -> list[str]:
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in ticks]


# impact_heatmap ---------------------------------------------------------------------------------


def test_impact_heatmap_returns_labelled_axes(adata_impact):
    ax = pl.impact_heatmap(adata_impact, view="paper", show=False)
    assert isinstance(ax, Axes)
    assert ax.get_xlabel() == "gene set"
    assert ax.get_ylabel() == "node"
    assert ax.get_title()
    assert sorted(_tick_labels(ax, "x")) == sorted(SHORT)
    colorbars = [a for a in ax.figure.axes if a is not ax]
    assert colorbars and "scaled" in colorbars[0].get_ylabel()


def test_impact_heatmap_threshold_and_dead_nodes(adata_impact):
    shown = set(_tick_labels(pl.impact_heatmap(adata_impact, view="paper", show=False), "y"))
    assert shown == {"node_0", "node_1", "node_2", "node_3", "node_4", "node_6"}
    shown = set(_tick_labels(pl.impact_heatmap(adata_impact, view="paper", threshold=0.85, show=False), "y"))
    assert shown == {"node_0", "node_1", "node_2", "node_3", "node_4"}
    shown = set(_tick_labels(pl.impact_heatmap(adata_impact, view="paper", drop_dead=False, show=False), "y"))
    assert "node_7" in shown


def test_impact_heatmap_cells_match_labels(adata_impact):
    ax = pl.impact_heatmap(adata_impact, view="paper", strip_prefix=False, show=False)
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    impact = adata_impact.uns["scdeconv_impact"]["impact"]
    live = impact.drop(index="node_7")
    expected = minmax_per_set(live).loc[rows, cols].to_numpy()
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected)


def test_impact_heatmap_cluster_orders_similar_rows_together(adata_impact):
    unclustered = _tick_labels(pl.impact_heatmap(adata_impact, view="paper", cluster=False, show=False), "y")
    assert unclustered == ["node_0", "node_1", "node_2", "node_3", "node_4", "node_6"]
    clustered = _tick_labels(pl.impact_heatmap(adata_impact, view="paper", show=False), "y")
    # node_0 and node_6 both peak on HEME_METABOLISM: leaf order puts them side by side
    assert abs(clustered.index("node_0") - clustered.index("node_6")) == 1


def test_impact_heatmap_single_row_and_subset(adata_impact):
    ax = pl.impact_heatmap(adata_impact, view="paper", gene_sets=["HEME_METABOLISM"], threshold=0.85, show=False)
    assert _tick_labels(ax, "y") == ["node_0"]
    assert _tick_labels(ax, "x") == ["HEME_METABOLISM"]
    with pytest.raises(ValueError, match="NOT_A_SET"):
        pl.impact_heatmap(adata_impact, view="paper", gene_sets=["NOT_A_SET"], show=False)
    with pytest.raises(ValueError, match="threshold"):
        pl.impact_heatmap(adata_impact, view="paper", threshold=1.0, show=False)


def test_impact_heatmap_draws_into_given_ax(adata_impact):
    _, ax = plt.subplots()
    assert pl.impact_heatmap(adata_impact, view="paper", ax=ax, show=False) is ax


def test_impact_heatmap_significant_view_draws_only_calls_of_live_nodes(adata_impact):
    ax = pl.impact_heatmap(adata_impact, strip_prefix=False, show=False)  # the default view
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    assert set(rows) == {"node_0", "node_1", "node_2", "node_3", "node_4", "node_6"}  # no dead node_7, no empty rows
    assert set(cols) == set(SETS)  # every set has a call in this fixture
    result = adata_impact.uns["scdeconv_impact"]
    drawn = ax.images[0].get_array()
    called = result["fdr"].loc[rows, cols].to_numpy() < 0.05
    np.testing.assert_array_equal(~np.ma.getmaskarray(drawn), called)
    np.testing.assert_allclose(drawn.compressed(), result["impact"].loc[rows, cols].to_numpy()[called])
    # The colour bar spans the drawn values (0 to the largest call), not a fixed 0..1 of scaled scores.
    assert ax.images[0].get_clim() == (0.0, 1.0)
    stars = sorted(t.get_text() for t in ax.texts)
    assert stars == sorted(["***"] * int((result["fdr"].loc[rows, cols] < 0.001).to_numpy().sum()) + ["*"])
    # Each set sits under the node where it is strongest: the diagonal reads top left to bottom right.
    peak_rows = [rows.index(result["impact"].loc[rows, c].idxmax()) for c in cols]
    assert peak_rows == sorted(peak_rows)


def test_impact_heatmap_significant_view_scales_colour_to_the_data(adata_impact):
    result = adata_impact.uns["scdeconv_impact"]
    result["impact"] = result["impact"] * 7.5  # an enrichment z, not a scaled score
    ax = pl.impact_heatmap(adata_impact, show=False)
    assert ax.images[0].get_clim() == (0.0, 7.5)
    colorbars = [a for a in ax.figure.axes if a is not ax]
    assert colorbars[0].get_ylabel() == "impact"
    ax = pl.impact_heatmap(adata_impact, fdr=0.01, show=False)  # the stricter level drops node_6's one-star call
    assert "node_6" not in _tick_labels(ax, "y") and "*" not in [t.get_text() for t in ax.texts]


def test_impact_heatmap_significant_view_without_calls_says_so(adata_impact):
    adata_impact.uns["scdeconv_impact"]["fdr"].loc[:] = 0.9
    ax = pl.impact_heatmap(adata_impact, show=False)
    assert not ax.images and len(ax.texts) == 1 and "No (node, gene set) pair at FDR < 0.05" in ax.texts[0].get_text()
    del adata_impact.uns["scdeconv_impact"]["fdr"]
    with pytest.raises(KeyError, match="view='paper'"):
        pl.impact_heatmap(adata_impact, show=False)
    with pytest.raises(ValueError, match="view must be one of 'significant', 'paper'"):
        pl.impact_heatmap(adata_impact, view="scaled", show=False)


def test_impact_heatmap_significant_view_marks_the_sets_of_a_nodes_module(adata_impact):
    """A node named by its co-expression module (no set call) is drawn, its module's sets marked ``m``."""
    result = adata_impact.uns["scdeconv_impact"]
    nodes = result["impact"].index
    modules = ["module_0", "module_1"]
    # node_5 (no set call) carries module_0 (HEME + E2F) best; module_1 is called on it too but weaker.
    # node_7 is dead: its module is never drawn. node_0 carries module_0 on top of its HEME call.
    fdr = pd.DataFrame(0.9, index=nodes, columns=modules)
    null_z = pd.DataFrame(0.0, index=nodes, columns=modules)
    fdr.loc[["node_5", "node_7", "node_0"], "module_0"] = 0.001
    fdr.loc["node_5", "module_1"] = 0.01
    null_z.loc[["node_5", "node_7", "node_0"], "module_0"] = 6.0
    null_z.loc["node_5", "module_1"] = 3.0
    result["module_fdr"], result["module_null_z"] = fdr, null_z
    result["module_sets"] = pd.DataFrame(
        {"all_sets": ["HALLMARK_HEME_METABOLISM; HALLMARK_E2F_TARGETS", "HALLMARK_HYPOXIA"]}, index=modules
    )
    ax = pl.impact_heatmap(adata_impact, strip_prefix=False, show=False)
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    assert "node_5" in rows and "node_7" not in rows
    drawn = ax.images[0].get_array()
    shown = ~np.ma.getmaskarray(drawn)
    i = rows.index("node_5")
    drawn_sets = {c for c, on in zip(cols, shown[i], strict=True) if on}
    assert drawn_sets == {"HALLMARK_HEME_METABOLISM", "HALLMARK_E2F_TARGETS"}
    marks = [t for t in ax.texts if t.get_text() == "m"]
    positions = {(round(t.get_position()[1]), round(t.get_position()[0])) for t in marks}
    # node_5's two module sets, and node_0's E2F (its HEME cell keeps its stars: the set call is shown).
    j_heme, j_e2f = cols.index("HALLMARK_HEME_METABOLISM"), cols.index("HALLMARK_E2F_TARGETS")
    assert positions == {(i, j_heme), (i, j_e2f), (rows.index("node_0"), j_e2f)}
    assert "m: in the node's co-expression module" in ax.get_title()
    # modules=False: set calls only, as before.
    ax = pl.impact_heatmap(adata_impact, strip_prefix=False, modules=False, show=False)
    assert "node_5" not in _tick_labels(ax, "y") and not [t for t in ax.texts if t.get_text() == "m"]


# group_diff -------------------------------------------------------------------------------------


def test_group_diff_significant_view_draws_tested_calls_symmetric(adata_diff):
    ax = pl.group_diff(adata_diff, strip_prefix=False, show=False)
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    live_calls = {key for key in DIFF_CALLS if key[0] != "node_7"}
    assert set(rows) == {n for n, _ in live_calls} and set(cols) == {s for _, s in live_calls}
    drawn = ax.images[0].get_array()
    diff = adata_diff.uns["scdeconv_group_diff"]["diff"].loc[rows, cols]
    expected = np.array([[(r, c) in live_calls for c in cols] for r in rows])
    np.testing.assert_array_equal(~np.ma.getmaskarray(drawn), expected)
    np.testing.assert_allclose(drawn.compressed(), diff.to_numpy()[expected])
    # Symmetric around 0 and scaled to the largest drawn difference, not fixed at +-1.
    span = np.abs(diff.to_numpy()[expected]).max()
    np.testing.assert_allclose(ax.images[0].get_clim(), (-span, span))
    assert sorted(t.get_text() for t in ax.texts) == ["*", "**", "***"]  # FDR 0.02, 0.004, 0.0001
    assert ax.get_title().startswith("MEP vs rest")
    effect = pl.group_diff(adata_diff, values="effect", show=False)
    np.testing.assert_allclose(effect.images[0].get_clim(), (-2 * span, 2 * span))


def test_group_diff_significant_view_without_calls_says_so(adata_diff):
    adata_diff.uns["scdeconv_group_diff"]["node_set_tests"]["fdr"].loc[:] = 0.7
    ax = pl.group_diff(adata_diff, show=False)
    assert not ax.images and "No (node, gene set) difference at FDR < 0.05" in ax.texts[0].get_text()
    del adata_diff.uns["scdeconv_group_diff"]["node_set_tests"]
    with pytest.raises(KeyError, match="view='paper'"):
        pl.group_diff(adata_diff, show=False)


def test_group_diff_overlay_masks_cells_below_threshold(adata_diff):
    ax = pl.group_diff(adata_diff, view="paper", strip_prefix=False, show=False)
    assert isinstance(ax, Axes)
    assert ax.get_title() == "MEP vs rest"
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    # same layout as the general heatmap
    general = pl.impact_heatmap(adata_diff, key="my_impact", view="paper", strip_prefix=False, show=False)
    assert rows == _tick_labels(general, "y")
    assert cols == _tick_labels(general, "x")

    background = np.asarray(ax.images[0].get_array())
    overlay = ax.images[1].get_array()
    expected_background = heatmap_table(adata_diff, key="my_impact").loc[rows, cols].to_numpy()
    np.testing.assert_allclose(background, expected_background)
    hidden = ~(expected_background > 0.85)
    np.testing.assert_array_equal(np.ma.getmaskarray(overlay), hidden)
    assert 0 < (~hidden).sum() < hidden.size  # the mask does something in this fixture
    scaled = adata_diff.uns["scdeconv_group_diff"]["scaled_diff"].loc[rows, cols].to_numpy()
    np.testing.assert_allclose(overlay.compressed(), scaled[~hidden])
    image = ax.images[1]
    assert image.get_clim() == (-1.0, 1.0)
    assert image.get_cmap().name == "RdBu_r"


def test_group_diff_threshold_changes_mask(adata_diff):
    low = pl.group_diff(adata_diff, view="paper", threshold=0.5, show=False).images[1].get_array()
    high = pl.group_diff(adata_diff, view="paper", threshold=0.85, show=False).images[1].get_array()
    assert low.count() > high.count()


def test_group_diff_fdr_keeps_only_tested_differences(adata_diff):
    # A hand-made FDR table: significant on the diagonal only; the overlay must show exactly the
    # cells that are both above the paper's threshold and significant, each marked by a dot.
    diff = adata_diff.uns["scdeconv_group_diff"]["diff"]
    fdr = pd.DataFrame(1.0, index=diff.index, columns=diff.columns)
    for i in range(min(fdr.shape)):
        fdr.iloc[i, i] = 0.001
    adata_diff.uns["scdeconv_group_diff"]["node_set_tests"] = {"fdr": fdr}
    ax = pl.group_diff(adata_diff, view="paper", fdr=0.05, strip_prefix=False, threshold=0.0, show=False)
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    drawn = ~np.ma.getmaskarray(ax.images[1].get_array())
    background = heatmap_table(adata_diff, key="my_impact").loc[rows, cols].to_numpy()
    expected = (fdr.loc[rows, cols].to_numpy() < 0.05) & (background > 0.0)
    np.testing.assert_array_equal(drawn, expected)
    assert expected.any()
    assert len(ax.collections[0].get_offsets()) == expected.sum()
    del adata_diff.uns["scdeconv_group_diff"]["node_set_tests"]
    with pytest.raises(KeyError, match="node_set_tests"):
        pl.group_diff(adata_diff, view="paper", fdr=0.05, show=False)


def test_group_diff_missing_impact_names_the_call(adata_diff):
    del adata_diff.uns["my_impact"]
    with pytest.raises(KeyError, match=r"sd\.tl\.module_impact"):
        pl.group_diff(adata_diff, view="paper", show=False)


# training_history -------------------------------------------------------------------------------


def test_training_history(adata_model):
    ax = pl.training_history(adata_model, log=True, show=False)
    assert isinstance(ax, Axes)
    assert ax.get_xlabel() == "epoch"
    assert "loss" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["train", "validation"]
    best = [line for line in ax.get_lines() if line.get_label().startswith("best epoch")]
    assert len(best) == 1 and list(best[0].get_xdata()) == [6, 6]


# save and errors --------------------------------------------------------------------------------


@pytest.fixture
def figdir(tmp_path):
    """scanpy's figure folder and default format, set for one test (settings are metaclass properties)."""
    import scanpy as sc

    names = ("figdir", "file_format_figs", "plot_suffix")
    before = {name: getattr(sc.settings, name) for name in names}
    sc.settings.figdir, sc.settings.file_format_figs, sc.settings.plot_suffix = tmp_path / "figures", "pdf", ""
    yield tmp_path / "figures"
    for name, value in before.items():
        setattr(sc.settings, name, value)


def test_save_true_and_str_follow_scanpy(adata_impact, adata_model, figdir, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="scdeconv"):
        pl.impact_heatmap(adata_impact, show=False, save=True)
        pl.impact_heatmap(adata_impact, show=False, save="_dot.png")  # scanpy: figdir / "<plot>_dot.png"
        pl.training_history(adata_model, show=False, save="_run2")  # no extension: file_format_figs
    written = {p.name for p in figdir.iterdir()}
    assert written == {"impact_heatmap.pdf", "impact_heatmap_dot.png", "training_history_run2.pdf"}
    assert all(p.stat().st_size > 0 for p in figdir.iterdir())
    assert f"Saved figure to {figdir / 'impact_heatmap_dot.png'}" in caplog.text
    assert plt.get_fignums() == []  # saved, not shown figures are closed


def test_save_path_is_an_exact_file(adata_impact, adata_model, tmp_path, figdir):
    path = tmp_path / "out" / "heat.png"
    assert pl.impact_heatmap(adata_impact, show=False, save=path) is not None
    assert path.stat().st_size > 0
    pl.training_history(adata_model, show=False, save=tmp_path / "history")  # no extension: file_format_figs
    assert (tmp_path / "history.pdf").exists()
    assert not figdir.exists()


def test_save_str_with_a_folder_says_to_pass_a_path(adata_impact, tmp_path, figdir):
    with pytest.raises(ValueError, match=r"save=pathlib\.Path\("):
        pl.impact_heatmap(adata_impact, show=False, save=str(tmp_path / "heat.png"))
    assert not figdir.exists() and not (tmp_path / "heat.png").exists()


def test_plot_suffix_and_scanpy_extension_rule(figdir):
    import scanpy as sc

    from scdeconv.pl._utils import _save_path

    sc.settings.plot_suffix = "_v1"  # restored by the fixture
    fig = plt.figure()
    assert _save_path(True, "umap", fig) == figdir / "umap_v1.pdf"
    assert _save_path("_dot.svg", "umap", fig) == figdir / "umap_dot_v1.svg"
    assert _save_path("_dot.SVG", "umap", fig) == figdir / "umap_dot_v1.SVG"
    assert _save_path("_cells.2", "umap", fig) == figdir / "umap_cells.2_v1.pdf"  # not a format: kept


@pytest.mark.parametrize(
    ("plot", "call"),
    [
        (pl.impact_heatmap, r"sd\.tl\.module_impact\(adata\)"),
        (pl.group_diff, r"sd\.tl\.group_diff"),
        (pl.group_diff_dotplot, r"sd\.tl\.group_diff"),
        (pl.training_history, r"sd\.tl\.train_autoencoder\(adata\)"),
        (pl.embedding_comparison, r"sd\.tl\.train_autoencoder\(adata\)"),
    ],
)
def test_missing_key_names_the_call(plot, call):
    with pytest.raises(KeyError, match=call):
        plot(ad.AnnData(np.zeros((3, 2), dtype=np.float32)), show=False)


# embedding_comparison ---------------------------------------------------------------------------


@pytest.fixture
def adata_counts() -> ad.AnnData:
    rng = np.random.default_rng(0)
    n_cells, n_genes = 80, 30
    groups = np.repeat(["MEP", "GMP"], n_cells // 2)
    mep_genes = np.arange(n_genes) < n_genes // 2  # MEP cells express the first half of the genes more
    rates = np.where((groups[:, None] == "MEP") == mep_genes[None, :], 4.0, 0.5) * rng.uniform(0.5, 2.0, (1, n_genes))
    counts = rng.poisson(rates).astype(np.float32)
    var_names = [f"g{i}" for i in range(n_genes)]
    adata = ad.AnnData(counts, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]))
    adata.var_names = var_names
    adata.obs["cell_type"] = groups.astype(object)  # strings: scanpy would make them categorical
    adata.obsm["X_scdeconv"] = (rng.normal(size=(n_cells, 8)) + (groups == "MEP")[:, None] * 3).astype(np.float32)
    adata.uns["scdeconv"] = {"params": {"n_latent": 8}, "var_names": np.array(var_names[:20])}
    return adata


def _first_two_columns(tmp, *, use_rep, n_neighbors, seed, neighbors_kwargs=None, umap_kwargs=None):
    """Stand-in for the kNN + UMAP step (numba compilation takes ~10 s): 2 columns of ``use_rep``."""
    return np.asarray(tmp.obsm[use_rep])[:, :2]


def test_embedding_comparison_changes_only_documented_slots(adata_counts, monkeypatch):
    # normalisation, PCA and sc.pl.embedding run for real; only kNN + UMAP on the scratch copy is faked
    monkeypatch.setattr(_embedding_comparison, "_umap", _first_two_columns)
    x_before = adata_counts.X.copy()
    obs_before = adata_counts.obs.copy()
    uns_before, obsm_before = set(adata_counts.uns), set(adata_counts.obsm)

    axes = pl.embedding_comparison(adata_counts, color="cell_type", show=False)

    assert len(axes) == 2 and all(isinstance(a, Axes) for a in axes)
    assert [a.get_title() for a in axes] == ["input: cell_type", "representation: cell_type"]
    np.testing.assert_array_equal(adata_counts.X, x_before)
    pd.testing.assert_frame_equal(adata_counts.obs, obs_before)
    assert set(adata_counts.uns) == uns_before
    assert set(adata_counts.obsm) - obsm_before == {"X_umap_input", "X_umap_scdeconv"}
    assert adata_counts.obsm["X_umap_input"].shape == (adata_counts.n_obs, 2)
    assert not adata_counts.obsp.keys()


@pytest.mark.slow
def test_embedding_comparison_real_umap_separates_groups(adata_counts):
    pl.embedding_comparison(adata_counts, show=False)
    assert not adata_counts.obsp.keys() and "neighbors" not in adata_counts.uns
    mep = (adata_counts.obs["cell_type"] == "MEP").to_numpy()
    for basis in ("X_umap_input", "X_umap_scdeconv"):
        coords = adata_counts.obsm[basis]
        assert np.isfinite(coords).all()
        gap = np.linalg.norm(coords[mep].mean(0) - coords[~mep].mean(0))
        spread = max(coords[mep].std(0).max(), coords[~mep].std(0).max())
        assert gap > 2 * spread


def _cached(adata: ad.AnnData) -> ad.AnnData:
    rng = np.random.default_rng(2)
    adata.obsm["X_umap_input"] = rng.normal(size=(adata.n_obs, 2))
    adata.obsm["X_umap_scdeconv"] = rng.normal(size=(adata.n_obs, 2))
    return adata


def test_embedding_comparison_reuses_cache_unless_recompute(adata_counts, monkeypatch):
    adata = _cached(adata_counts)
    calls = []

    def fake(adata, **kwargs):
        calls.append(kwargs)
        return np.zeros((adata.n_obs, 2))

    monkeypatch.setattr(_embedding_comparison, "input_umap", fake)
    monkeypatch.setattr(_embedding_comparison, "representation_umap", fake)
    cached = adata.obsm["X_umap_input"].copy()
    pl.embedding_comparison(adata, show=False)
    assert calls == []
    np.testing.assert_array_equal(adata.obsm["X_umap_input"], cached)
    axes = pl.embedding_comparison(adata, color=["cell_type", "g3"], recompute=True, show=False)
    assert len(calls) == 2
    assert len(axes) == 4
    assert [a.get_title() for a in axes[:2]] == ["input: cell_type", "representation: cell_type"]
    assert not np.any(adata.obsm["X_umap_input"])


def test_embedding_comparison_ax_and_save(adata_counts, tmp_path):
    adata = _cached(adata_counts)
    _, (left, right) = plt.subplots(1, 2)
    axes = pl.embedding_comparison(adata, ax=[left, right], show=False, save=tmp_path / "umaps.png")
    assert axes == [left, right]
    assert [a.get_title() for a in axes] == ["input", "representation"]
    assert (tmp_path / "umaps.png").exists()
    with pytest.raises(ValueError, match="two per colour"):
        pl.embedding_comparison(adata, ax=[left], show=False)


def test_looks_like_counts():
    assert _embedding_comparison.looks_like_counts(np.array([[0.0, 2.0], [5.0, 1.0]]))
    assert not _embedding_comparison.looks_like_counts(np.log1p(np.array([[0.0, 2.0], [5.0, 1.0]])))


def test_impact_dotplot_and_node_genes_plot(counts_factory):
    import scdeconv as sd

    adata = counts_factory(n_cells=120, seed=2)
    sd.tl.train_autoencoder(adata, n_latent=6, n_hidden=(12,), max_epochs=3, batch_size=32, progress=False)
    sd.tl.module_impact(adata, n_null=200, progress=False)
    ax = sd.pl.impact_dotplot(adata, fdr=1.0, show=False)
    fdr = adata.uns["scdeconv_impact"]["fdr"]
    live = ~adata.uns["scdeconv_impact"]["node_stats"]["dead"].to_numpy()
    xlabels, ylabels = _tick_labels(ax, "x"), _tick_labels(ax, "y")
    assert set(xlabels) <= set(fdr.index[live]) and xlabels
    assert all(("HALLMARK_" + y) in fdr.columns for y in ylabels)
    dots = ax.collections[0]
    assert len(dots.get_offsets()) == len(xlabels) * len(ylabels)
    # Size grows with -log10 FDR.
    shown = fdr.loc[xlabels, ["HALLMARK_" + y for y in ylabels]].T.to_numpy().ravel()
    order = np.argsort(shown)
    assert np.all(np.diff(dots.get_sizes()[order]) <= 1e-9)
    assert ax.figure.axes[-1].get_ylabel() == "null_z"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["FDR 0.05", "FDR 0.01", "FDR 0.001"]
    ax = sd.pl.impact_dotplot(adata, gene_sets=["HEME_METABOLISM"], nodes=["node_0", "node_1"], show=False)
    assert _tick_labels(ax, "y") == ["HEME_METABOLISM"] and _tick_labels(ax, "x") == ["node_0", "node_1"]
    median = sd.tl.module_impact(adata, method="guided", score="median", copy=True, progress=False)
    with pytest.raises(KeyError, match="no 'fdr'"):
        sd.pl.impact_dotplot(median, show=False)
    with pytest.raises(KeyError, match="module_impact"):
        sd.pl.impact_dotplot(adata, key="missing", show=False)
    sd.tl.node_genes(adata, n_top=6, progress=False)
    axes = sd.pl.node_genes(adata, nodes=["node_0", "node_2"], n_genes=4, show=False)
    assert [a.get_title() for a in axes] == ["node_0", "node_2"]
    names = adata.uns["scdeconv_node_genes"]["names"]
    assert [t.get_text() for t in axes[1].texts] == list(names["node_2"][:4])
    _fig, own = plt.subplots()
    assert sd.pl.node_genes(adata, nodes="node_1", ax=own, show=False) == [own]
    with pytest.raises(ValueError, match="one Axes per node"):
        sd.pl.node_genes(adata, nodes=["node_0", "node_1"], ax=own, show=False)
    assert len(sd.pl.node_genes(adata, show=False)) == 6


def test_embedding_comparison_forwards_neighbors_and_umap_settings(adata_counts, monkeypatch):
    import scanpy as sc

    seen = []

    def neighbors(tmp, **kwargs):
        seen.append(("neighbors", kwargs))

    def umap(tmp, **kwargs):
        seen.append(("umap", kwargs))
        tmp.obsm["X_umap"] = np.zeros((tmp.n_obs, 2))

    monkeypatch.setattr(sc.pp, "neighbors", neighbors)
    monkeypatch.setattr(sc.tl, "umap", umap)
    pl.embedding_comparison(
        adata_counts, neighbors_kwargs={"transformer": "sklearn"}, umap_kwargs={"maxiter": 200}, show=False
    )
    assert [name for name, _ in seen] == ["neighbors", "umap", "neighbors", "umap"]  # input, then representation
    assert all(kw["transformer"] == "sklearn" for name, kw in seen if name == "neighbors")
    assert all(kw["maxiter"] == 200 and kw["random_state"] == 0 for name, kw in seen if name == "umap")


# group1="all" results: one category's panel e, and the groups x sets dot plot ------------------

CATEGORIES = ["MEP", "GMP", "Mo"]


@pytest.fixture
def adata_all(adata_diff) -> ad.AnnData:
    """A hand-made group1="all" result: MEP's comparison is adata_diff's, GMP's has no call, Mo's flips MEP's.

    Set tests (long, a ``group`` column): MEP calls HEME (FDR 0.001, effect 0.8) and IFNG (0.02,
    -0.3); Mo calls IFNG (0.0005, 0.9); E2F is never called (0.5); GMP calls nothing.
    """
    two = adata_diff.uns.pop("scdeconv_group_diff")
    flipped = {name: -table if name in ("diff", "scaled_diff") else table for name, table in two.items()}
    quiet = {"fdr": two["node_set_tests"]["fdr"] * 0 + 0.9, "effect": two["node_set_tests"]["effect"] * 0}
    per_group = {
        "MEP": two,
        "GMP": {**two, "node_set_tests": quiet},
        "Mo": {**flipped, "node_set_tests": {k: -v if k == "effect" else v for k, v in two["node_set_tests"].items()}},
    }
    tables = ("impact_group1", "impact_group2", "diff", "scaled_diff", "node_set_tests")
    entry = {t: {g: per_group[g][t] for g in CATEGORIES} for t in tables}
    rows = []
    calls = {("MEP", SETS[0]): (0.001, 0.8), ("MEP", SETS[3]): (0.02, -0.3), ("Mo", SETS[3]): (0.0005, 0.9)}
    for group in CATEGORIES:
        for gene_set in SETS:
            fdr, effect = calls.get((group, gene_set), (0.5, 0.05 if gene_set == SETS[1] else -0.02))
            rows.append({"group": group, "gene_set": gene_set, "effect": effect, "fdr": fdr})
    entry["set_tests"] = pd.DataFrame(rows)
    entry["contrasts"] = pd.DataFrame(
        {"n_cells1": [40, 30, 30], "n_cells2": [60, 70, 70]}, index=pd.Index(CATEGORIES, name="group")
    )
    entry["params"] = {**two["params"], "group1": "all", "group2": "rest", "n_null": 1000, "replicates": "cells"}
    entry["params"] = {k: v for k, v in entry["params"].items() if k not in ("n_cells1", "n_cells2")}
    adata_diff.uns["scdeconv_group_diff"] = entry
    adata_diff.uns["two_groups"] = two
    return adata_diff


def test_group_diff_of_all_groups_needs_group_and_names_the_categories(adata_all):
    with pytest.raises(ValueError, match=r"group=<one of them>.*'MEP'") as info:
        pl.group_diff(adata_all, show=False)
    assert all(name in str(info.value) for name in CATEGORIES) and "group_diff_dotplot" in str(info.value)
    with pytest.raises(ValueError, match=r"not a category.*\['MEP', 'GMP', 'Mo'\]"):
        pl.group_diff(adata_all, group="Ery", show=False)
    with pytest.raises(ValueError, match="leave group=None"):
        pl.group_diff(adata_all, key="two_groups", group="GMP", show=False)


def test_group_diff_group_draws_that_category_as_a_two_group_result(adata_all):
    # MEP's comparison of the "all" result holds the tables of the two-group fixture: the same panel.
    for view in ("significant", "paper"):
        one = pl.group_diff(adata_all, group="MEP", view=view, strip_prefix=False, show=False)
        two = pl.group_diff(adata_all, key="two_groups", view=view, strip_prefix=False, show=False)
        assert _tick_labels(one, "y") == _tick_labels(two, "y") and _tick_labels(one, "x") == _tick_labels(two, "x")
        for mine, theirs in zip(one.images, two.images, strict=True):
            np.testing.assert_array_equal(np.ma.getmaskarray(mine.get_array()), np.ma.getmaskarray(theirs.get_array()))
            np.testing.assert_allclose(np.ma.filled(mine.get_array(), 0), np.ma.filled(theirs.get_array(), 0))
        assert one.get_title().split("\n")[0] == "MEP vs rest"
    assert pl.group_diff(adata_all, key="two_groups", group="MEP", show=False).get_title().startswith("MEP vs rest")
    quiet = pl.group_diff(adata_all, group="GMP", show=False)
    assert not quiet.images and "No (node, gene set) difference" in quiet.texts[0].get_text()
    mo = pl.group_diff(adata_all, group="Mo", show=False)
    assert mo.get_title().startswith("Mo vs rest")


def test_group_diff_dotplot_sizes_and_colours_follow_the_set_tests(adata_all):
    from scdeconv.pl._dots import dot_sizes, size_cap

    ax = pl.group_diff_dotplot(adata_all, strip_prefix=False, show=False)
    rows, cols = _tick_labels(ax, "y"), _tick_labels(ax, "x")
    assert rows == CATEGORIES  # every category, in the stored order
    assert cols == [SETS[0], SETS[3]]  # called somewhere; HEME under MEP, IFNG under Mo (its strongest call)
    long = adata_all.uns["scdeconv_group_diff"]["set_tests"].set_index(["group", "gene_set"])
    expected = [(g, s) for g in rows for s in cols]
    dots = ax.collections[0]
    np.testing.assert_allclose(dots.get_offsets(), [(j, i) for i in range(len(rows)) for j in range(len(cols))])
    np.testing.assert_allclose(dots.get_array(), [long.loc[k, "effect"] for k in expected])
    fdrs = np.array([long.loc[k, "fdr"] for k in expected])
    np.testing.assert_allclose(dots.get_sizes(), dot_sizes(fdrs, size_cap(1000), 120))
    sizes = dict(zip(expected, dots.get_sizes(), strict=True))
    assert sizes[("Mo", SETS[3])] == pytest.approx(122.0)  # FDR 0.0005 is past the floor 1/1001: capped
    assert sizes[("MEP", SETS[0])] == pytest.approx(2 + 120 * -np.log10(0.001) / np.log10(1001))
    assert sizes[("GMP", SETS[0])] < sizes[("MEP", SETS[3])] < sizes[("MEP", SETS[0])]
    # Colour: diverging, symmetric around 0, spanning the largest |effect| shown.
    assert dots.get_clim() == pytest.approx((-0.9, 0.9))
    assert dots.get_cmap().name == "RdBu_r"
    edges = dots.get_edgecolors()
    called = [long.loc[k, "fdr"] < 0.05 for k in expected]
    np.testing.assert_array_equal(edges[:, 3] > 0, called)  # calls get a black edge
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["FDR 0.05", "FDR 0.01", "FDR 0.001"]
    assert "effect" in ax.figure.axes[-1].get_ylabel()
    assert ax.get_title() == "gene-set activity: each cell_type vs rest"
    short = pl.group_diff_dotplot(adata_all, groups=["Mo", "MEP"], gene_sets=["E2F_TARGETS"], show=False)
    assert _tick_labels(short, "y") == ["Mo", "MEP"] and _tick_labels(short, "x") == ["E2F_TARGETS"]
    with pytest.raises(ValueError, match="not compared"):
        pl.group_diff_dotplot(adata_all, groups=["Ery"], show=False)


def test_group_diff_dotplot_without_calls_says_so(adata_all, tmp_path):
    tests = adata_all.uns["scdeconv_group_diff"]["set_tests"]
    tests["fdr"] = 0.5
    path = tmp_path / "dots.png"
    ax = pl.group_diff_dotplot(adata_all, show=False, save=path)
    assert not ax.collections and "No gene set called at FDR < 0.05" in ax.texts[0].get_text()
    assert path.stat().st_size > 0
    # A two-group result is one row.
    one = pl.group_diff_dotplot(adata_all, key="two_groups", fdr=1.1, show=False)
    assert _tick_labels(one, "y") == ["MEP"] and len(_tick_labels(one, "x")) == len(SETS)


def test_group_diff_dotplot_null_floor_sets_full_size(adata_all):
    adata_all.uns["scdeconv_group_diff"]["params"]["n_null"] = 200
    ax = pl.group_diff_dotplot(adata_all, show=False)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["FDR 0.05", "FDR 0.01", "FDR 0.005 (floor)"]
    assert ax.collections[0].get_sizes().max() == pytest.approx(122.0)


def test_group_diff_dotplot_diagonal_order():
    from scdeconv.pl._group_diff_dotplot import diagonal_order

    effect = pd.DataFrame(
        [[0.2, -0.9, 0.5, 0.1], [0.7, 0.0, 0.3, -0.4]], index=["a", "b"], columns=["s0", "s1", "s2", "s3"]
    )
    called = effect.abs() >= 0.2
    # Up most in a: s2 (0.5 > 0.3); in b: s0 (0.7 > 0.2); down only: s1 (a, 0.9), s3 (b, 0.4).
    assert diagonal_order(effect, called) == ["s2", "s0", "s1", "s3"]


def test_all_groups_plots_on_a_trained_model(trained_adata, tmp_path):
    import scdeconv as sd

    adata = trained_adata.copy()
    sd.tl.group_diff(adata, "group", "all", progress=False, key_added="every")
    adata.write_h5ad(tmp_path / "every.h5ad")
    adata = ad.read_h5ad(tmp_path / "every.h5ad")  # what users plot is often read back
    assert isinstance(pl.group_diff(adata, key="every", group="mono", show=False), Axes)
    assert isinstance(pl.group_diff(adata, key="every", group="ery", view="paper", show=False), Axes)
    ax = pl.group_diff_dotplot(adata, key="every", fdr=1.1, show=False)
    assert _tick_labels(ax, "y") == ["ery", "mono"]
    long = adata.uns["every"]["set_tests"]
    assert len(ax.collections[0].get_offsets()) == 2 * long["gene_set"].nunique()
