"""Thread choice: an explicit count is capped at the CPUs this process may use; None leaves out busy ones."""

from pathlib import Path

import pytest

from scdeconv._module import compute

REAL_BUSY_ELSEWHERE = compute.busy_elsewhere  # taken at collection, before conftest's fixture patches it


def test_explicit_threads_capped_and_checked():
    cpus = compute.available_cpus()
    assert compute.choose_threads(1) == 1
    assert compute.choose_threads(cpus + 5) == cpus
    with pytest.raises(ValueError, match="n_threads must be a positive number"):
        compute.choose_threads(0)


def test_automatic_threads_leave_out_cpus_busy_elsewhere(monkeypatch):
    cpus = compute.available_cpus()
    monkeypatch.setattr(compute, "busy_elsewhere", lambda: 1)
    assert compute.choose_threads(None) == max(1, cpus - 1)
    monkeypatch.setattr(compute, "busy_elsewhere", lambda: 99)
    assert compute.choose_threads(None) == 1  # never fewer than one


def test_busy_elsewhere_reads_proc():
    # The real count (conftest patches it to 0 for every test; this module kept it at import).
    assert isinstance(REAL_BUSY_ELSEWHERE(), int) and REAL_BUSY_ELSEWHERE() >= 0


@pytest.mark.skipif(compute.available_cpus() < 2, reason="needs two CPUs for torch to split a product")
def test_denormals_flushed_on_every_thread_inside_cpu_compute_and_restored_after():
    import sklearn.cluster  # noqa: F401  (loads scikit-learn's own libgomp beside torch's, as scanpy does)
    import torch

    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    if not any("libgomp" in line and "/torch/" in line for line in maps.splitlines()):
        pytest.skip("torch's threads are not on its own GNU OpenMP here (not a Linux pip wheel)")

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        # The flag is per thread (a new thread copies its creator's): once torch's team exists,
        # torch's own call covers only the calling thread's share of a product.
        assert not compute.flushes_on_all_threads()  # creates the team, flag off everywhere
        torch.set_flush_denormal(True)
        assert not compute.flushes_on_all_threads()
        torch.set_flush_denormal(False)
        with compute.cpu_compute("cpu", n_threads=2) as threads:
            assert threads == 2
            assert compute.flushes_on_all_threads()
        tiny = torch.full((1 << 20,), 1e-20)
        assert bool(((tiny * tiny) > 0).all())  # every thread computes denormals again, as before
    finally:
        torch.set_num_threads(before)
