"""Bad input gets a clear error: one table, case -> call -> exception -> message.

Every message must name the problem and the fix; the regexes check both. Below the table: the
input forms that must be accepted and agree (dense/sparse, float32/float64/int, categorical/
string/int groupby) and the ``key_added`` collision policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData, read_h5ad
from conftest import make_counts
from scipy import sparse

import scdeconv as sd
from scdeconv.genesets import hallmark

FAST = dict(n_latent=4, n_hidden=(8,), max_epochs=2, batch_size=16, progress=False)


# --- helpers building the bad inputs -------------------------------------------------------------
def _counts(n_cells: int = 60) -> AnnData:
    return make_counts(n_cells=n_cells)


def _dense(adata: AnnData, dtype=np.float64) -> AnnData:
    adata.X = adata.X.toarray().astype(dtype)
    return adata


def _with_x(change: Callable[[np.ndarray], np.ndarray | None]) -> AnnData:
    """Dense float64 counts changed in place, or replaced by what ``change`` returns."""
    adata = _dense(_counts())
    changed = change(adata.X)
    if changed is not None:
        adata.X = changed
    return adata


def _human(adata: AnnData) -> AnnData:
    """The same counts with human (upper-case) symbols."""
    adata.var_names = adata.var_names.str.upper()
    return adata


def _write(tmp_path, text: str | bytes, name: str = "sets.gmt"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _backed(tmp_path) -> AnnData:
    _counts().write_h5ad(tmp_path / "counts.h5ad")
    return read_h5ad(tmp_path / "counts.h5ad", backed="r")


def _backed_trained(trained: AnnData, tmp_path) -> AnnData:
    trained.write_h5ad(tmp_path / "trained.h5ad")
    return read_h5ad(tmp_path / "trained.h5ad", backed="r")


def _trained_with(trained: AnnData, change: Callable[[AnnData], None]) -> AnnData:
    adata = trained.copy()
    change(adata)
    return adata


def _set_obs(column: str, values) -> Callable[[AnnData], None]:
    def change(adata: AnnData) -> None:
        adata.obs[column] = values(adata.n_obs) if callable(values) else values

    return change


def _corrupt_weights(adata: AnnData) -> None:
    weights = adata.uns["scdeconv"]["weights"]
    name = next(iter(weights))
    weights[name] = np.array([object()] * weights[name].size, dtype=object)


def _wrong_shape_weights(adata: AnnData) -> None:
    weights = adata.uns["scdeconv"]["weights"]
    name = next(iter(weights))
    weights[name] = weights[name][:, :-1].copy()


def _impact(adata, **kwargs):
    return sd.tl.module_impact(adata, n_null=0, progress=False, copy=True, **kwargs)


@dataclass
class Case:
    id: str
    call: Callable  # (trained_adata, tmp_path) -> None; must not modify trained_adata
    error: type[Exception]
    match: str  # regex: names the problem ... and the fix


CASES = [
    # Counts: non-integer, negative, NaN/inf, non-numeric; the message names the layer to use.
    Case("lognormalised X", lambda t, p: sd.tl.train_autoencoder(_with_x(np.log1p), **FAST),
         ValueError, r"adata\.X contains non-integer.*layers\['counts'\]"),
    Case("lognormalised layer", lambda t, p: sd.pp.select_genes(
        (a := _counts(), a.layers.__setitem__("counts", a.X.log1p()), a)[-1], layer="counts"),
        ValueError, r"adata\.layers\['counts'\] contains non-integer.*layer="),
    Case("negative values", lambda t, p: sd.tl.train_autoencoder(_with_x(lambda x: x.__isub__(1)), **FAST),
         ValueError, r"negative values.*layer='counts'"),
    Case("NaN", lambda t, p: sd.tl.train_autoencoder(_with_x(lambda x: x.__setitem__((3, 4), np.nan)), **FAST),
         ValueError, r"1 NaN or infinite.*drop those cells/genes"),
    Case("inf", lambda t, p: sd.pp.select_genes(_with_x(lambda x: x.__setitem__((0, 1), np.inf))),
         ValueError, r"NaN or infinite.*layer="),
    Case("non-numeric X", lambda t, p: sd.tl.train_autoencoder(
        (a := _counts(), setattr(a, "X", a.X.toarray().astype(str).astype(object)), a)[-1], **FAST),
        TypeError, r"dtype object; raw counts must be numeric.*astype"),
    Case("missing layer", lambda t, p: sd.tl.train_autoencoder(_counts(), layer="counts", **FAST),
         KeyError, r"Layer 'counts' not found.*Pass one of them"),
    Case("counts changed to non-integer after training", lambda t, p: _impact(
        _trained_with(t, lambda a: setattr(a, "X", a.X * 0.5))), ValueError, r"non-integer.*layer="),
    # Gene symbols.
    Case("empty gene symbol", lambda t, p: sd.tl.train_autoencoder(
        (a := _counts(), setattr(a, "var_names", ["", *a.var_names[1:]]), a)[-1], **FAST),
        ValueError, r"1 genes have no symbol.*var_names = adata\.var\['gene_symbols'\]"),
    Case("duplicated symbols", lambda t, p: sd.pp.select_genes(
        (a := _counts(), setattr(a, "var_names", ["Gata1", "Gata1", *a.var_names[2:]]), a)[-1]),
        ValueError, r"duplicated gene symbols.*'Gata1'.*var_names_make_unique"),
    # Species and overlap.
    Case("species='human' on mouse data", lambda t, p: _impact(t, species="human"),
         ValueError, r"look mouse.*Pass species='mouse'"),
    Case("mouse sets on human data", lambda t, p: sd.pp.select_genes(_human(_counts()), gene_sets=hallmark("mouse")),
         ValueError, r"mouse symbols but the data look human.*species='mouse'"),
    Case("no overlap with the gene sets", lambda t, p: _impact(t, gene_sets={"S": ["Foo1", "Foo2", "Foo3"]}),
         ValueError, r"No gene set has at least 3 of its genes.*best overlap: 0.*Ensembl ids.*lower min_size"),
    Case("overlap below min_size", lambda t, p: _impact(t, gene_sets={"S": ["Gata1", "Klf1", "Foo3"]}, min_size=5),
         ValueError, r"No gene set has at least 5 of its genes.*lower min_size"),
    Case("species not human/mouse", lambda t, p: _impact(t, species="rat"),
         ValueError, r"species must be one of 'human', 'mouse' or None"),
    Case("gene sets of the wrong type", lambda t, p: _impact(t, gene_sets=42),
         TypeError, r"gene_sets must be 'hallmark', a GMT path, a dict"),
    # Groups.
    Case("unknown groupby column", lambda t, p: sd.tl.group_diff(t, "celltype", "ery", copy=True),
         KeyError, r"groupby 'celltype' is not a column of adata\.obs; it has \[.*'group'.*Pass one of those"),
    Case("unknown group", lambda t, p: sd.tl.group_diff(t, "group", "ERY", copy=True),
         ValueError, r"Group\(s\) \['ERY'\] not found.*\['ery', 'mono'\]\. Pass one of those"),
    Case("one-cell group", lambda t, p: sd.tl.group_diff(
        _trained_with(t, _set_obs("one", lambda n: ["a"] + ["b"] * (n - 1))), "one", "a"),
        ValueError, r"group1 has 1 cells.*at least 2.*pool categories"),
    Case("empty group (unused category)", lambda t, p: sd.tl.group_diff(
        _trained_with(t, _set_obs("g", lambda n: pd.Categorical(["a"] * n, categories=["a", "b"]))), "g", "b"),
        ValueError, r"group1 has 0 cells.*Pick a larger group"),
    Case("all-missing groupby", lambda t, p: _impact(
        _trained_with(t, _set_obs("g", lambda n: pd.Categorical([np.nan] * n, categories=[]))), groupby="g"),
        ValueError, r"has no groups \(all values missing\)\. Fill it in"),
    Case("overlapping groups", lambda t, p: sd.tl.group_diff(t, "group", ["ery", "mono"], "mono", copy=True),
         ValueError, r"share cells; give two disjoint groups"),
    # No counts at all (single empty cells and genes are left out instead); too few cells.
    Case("no counts anywhere", lambda t, p: sd.tl.train_autoencoder(_with_x(lambda x: x.__setitem__(slice(None), 0)),
         **FAST), ValueError, r"No cell has any count in adata\.X.*layer="),
    Case("batch larger than training set", lambda t, p: sd.tl.train_autoencoder(
        _counts(), **{**FAST, "batch_size": 500}),
        ValueError, r"batch_size=500 exceeds the 57 training cells.*smaller batch_size"),
    Case("too few cells for the validation split", lambda t, p: sd.tl.train_autoencoder(
        _counts()[:3].copy(), **{**FAST, "batch_size": 1, "validation_fraction": 0.5}),
        ValueError, r"3 cells are too few.*validation.*smaller validation_fraction"),
    Case("validation_fraction out of range", lambda t, p: sd.tl.train_autoencoder(
        _counts(), validation_fraction=1.5, **FAST), ValueError, r"validation_fraction must be in \(0, 1\)"),
    Case("no gene reaches min_count", lambda t, p: sd.pp.select_genes(_counts(), min_count=10**6),
         ValueError, r"No gene reaches a count of 1000000.*Lower min_count"),
    Case("mask_var not boolean", lambda t, p: sd.tl.train_autoencoder(
        (a := _counts(), a.var.__setitem__("scdeconv_selected", 1), a)[-1], **FAST),
        TypeError, r"must be boolean.*astype\(bool\).*mask_var=None"),
    # Steps out of order.
    Case("module_impact before training", lambda t, p: sd.tl.module_impact(_counts()),
         KeyError, r"Did not find a trained model.*Run `sd\.tl\.train_autoencoder\(adata\)` first"),
    Case("node_genes before training", lambda t, p: sd.tl.node_genes(_counts()),
         KeyError, r"Run `sd\.tl\.train_autoencoder\(adata\)` first"),
    Case("group_diff before module_impact", lambda t, p: sd.tl.group_diff(
        _trained_with(t, lambda a: a.uns.pop("scdeconv_impact")), "group", "ery"),
        KeyError, r"Run `sd\.tl\.module_impact\(adata\)` first"),
    Case("impact_heatmap before module_impact", lambda t, p: sd.pl.impact_heatmap(_counts(), show=False),
         KeyError, r"Did not find a module_impact result in adata\.uns\['scdeconv_impact'\]\. "
         r"Run `sd\.tl\.module_impact\(adata\)` first"),
    Case("group_diff plot before group_diff", lambda t, p: sd.pl.group_diff(_counts(), show=False),
         KeyError, r"Run `sd\.tl\.group_diff"),
    Case("training_history before training", lambda t, p: sd.pl.training_history(_counts(), show=False),
         KeyError, r"Run `sd\.tl\.train_autoencoder\(adata\)` first"),
    Case("embedding_comparison before training", lambda t, p: sd.pl.embedding_comparison(_counts(), show=False),
         KeyError, r"Did not find the representation in adata\.obsm\['X_scdeconv'\]\. "
         r"Run `sd\.tl\.train_autoencoder\(adata\)` first"),
    # The stored model and the data no longer match.
    Case("genes subset after training", lambda t, p: _impact(t[:, 5:].copy()),
         ValueError, r"5 of the \d+ genes of the model.*subset or re-indexed after training.*train again"),
    Case("genes renamed after training", lambda t, p: _impact(
        _trained_with(t, lambda a: setattr(a, "var_names", [f"g{i}" for i in range(a.n_vars)]))),
        ValueError, r"not in adata\.var_names.*train again"),
    Case("uns entry that is not a model", lambda t, p: _impact(
        _trained_with(t, lambda a: a.uns.__setitem__("scdeconv", {"params": {}}))),
        KeyError, r"is not a trained model of scdeconv.*Run `sd\.tl\.train_autoencoder"),
    Case("object array among stored weights", lambda t, p: _impact(_trained_with(t, _corrupt_weights)),
         ValueError, r"is object, not a float array.*train again"),
    Case("stored weights of the wrong shape", lambda t, p: _impact(_trained_with(t, _wrong_shape_weights)),
         ValueError, r"do not fit its params.*corrupt: train again"),
    # GMT files.
    Case("malformed GMT", lambda t, p: sd.read_gmt(_write(p, "A\tdesc\tGATA1\nB GATA1 KLF1\n")),
         ValueError, r"malformed: line\(s\) \[2\].*export the file again"),
    Case("empty GMT", lambda t, p: sd.read_gmt(_write(p, "\n\n")),
         ValueError, r"holds no gene sets.*export it again"),
    Case("binary GMT", lambda t, p: sd.read_gmt(_write(p, b"\x1f\x8b\x08\x00\xff\xfe")),
         ValueError, r"is not text.*compressed or corrupt"),
    Case("missing GMT", lambda t, p: sd.read_gmt(p / "absent.gmt"),
         FileNotFoundError, r"does not exist.*Pass the path of a \.gmt file"),
    Case("GMT without .gmt suffix", lambda t, p: sd.read_gmt(_write(p, "A\td\tX\n", "sets.txt")),
         ValueError, r"does not end in \.gmt.*Rename it"),
    Case("corrupt GMT through module_impact", lambda t, p: _impact(t, gene_sets=_write(p, "A GATA1\n")),
         ValueError, r"malformed"),
    # Backed input: not supported yet, say how to load it.
    # Backed input streams from disk (tests/test_streaming.py); what cannot stream says so.
    Case("copy=True of a backed AnnData in train_autoencoder", lambda t, p: sd.tl.train_autoencoder(
        _backed(p), copy=True, **FAST), ValueError, r"copy=True would load the backed.*to_memory\(\)"),
    Case("mode='hvg' on a backed AnnData", lambda t, p: sd.pp.select_genes(_backed(p), mode="hvg"),
         ValueError, r"mode='hvg' needs the counts in memory.*mode='geneset' or 'all'"),
    Case("copy=True of a backed AnnData in module_impact", lambda t, p: sd.tl.module_impact(
        _backed_trained(t, p), n_null=0, progress=False, copy=True), ValueError, r"copy=True would load"),
    # key_added collisions that would destroy what a step needs.
    Case("module_impact over the model", lambda t, p: _impact(t, key_added="scdeconv"),
         ValueError, r"would overwrite the trained model.*Pass another key_added"),
    Case("group_diff over its impact input", lambda t, p: sd.tl.group_diff(
        t, "group", "ery", key_added="scdeconv_impact", copy=True),
        ValueError, r"this step's own input.*Pass another key_added"),
    Case("select_genes over the model", lambda t, p: sd.pp.select_genes(t, key_added="scdeconv", copy=True),
         ValueError, r"would overwrite the trained model"),
    # Bad options.
    Case("unknown attribution method", lambda t, p: _impact(t, method="lrp"),
         ValueError, r"method must be one of .*'guided'"),
    Case("unknown score", lambda t, p: _impact(t, score="mean"), ValueError, r"score must be one of"),
    Case("unknown gene selection mode", lambda t, p: sd.pp.select_genes(_counts(), mode="top"),
         ValueError, r"mode must be one of 'geneset', 'hvg', 'all'"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, trained_adata, tmp_path):
    before = {k: (type(v), sorted(v) if isinstance(v, dict) else None) for k, v in trained_adata.uns.items()}
    with pytest.raises(case.error, match=case.match) as info:
        case.call(trained_adata, tmp_path)
    message = info.value.args[0] if info.value.args else ""
    assert "\n" not in str(message)  # one line: the CLI prints it as is
    after = {k: (type(v), sorted(v) if isinstance(v, dict) else None) for k, v in trained_adata.uns.items()}
    assert after == before  # the shared fixture was not touched by a failing call


def test_error_is_raised_before_anything_is_written(trained_adata):
    """A failing call leaves the AnnData as it was (checks run before any slot is written)."""
    adata = trained_adata.copy()
    keys = (set(adata.uns), set(adata.obsm), set(adata.obs), set(adata.var))
    with pytest.raises(ValueError, match="would overwrite the trained model"):
        sd.tl.module_impact(adata, key_added="scdeconv", progress=False)
    with pytest.raises(ValueError, match="No gene set"):
        sd.tl.module_impact(adata, gene_sets={"S": ["Foo1", "Foo2", "Foo3"]}, activity_key="new_act", key_added="new")
    assert (set(adata.uns), set(adata.obsm), set(adata.obs), set(adata.var)) == keys


# --- accepted input forms give the same results ------------------------------------------------
FORMS = {
    "csr float32": lambda a: a,
    "csc float32": lambda a: setattr(a, "X", sparse.csc_matrix(a.X)),
    "dense float32": lambda a: setattr(a, "X", a.X.toarray()),
    "dense float64": lambda a: setattr(a, "X", a.X.toarray().astype(np.float64)),
    "csr float64": lambda a: setattr(a, "X", a.X.astype(np.float64)),
    "dense int64": lambda a: setattr(a, "X", a.X.toarray().astype(np.int64)),
    "counts in a layer": lambda a: (a.layers.__setitem__("counts", a.X.copy()), setattr(a, "X", a.X.log1p())),
}


def _trained_form(form: str) -> AnnData:
    adata = _counts()
    FORMS[form](adata)
    layer = "counts" if form == "counts in a layer" else None
    sd.tl.train_autoencoder(adata, layer=layer, **FAST)
    sd.tl.module_impact(adata, n_null=0, progress=False)
    return adata


@pytest.fixture(scope="module")
def reference_form():
    return _trained_form("csr float32")


@pytest.mark.parametrize("form", [f for f in FORMS if f != "csr float32"])
def test_input_forms_agree(form, reference_form):
    """Dense or sparse, float32/float64/int, X or a layer: the same model and the same scores, bit for bit."""
    adata = _trained_form(form)
    np.testing.assert_array_equal(adata.obsm["X_scdeconv"], reference_form.obsm["X_scdeconv"])
    pd.testing.assert_frame_equal(
        adata.uns["scdeconv_impact"]["impact"], reference_form.uns["scdeconv_impact"]["impact"], check_exact=True
    )


def test_groupby_column_types_agree(trained_adata):
    """A categorical, a string (object) or an integer column: the same groups and the same results."""
    adata = trained_adata.copy()
    codes = (adata.obs["group"] == "mono").astype(int).to_numpy()
    adata.obs["as_category"] = pd.Categorical(np.where(codes, "mono", "ery"))
    adata.obs["as_string"] = np.where(codes, "mono", "ery").astype(object)
    adata.obs["as_int"] = codes
    results = {}
    for column, group in (("as_category", "ery"), ("as_string", "ery"), ("as_int", 0), ("as_int", "0")):
        sd.tl.group_diff(adata, column, group, progress=False, key_added="diff")
        results[column, group] = adata.uns["diff"]
    reference = results["as_category", "ery"]
    for other in results.values():
        pd.testing.assert_frame_equal(other["diff"], reference["diff"], check_exact=True)
        pd.testing.assert_frame_equal(other["set_tests"], reference["set_tests"], check_exact=True)
    assert adata.obs["as_string"].dtype == object and adata.obs["as_int"].dtype.kind == "i"  # not converted


def test_groupby_unused_categories_are_left_out(trained_adata, caplog):
    adata = trained_adata.copy()
    adata.obs["g"] = pd.Categorical(adata.obs["group"].astype(str), categories=["ery", "gone", "mono"])
    with caplog.at_level(logging.WARNING, logger="scdeconv"):
        sd.tl.module_impact(adata, groupby="g", n_null=0, progress=False)
    assert set(adata.uns["scdeconv_impact"]["impact_by_group"]) == {"ery", "mono"}
    assert "categories without cells, left out: ['gone']" in caplog.text


def test_human_sets_on_mouse_data_are_translated(trained_adata):
    """Human symbols on mouse data are not an error: they are mapped by one-to-one orthologs."""
    human = _impact(trained_adata, gene_sets={"HEME": hallmark("human")["HALLMARK_HEME_METABOLISM"]})
    mouse = _impact(trained_adata, gene_sets={"HEME": hallmark("mouse")["HALLMARK_HEME_METABOLISM"]})
    result = human.uns["scdeconv_impact"]
    assert result["params"]["species"] == "mouse"
    pd.testing.assert_frame_equal(result["impact"], mouse.uns["scdeconv_impact"]["impact"])


# --- key_added collisions: the documented policy -------------------------------------------------
def test_key_added_same_kind_is_overwritten_quietly(trained_adata, caplog):
    adata = trained_adata.copy()
    with caplog.at_level(logging.INFO, logger="scdeconv"):
        sd.tl.module_impact(adata, n_null=0, progress=False)
    assert "Overwriting the earlier impact result in adata.uns['scdeconv_impact']" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert adata.uns["scdeconv_impact"]["params"]["n_null"] == 0  # the new result replaced the old


def test_key_added_other_kind_is_overwritten_with_a_warning(trained_adata, caplog):
    adata = trained_adata.copy()
    adata.uns["mine"] = {"note": "user data"}
    adata.obsm["X_pca"] = np.zeros((adata.n_obs, 2))
    adata.uns["pca"] = {"variance": np.ones(2)}
    with caplog.at_level(logging.WARNING, logger="scdeconv"):
        sd.tl.node_genes(adata, n_top=3, progress=False, key_added="mine")
        sd.tl.train_autoencoder(adata, key_added="X_pca", **{**FAST, "n_latent": 3})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("adata.uns['mine'], which held an entry not written by scdeconv" in w for w in warnings)
    assert any("adata.obsm['X_pca'], which was not written by this step" in w for w in warnings)
    assert any("adata.uns['pca']" in w for w in warnings)
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 3) and "weights" in adata.uns["pca"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scdeconv"):
        sd.tl.node_genes(adata, n_top=3, progress=False, key_added="scdeconv_group_diff")
    assert "which held a group_diff result, with a node_genes result" in caplog.text


def test_select_genes_warns_before_overwriting_a_foreign_var_column(counts_adata, caplog):
    counts_adata.var["scdeconv_selected"] = "user"
    with caplog.at_level(logging.WARNING, logger="scdeconv"):
        sd.pp.select_genes(counts_adata)
        sd.pp.select_genes(counts_adata)  # the second time it is our own column: no new warning
    assert caplog.text.count("Overwriting adata.var['scdeconv_selected']") == 1
