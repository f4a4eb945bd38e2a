"""Time and peak resident memory of one method's run, and the benchmark's log line."""

from __future__ import annotations

import os
import threading
import time


class PeakRSS:
    """Peak resident memory of this process above its level at entry, sampled every 20 ms."""

    def __init__(self):
        self.peak_mb = 0.0

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self):
        self._start = self._rss_mb()
        self._top = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _watch(self):
        while not self._stop.wait(0.02):
            self._top = max(self._top, self._rss_mb())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self._top, self._rss_mb()) - self._start


def log(message: str) -> None:
    print(f"[recovery] {message}", flush=True)
