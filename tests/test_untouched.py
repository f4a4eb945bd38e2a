"""The user's AnnData changes only at documented keys; ``copy=True`` leaves it entirely untouched.

Every slot (X, layers, obs and var columns and names, obsm, varm, obsp, varp, uns, raw) is hashed
key by key before and after each public ``pp``/``tl`` function. The documented keys are the
table below, checked against each function's Returns section.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from conftest import make_counts
from scipy import sparse

import scdeconv as sd

FAST = dict(n_latent=4, n_hidden=(8,), max_epochs=2, batch_size=16, progress=False)

# function -> (keyword arguments, slots it documents as written: (slot, key)).
DOCUMENTED = {
    "select_genes": ({}, {("var", "scdeconv_selected"), ("uns", "scdeconv_selected")}),
    "train_autoencoder": (FAST, {("obsm", "X_scdeconv"), ("uns", "scdeconv")}),
    "module_impact": ({"n_null": 20, "progress": False}, {("uns", "scdeconv_impact"), ("obsm", "scdeconv_activity")}),
    "group_diff": ({"groupby": "group", "group1": "ery", "progress": False}, {("uns", "scdeconv_group_diff")}),
    "node_genes": ({"n_top": 5, "progress": False}, {("uns", "scdeconv_node_genes")}),
    "node_gsea": ({"n_perm": 10, "progress": False}, {("uns", "scdeconv_gsea")}),
    "stability": ({"n_seeds": 2, "progress": False}, {("uns", "scdeconv_stability")}),
    "annotate_nodes": ({"groupby": "group"}, {("uns", "scdeconv_nodes")}),
}
FUNCTIONS = {name: getattr(mod, name) for mod in (sd.pp, sd.tl) for name in mod.__all__}
# The two that train extra models or run GSEA are slow here; the fast loop still calls them
# (tests/test_conventions.py::test_key_added_and_recorded_params_by_calling).
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in ("node_gsea", "stability") else n for n in DOCUMENTED]


def _feed(h, value) -> None:
    """Feed everything that defines ``value`` (type, dtype, shape, contents) into the hash ``h``."""
    h.update(type(value).__name__.encode())
    if sparse.issparse(value):
        h.update(f"{value.format}{value.shape}{value.dtype}".encode())
        for part in ("data", "indices", "indptr", "row", "col"):
            if hasattr(value, part):
                h.update(np.ascontiguousarray(getattr(value, part)).tobytes())
    elif isinstance(value, np.ndarray):
        h.update(f"{value.shape}{value.dtype}".encode())
        if value.dtype.kind == "O":
            for item in value.ravel():
                _feed(h, item)
        else:
            h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, pd.DataFrame):
        _feed(h, value.index)
        _feed(h, value.columns)
        for column in value.columns:
            _feed(h, value[column])
    elif isinstance(value, pd.Series | pd.Index):
        h.update(f"{value.dtype}|{value.name}".encode())
        if isinstance(value.dtype, pd.CategoricalDtype):  # categories (used or not) and their order
            h.update(f"{list(value.dtype.categories)}|{value.dtype.ordered}".encode())
        h.update(pd.util.hash_pandas_object(pd.Series(np.asarray(value, dtype=object)), index=False).values.tobytes())
        if isinstance(value, pd.Series):
            _feed(h, value.index)
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            h.update(repr(key).encode())
            _feed(h, value[key])
    elif isinstance(value, list | tuple):
        for item in value:
            _feed(h, item)
    else:
        h.update(repr(value).encode())


def fingerprint(value) -> str:
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def slot_hashes(adata: AnnData) -> dict[tuple[str, str], str]:
    """One hash per (slot, key): every layer, obs/var column, obsm/varm/obsp/varp/uns entry, ..."""
    hashes = {
        ("X", ""): fingerprint(adata.X),
        ("obs_names", ""): fingerprint(adata.obs_names),
        ("var_names", ""): fingerprint(adata.var_names),
        ("raw", ""): fingerprint(None if adata.raw is None else adata.raw.to_adata().X),
    }
    for slot in ("obs", "var"):
        frame = getattr(adata, slot)
        hashes.update({(slot, str(c)): fingerprint(frame[c]) for c in frame.columns})
    for slot in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
        hashes.update({(slot, str(k)): fingerprint(v) for k, v in getattr(adata, slot).items()})
    return hashes


def _user_data(adata: AnnData) -> AnnData:
    """Fill every slot with something of the user's, so that any stray write shows."""
    rng = np.random.default_rng(0)
    adata.layers["counts"] = adata.X.copy()
    adata.obs["n_counts"] = np.asarray(adata.X.sum(axis=1)).ravel()
    adata.obs["batch"] = pd.Categorical(["b1", "b2"] * (adata.n_obs // 2))
    adata.var["gene_ids"] = [f"ENSMUSG{i:011d}" for i in range(adata.n_vars)]
    adata.var["mean"] = np.asarray(adata.X.mean(axis=0)).ravel()
    adata.obsm["X_pca"] = rng.normal(size=(adata.n_obs, 3))
    adata.varm["PCs"] = rng.normal(size=(adata.n_vars, 3))
    adata.obsp["connectivities"] = sparse.random(adata.n_obs, adata.n_obs, density=0.05, format="csr", random_state=0)
    adata.varp["correlation"] = np.eye(adata.n_vars)
    adata.uns["user"] = {"note": "mine", "values": np.arange(3), "table": pd.DataFrame({"a": [1.0, 2.0]})}
    adata.raw = adata.copy()
    return adata


@pytest.fixture(scope="module")
def prepared() -> AnnData:
    """User data with every step already run once (the prerequisites of every function)."""
    adata = _user_data(make_counts(n_cells=100, seed=2))
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, **FAST)
    sd.tl.module_impact(adata, n_null=20, progress=False)
    return adata


def _start(prepared: AnnData, name: str) -> AnnData:
    """The input of ``name``: its prerequisites run, its own result not there yet."""
    adata = prepared.copy()
    for slot, key in DOCUMENTED[name][1]:
        if key in getattr(adata, slot):
            del getattr(adata, slot)[key]
    return adata


def test_table_covers_every_public_function_and_matches_docstrings():
    assert set(DOCUMENTED) == set(FUNCTIONS)
    for name, (_, written) in DOCUMENTED.items():
        returns = FUNCTIONS[name].__doc__.split("Returns")[1]
        for slot, key in written:
            assert f"adata.{slot}['{key}'" in returns, (name, slot, key)


@pytest.mark.parametrize("name", NAMES)
def test_only_documented_keys_change(prepared, name):
    adata = _start(prepared, name)
    kwargs, written = DOCUMENTED[name]
    before = slot_hashes(adata)
    assert FUNCTIONS[name](adata, **kwargs) is None
    after = slot_hashes(adata)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= written, f"{name} changed undocumented slots: {sorted(changed - written)}"
    assert written <= set(after), f"{name} did not write {sorted(written - set(after))}"


@pytest.mark.parametrize("name", NAMES)
def test_copy_leaves_input_untouched(prepared, name):
    adata = _start(prepared, name)
    kwargs, written = DOCUMENTED[name]
    before = fingerprint(slot_hashes(adata))
    result = FUNCTIONS[name](adata, copy=True, **kwargs)
    assert fingerprint(slot_hashes(adata)) == before
    assert isinstance(result, AnnData) and result is not adata
    assert written <= set(slot_hashes(result))


def test_hashes_see_in_place_changes():
    """The fingerprint is not vacuous: in-place edits anywhere show up under the right key."""
    adata = _user_data(make_counts(n_cells=20))
    before = slot_hashes(adata)
    adata.X.data[0] += 1
    adata.obs["batch"] = adata.obs["batch"].cat.add_categories("b3")
    adata.uns["user"]["table"].iloc[0, 0] = 5.0
    adata.obsm["X_pca"][0, 0] = 1.0
    after = slot_hashes(adata)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {("X", ""), ("obs", "batch"), ("uns", "user"), ("obsm", "X_pca")}
