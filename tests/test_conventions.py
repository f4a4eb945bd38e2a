"""scanpy's signature conventions, checked on every public function: parsed signatures and docstrings, and calls."""

import inspect
import re

import numpy as np
import pytest
from anndata import AnnData
from conftest import make_counts

import scdeconv as sd

TOOLS = [getattr(mod, name) for mod in (sd.pp, sd.tl) for name in mod.__all__]
PLOTS = [getattr(sd.pl, name) for name in sd.pl.__all__]
# Positional arguments allowed after adata, as in sc.tl.rank_genes_groups(adata, groupby).
POSITIONAL = {"group_diff": {"groupby", "group1", "group2"}}


@pytest.mark.parametrize("func", TOOLS, ids=lambda f: f.__name__)
def test_tool_signature(func):
    params = inspect.signature(func).parameters
    names = list(params)
    assert names[0] == "adata"
    for name in names[1:]:
        if name not in POSITIONAL.get(func.__name__, set()):
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    for name in ("key_added", "copy"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert params["copy"].default is False and isinstance(params["key_added"].default, str)
    assert str(inspect.signature(func).return_annotation) in ("AnnData | None", "'AnnData | None'")
    sections = _doc_sections(func)
    # numpydoc: the Parameters section documents every parameter of the signature, and only those.
    documented = _documented_parameters(sections["Parameters"])
    assert sorted(documented) == sorted(names), set(names) ^ set(documented)
    # Returns names the default slot written, in scanpy's "'default' | key_added" form.
    assert f"['{params['key_added'].default}' | key_added]" in sections["Returns"]


def _doc_sections(func) -> dict[str, str]:
    """numpydoc sections of ``func``'s docstring: heading -> body."""
    doc = inspect.getdoc(func)
    parts = re.split(r"^(\w[\w ]*)\n-{3,}$", doc, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _documented_parameters(section: str) -> list[str]:
    """Names of the entries of a numpydoc Parameters section (``a``, ``a, b`` or ``a : type`` lines)."""
    names = []
    for line in section.splitlines():
        if line and not line[0].isspace():
            names += [n.strip() for n in line.split(":")[0].split(",")]
    return names


@pytest.mark.parametrize("func", PLOTS, ids=lambda f: f.__name__)
def test_plot_signature(func):
    params = inspect.signature(func).parameters
    assert next(iter(params)) == "adata"
    for name in ("ax", "show", "save"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and params[name].default is None


def test_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, scdeconv; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# Every pp/tl step run once with keys of our own, each reading what the previous one wrote there.
CHAIN = [
    ("select_genes", {"key_added": "my_selection"}, {"var", "uns"}),
    ("train_autoencoder", {"mask_var": "my_selection", "n_latent": 4, "n_hidden": (8,), "max_epochs": 2,
                           "batch_size": 16, "key_added": "X_my_model"}, {"obsm"}),
    ("module_impact", {"model_key": "my_model", "n_null": 20, "key_added": "my_impact"}, {"uns"}),
    ("group_diff", {"groupby": "group", "group1": "ery", "impact_key": "my_impact", "key_added": "my_diff"}, {"uns"}),
    ("node_genes", {"model_key": "my_model", "n_top": 5, "key_added": "my_genes"}, {"uns"}),
    ("node_gsea", {"impact_key": "my_impact", "n_perm": 10, "key_added": "my_gsea"}, {"uns"}),
    ("stability", {"impact_key": "my_impact", "n_seeds": 2, "key_added": "my_stability"}, {"uns"}),
    ("annotate_nodes", {"groupby": "group", "impact_key": "my_impact", "node_genes_key": "my_genes",
                        "stability_key": "my_stability", "key_added": "my_nodes"}, {"uns"}),
]  # fmt: skip
NOT_RECORDED = {"key_added", "progress"}


def _recorded(adata: AnnData, name: str, key: str) -> dict:
    """The ``params`` a step recorded: under uns[key] (the model: uns[key without 'X_'])."""
    return adata.uns[key.removeprefix("X_") if name == "train_autoencoder" else key]["params"]


def test_key_added_and_recorded_params_by_calling():
    tools = {name: getattr(mod, name) for mod in (sd.pp, sd.tl) for name in mod.__all__}
    assert {name for name, _, _ in CHAIN} == set(tools)
    adata = make_counts(n_cells=80, seed=5)
    for name, kwargs, slots in CHAIN:
        func, key = tools[name], kwargs["key_added"]
        kwargs = {**kwargs, **({"progress": False} if "progress" in inspect.signature(func).parameters else {})}
        default = inspect.signature(func).parameters["key_added"].default
        assert func(adata, **kwargs) is None  # copy=True: tests/test_untouched.py, for every function
        for slot in slots:
            assert key in getattr(adata, slot), (name, slot)
        assert default.removeprefix("X_") not in adata.uns and default not in adata.obsm, (name, default)
        params = _recorded(adata, name, key)
        for option, value in kwargs.items():
            if option not in NOT_RECORDED:
                assert np.array_equal(np.asarray(params[option]), np.asarray(value)), (name, option)
