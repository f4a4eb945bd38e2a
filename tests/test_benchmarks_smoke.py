"""The recovery benchmark's smoke mode runs end to end with the core dependencies only."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "recovery.py"


@pytest.fixture(scope="module")
def recovery():
    # Its parts (benchmarks/_recovery/) are found the way `python benchmarks/recovery.py` finds them.
    sys.path.insert(0, str(BENCHMARK.parent))
    spec = importlib.util.spec_from_file_location("recovery_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path.remove(str(BENCHMARK.parent))


def test_smoke_run_writes_results(recovery, tmp_path):
    path = recovery.main(["--smoke", "--out", str(tmp_path)])
    text = path.read_text()
    assert path == tmp_path / "RESULTS.md"
    for heading in ("## Headline", "## The paper's XOR metric", "## A parity programme", "## Ablations"):
        assert heading in text, heading
    headline = text.split("## Headline")[1].split("\n\n")[1]
    for method in ("scdeconv", "plain AE", "PCA", "NMF"):
        assert f"| {method} |" in headline, method
    assert (tmp_path / "figures" / "recovery_by_level.png").exists()
    assert (tmp_path / "figures" / "xor_metric.png").exists()


def test_parity_program_is_invisible_to_linear_views(recovery):
    # Every factor is independent of the parity, so per-gene tests find nothing and the factors'
    # marker blocks carry the information only jointly.
    import numpy as np
    from _recovery.outputs import lognorm
    from _recovery.toys import probe, simulate_parity

    adata = simulate_parity(400, seed=0)
    parity = adata.obs["parity"].to_numpy()
    factors = adata.obs[["F0", "F1", "F2"]].to_numpy()
    assert np.array_equal(parity, np.logical_xor.reduce(factors, axis=1))
    x = lognorm(adata)
    markers = x[:, :90].mean(axis=1)
    assert abs(np.corrcoef(markers, parity)[0, 1]) < 0.15
    assert probe(x, parity, linear=True) < 0.65
