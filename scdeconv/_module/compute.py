"""How the CPU is used while the core computes: thread count and denormal numbers.

Two things decide CPU speed here, both measured on a 2-core machine (``benchmarks/README.md``):

- **Denormal numbers.** The paper's ``Softplus(beta=layer width)`` sends inactive units to
  ``exp(-beta x) / beta``, values near 1e-40 that the CPU handles in microcode: matrix products
  with them ran several times slower. Below 1.2e-38 a float carries nothing for training or for
  attributions, so the core treats denormals as zero while it computes (CPU flag, restored after).
  The flag is per thread: torch's own call sets it on the calling thread only, so it is set on
  every thread of torch's OpenMP pool too; with it on the calling thread alone, the other
  threads' share of each product stayed slow.
- **Threads.** torch's default uses every core; when another process is busy on them, its
  threads wait for each other and a step becomes many times slower. ``n_threads=None`` uses the
  CPUs this process may run on (affinity, cgroup quota) that no other process is busy on when a
  computation starts, and keeps that number to its end: matrix products can round differently
  with another thread count, so a run is bit-identical to another with the same thread count
  (recorded by the tools), not to one with a different count.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

logger = logging.getLogger("scdeconv")


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


@functools.cache
def _openmp_runtime() -> ctypes.CDLL | None:
    """The GNU OpenMP runtime torch runs its CPU threads on (loaded in this process), or None where there is none."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "libgomp" in line.rsplit("/", 1)[-1]}
    # Other wheels bring their own copy (scikit-learn's, loaded with scanpy), each with its own
    # threads: take the one in torch's folder (pip wheels), else the one unvendored copy (conda).
    torch_dir = str(Path(torch.__file__).resolve().parent)
    ours = [p for p in paths if p.startswith(torch_dir)] or [p for p in paths if p.endswith("/libgomp.so.1")]
    if len(ours) != 1:
        return None
    try:
        runtime = ctypes.CDLL(ours[0])
    except OSError:
        return None
    return runtime if hasattr(runtime, "GOMP_parallel") else None


_THREAD_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def set_flush_denormal_all_threads(flush: bool) -> bool:
    """``torch.set_flush_denormal(flush)`` on this thread and on every thread of torch's OpenMP team.

    Returns whether the CPU supports it. Where torch's threads do not run on GNU OpenMP (not
    Linux), only this thread is set; :func:`flushes_on_all_threads` tells.
    """
    supported = torch.set_flush_denormal(flush)
    runtime = _openmp_runtime()
    if supported and runtime is not None and torch.get_num_threads() > 1:
        body = _THREAD_BODY(lambda _: torch.set_flush_denormal(flush))  # each team thread takes the GIL in turn
        runtime.GOMP_parallel(body, None, ctypes.c_uint(torch.get_num_threads()), ctypes.c_uint(0))
    elif supported and torch.get_num_threads() > 1:
        logger.debug("Denormals are flushed on the calling thread only (no GNU OpenMP runtime found).")
    return supported


def flushes_on_all_threads() -> bool:
    """Whether a product split over torch's threads now flushes denormal results to zero in every share."""
    tiny = torch.full((1 << 20,), 1e-20)  # large enough for torch to split it over its threads
    return bool(((tiny * tiny) == 0).all())  # 1e-40 is denormal


@contextlib.contextmanager
def cpu_compute(device: torch.device | str, n_threads: int | None) -> Iterator[int]:
    """Inside: denormals are zero and torch uses :func:`choose_threads` threads (CPU only); restored after.

    Yields the thread count used (0 on other devices).
    """
    if torch.device(device).type != "cpu":
        yield 0
        return
    threads_before = torch.get_num_threads()
    threads = choose_threads(n_threads)
    torch.set_num_threads(threads)
    flushing = set_flush_denormal_all_threads(True)
    try:
        yield threads
    finally:
        if flushing:
            set_flush_denormal_all_threads(False)
        torch.set_num_threads(threads_before)
