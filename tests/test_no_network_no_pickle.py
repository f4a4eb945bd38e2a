"""No network at run time, and loading a model never unpickles or evaluates anything from a file."""

from __future__ import annotations

import builtins
import pickle
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from anndata import read_h5ad
from pytest_socket import SocketBlockedError

import scdeconv as sd

PACKAGE = Path(sd.__file__).parent


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_sockets_are_disabled_in_tests():
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)


def test_package_source_never_unpickles_or_evals():
    """No pickle, marshal, eval/exec, torch.load or np.load anywhere in the package."""
    banned = re.compile(
        r"\bimport (pickle|marshal|shelve|dill|cloudpickle)\b|\bpickle\.|(?<![.\w])(eval|exec)\(|"
        r"torch\.load|np\.load|numpy\.load|allow_pickle|joblib"
    )
    hits = [
        f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if banned.search(line)
    ]
    assert not hits, hits


def test_loading_a_model_from_h5ad_uses_no_pickle_or_eval(trained_adata, tmp_path, monkeypatch):
    trained_adata.write_h5ad(tmp_path / "trained.h5ad")

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle, np.load, torch.load or eval while loading")

    for target, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (np, "load"),
                         (torch, "load"), (builtins, "eval"), (builtins, "exec")):  # fmt: skip
        monkeypatch.setattr(target, name, refuse)
    back = read_h5ad(tmp_path / "trained.h5ad")
    module, genes = sd.get.model(back)
    sd.tl.module_impact(back, n_null=0, progress=False)
    monkeypatch.undo()
    assert len(genes) == trained_adata.n_vars and module.n_latent == 8


class _Trap:
    """An object that records any attempt to turn it into an array or to unpickle it."""

    touched = False

    def __array__(self, *args, **kwargs):
        _Trap.touched = True
        return np.zeros(1)

    def __reduce__(self):
        _Trap.touched = True
        return (print, ("unpickled",))


@pytest.mark.parametrize(
    "crafted",
    [
        pytest.param(lambda: _Trap(), id="object"),
        pytest.param(lambda: np.array([_Trap()], dtype=object), id="object array"),
        pytest.param(lambda: np.array(["cos\nsystem\n(S'echo hi'\ntR."]), id="string array"),
    ],
)
def test_crafted_weights_are_refused_not_run(trained_adata, crafted):
    adata = trained_adata.copy()
    weights = adata.uns["scdeconv"]["weights"]
    weights[next(iter(weights))] = crafted()
    _Trap.touched = False
    with pytest.raises(ValueError, match=r"not a float array.*train again"):
        sd.tl.module_impact(adata, n_null=0, progress=False)
    assert not _Trap.touched


def test_crafted_params_are_not_evaluated(trained_adata, tmp_path):
    adata = trained_adata.copy()
    marker = tmp_path / "pwned"
    adata.uns["scdeconv"]["params"]["likelihood"] = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(ValueError, match="likelihood must be one of"):
        sd.get.model(adata)
    assert not marker.exists()


def test_crafted_h5ad_string_weights_are_refused(trained_adata, tmp_path):
    adata = trained_adata.copy()
    weights = adata.uns["scdeconv"]["weights"]
    weights[next(iter(weights))] = np.array(["1.0", "2.0"])
    adata.write_h5ad(tmp_path / "crafted.h5ad")
    with pytest.raises(ValueError, match="not a float array"):
        sd.get.model(read_h5ad(tmp_path / "crafted.h5ad"))
