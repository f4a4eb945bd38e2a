"""How the CPU is used while the core computes: thread count and denormal numbers.

Two things decide CPU speed here, both measured on a 2-core machine (``benchmarks/README.md``):

- **Denormal numbers.** The paper's ``Softplus(beta=layer width)`` sends inactive units to
  ``exp(-beta x) / beta``, values near 1e-40 that the CPU handles in microcode: matrix products
  with them ran several times slower. Below 1.2e-38 a float carries nothing for training or for
  attributions, so the core treats denormals as zero while it computes (CPU flag, restored after).
- **Threads.** torch's default uses every core; when another process is busy on them, its
  threads wait for each other and a step becomes many times slower. ``n_threads=None`` uses the
  CPUs this process may run on (affinity, cgroup quota) that no other process is busy on when a
  computation starts, and keeps that number to its end: matrix products can round differently
  with another thread count, so a run is bit-identical to another with the same thread count
  (recorded by the tools), not to one with a different count.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota when there is one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _cgroup_quota() or cpus))


def _cgroup_quota() -> int | None:
    """Whole CPUs allowed by a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None without one."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
        elif v1[0].exists():
            quota, period = v1[0].read_text().strip(), v1[1].read_text().strip()
        else:
            return None
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    return max(1, math.floor(int(quota) / int(period)))


def busy_elsewhere() -> int:
    """Threads of other processes running on this machine now (``/proc/loadavg`` minus this process's own).

    0 where ``/proc`` is not readable. On a shared host seen through a container this counts the
    host's processes: pass ``n_threads`` there.
    """
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        own = 0
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                own += task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - max(own, 1))


def choose_threads(n_threads: int | None) -> int:
    """``n_threads`` (capped at the CPUs available), or for ``None`` the available CPUs no one else is busy on."""
    cpus = available_cpus()
    if n_threads is not None:
        if n_threads < 1:
            raise ValueError(f"n_threads must be a positive number of threads or None (automatic), not {n_threads}.")
        return min(int(n_threads), cpus)
    return max(1, cpus - busy_elsewhere())


@contextlib.contextmanager
def cpu_compute(device: torch.device | str, n_threads: int | None) -> Iterator[int]:
    """Inside: denormals are zero and torch uses :func:`choose_threads` threads (CPU only); restored after.

    Yields the thread count used (0 on other devices).
    """
    if torch.device(device).type != "cpu":
        yield 0
        return
    threads_before = torch.get_num_threads()
    flushing = torch.set_flush_denormal(True)
    threads = choose_threads(n_threads)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads_before)
        if flushing:
            torch.set_flush_denormal(False)
