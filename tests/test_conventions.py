"""scanpy's signature conventions, checked on every public function."""

import inspect

import pytest

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
    assert params["copy"].default is False and "key_added" in params
    assert "Returns" in func.__doc__ and "copy=True" in func.__doc__


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
