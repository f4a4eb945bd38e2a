"""Faults: killed training resumes to the same model, Ctrl-C keeps the best one, outputs are whole or absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anndata
import h5py
import numpy as np
import pytest
from conftest import make_counts
from scipy import sparse

import scdeconv as sd

TESTS = Path(__file__).parent
# One thread: a resumed run is bit-identical to an uninterrupted one for the same thread count.
FAST = dict(n_latent=8, n_hidden=(16,), max_epochs=6, batch_size=16, progress=False, device="cpu", n_threads=1)


def _state(path: Path) -> dict | None:
    """The training state recorded in a checkpoint, or None while none is readable yet."""
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["state"])
    except (OSError, KeyError):
        return None


def _backed_counts(tmp_path: Path, n_cells: int = 3000, n_genes: int = 150) -> Path:
    rng = np.random.default_rng(3)
    means = rng.gamma(1.0, 1.5, size=n_genes) * rng.lognormal(0, 0.4, size=(n_cells, 1))
    counts = rng.poisson(means).astype(np.float32)
    counts[:, 0] += 1  # every cell has counts
    adata = anndata.AnnData(sparse.csr_matrix(counts))
    adata.var_names = [f"G{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    path = tmp_path / "data.h5ad"
    adata.write_h5ad(path)
    return path


TRAIN_FROM_DISK = dict(n_latent=8, n_hidden=(16,), max_epochs=5, batch_size=32, chunk_size=500, progress=False,
                       device="cpu", n_threads=1)  # fmt: skip


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_to_the_same_model(tmp_path):
    data = _backed_counts(tmp_path)
    reference = anndata.read_h5ad(data, backed="r")
    sd.tl.train_autoencoder(reference, **TRAIN_FROM_DISK)

    checkpoint = tmp_path / "run.ckpt"
    child = textwrap.dedent(f"""
        import anndata, scdeconv as sd
        adata = anndata.read_h5ad({str(data)!r}, backed="r")
        sd.tl.train_autoencoder(adata, checkpoint={str(checkpoint)!r}, checkpoint_minutes=0, **{TRAIN_FROM_DISK!r})
    """)
    process = subprocess.Popen([sys.executable, "-c", child], cwd=TESTS)
    try:
        # Kill it with SIGKILL (no cleanup of any kind) once it is past one epoch and inside another.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            state = _state(checkpoint)
            if state and state["epoch"] >= 1 and state["batch"] > 3:
                break
            time.sleep(0.02)
        assert process.poll() is None, "training finished before it could be killed: make it longer"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    killed_at = _state(checkpoint)
    assert killed_at["epoch"] >= 1 and not killed_at["finished"]

    resumed = anndata.read_h5ad(data, backed="r")
    sd.tl.train_autoencoder(resumed, checkpoint=checkpoint, checkpoint_minutes=0, **TRAIN_FROM_DISK)
    params = resumed.uns["scdeconv"]["params"]
    assert params["resumed_from_epoch"] == killed_at["epoch"]
    # The same minibatches in the same order from the same optimizer state: bit-identical on CPU.
    np.testing.assert_array_equal(resumed.obsm["X_scdeconv"], reference.obsm["X_scdeconv"])
    np.testing.assert_array_equal(
        resumed.uns["scdeconv"]["history"]["val_loss"], reference.uns["scdeconv"]["history"]["val_loss"]
    )


def test_a_finished_checkpoint_gives_the_same_model_without_training(tmp_path):
    plain, checkpointed, again = make_counts(160, seed=1), make_counts(160, seed=1), make_counts(160, seed=1)
    sd.tl.train_autoencoder(plain, **FAST)
    sd.tl.train_autoencoder(checkpointed, checkpoint=tmp_path / "c.ckpt", checkpoint_minutes=0, **FAST)
    np.testing.assert_array_equal(checkpointed.obsm["X_scdeconv"], plain.obsm["X_scdeconv"])  # writing changes nothing
    sd.tl.train_autoencoder(again, checkpoint=tmp_path / "c.ckpt", **FAST)
    np.testing.assert_array_equal(again.obsm["X_scdeconv"], plain.obsm["X_scdeconv"])
    assert again.uns["scdeconv"]["params"]["resumed_from_epoch"] == FAST["max_epochs"]


def test_a_checkpoint_of_another_run_is_refused_with_what_differs(tmp_path):
    sd.tl.train_autoencoder(make_counts(120, seed=1), checkpoint=tmp_path / "c.ckpt", **FAST)
    with pytest.raises(ValueError, match=r"written for other data: its library sizes differ"):
        sd.tl.train_autoencoder(make_counts(120, seed=2), checkpoint=tmp_path / "c.ckpt", **FAST)
    with pytest.raises(ValueError, match=r"from another run: its 'lr' differs.*0\.001 there, 0\.002 here"):
        sd.tl.train_autoencoder(make_counts(120, seed=1), checkpoint=tmp_path / "c.ckpt", **{**FAST, "lr": 2e-3})


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not a checkpoint"])
def test_a_damaged_checkpoint_gives_a_clear_error(tmp_path, damage):
    path = tmp_path / "c.ckpt"
    sd.tl.train_autoencoder(make_counts(120, seed=1), checkpoint=path, **FAST)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:4000])
    elif damage == "garbage":
        path.write_bytes(os.urandom(5000))
    else:
        with h5py.File(path, "w") as f:
            f.attrs["format"] = "something else"
    pattern = r"not a scdeconv checkpoint" if damage == "not a checkpoint" else r"damaged or truncated.*Delete it"
    with pytest.raises(ValueError, match=pattern):
        sd.tl.train_autoencoder(make_counts(120, seed=1), checkpoint=path, **FAST)


def test_ctrl_c_keeps_the_best_model_so_far(monkeypatch, caplog):
    import scdeconv._module.training as training

    evaluate, calls = training.evaluate, []

    def interrupted_in_epoch_four(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", interrupted_in_epoch_four)
    adata = make_counts(120, seed=1)
    with caplog.at_level("WARNING", logger="scdeconv"):
        sd.tl.train_autoencoder(adata, **{**FAST, "max_epochs": 20})
    params = adata.uns["scdeconv"]["params"]
    assert params["interrupted"] and params["n_epochs"] == 3 and 0 <= params["best_epoch"] <= 2
    assert "Training interrupted after 3 epochs" in caplog.text
    assert adata.obsm["X_scdeconv"].shape == (120, 8) and np.isfinite(adata.obsm["X_scdeconv"]).all()
    # The stored weights are the best epoch's: their validation loss is the one recorded for it.
    import torch

    module, genes = sd.get.model(adata)
    val = np.flatnonzero(adata.obs_names.isin(params["validation_cells"]))
    counts = adata[:, genes].X
    loss = evaluate(module, counts, val, 512, torch.device("cpu"))
    recorded = adata.uns["scdeconv"]["history"]["val_loss"].to_numpy()[params["best_epoch"]]
    np.testing.assert_allclose(loss, recorded, rtol=1e-6)  # float32 sums in another batch order


@pytest.mark.slow
def test_cli_killed_while_writing_leaves_out_as_it_was(tmp_path):
    data = tmp_path / "sim.h5ad"
    sd.datasets.simulate_hematopoiesis(300, n_genes=400, seed=3).write_h5ad(data)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    (out / "scdeconv_result.h5ad").write_bytes(b"an earlier result")
    writing = tmp_path / "writing"
    # The real CLI in a child process; its report writer signals, then waits to be killed mid-write.
    child = textwrap.dedent(f"""
        import pathlib, time, sys
        import scdeconv._pipeline as pipeline
        from scdeconv.cli import main
        def slow_report(adata, path, **kwargs):
            pathlib.Path(path).write_text("half a rep")
            pathlib.Path({str(writing)!r}).touch()
            time.sleep(600)
        pipeline.write_report = slow_report
        sys.exit(main(["run", {str(data)!r}, "--groupby", "group", "--compare", "Ery", "rest", "--out",
                       {str(out)!r}, "--max-epochs", "2", "--quiet"]))
    """)
    process = subprocess.Popen([sys.executable, "-c", child], cwd=TESTS)
    try:
        deadline = time.monotonic() + 300
        while not writing.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writing.exists(), "the child never reached the writing step"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    finals = sorted(p.name for p in out.iterdir() if not p.name.startswith(".partial-"))
    assert finals == ["report.md", "scdeconv_result.h5ad"]  # no new output under its final name
    assert (out / "report.md").read_text() == "an earlier report"
    assert (out / "scdeconv_result.h5ad").read_bytes() == b"an earlier result"
    # The killed run's staging folder is removed by the next run, which writes everything whole.
    from scdeconv.cli import main

    assert main(["run", str(data), "--groupby", "group", "--compare", "Ery", "rest", "--out", str(out),
                 "--max-epochs", "2", "--quiet"]) == 0  # fmt: skip
    assert not list(out.glob(".partial-*"))
    assert (out / "report.md").read_text().startswith("# scdeconv report")


def test_cli_checkpoint_option_reaches_training(tmp_path, monkeypatch):
    import scdeconv._pipeline as pipeline
    from scdeconv.cli import main

    seen = {}
    monkeypatch.setattr(pipeline, "run_pipeline", lambda adata, out, spec: (seen.setdefault("spec", spec), {})[1:])
    data = tmp_path / "sim.h5ad"
    sd.datasets.simulate_hematopoiesis(60, n_genes=400, seed=3).write_h5ad(data)
    main(["run", str(data), "--groupby", "group", "--compare", "Ery", "rest", "--checkpoint", str(tmp_path / "c.ckpt")])
    assert seen["spec"].checkpoint == str(tmp_path / "c.ckpt")
