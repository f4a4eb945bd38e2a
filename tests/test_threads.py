"""Thread choice: an explicit count is capped at the CPUs this process may use; None leaves out busy ones."""

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
