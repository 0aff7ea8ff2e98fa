"""One small timing utility used by every stage (model, device, runtime, benchmarks).

    timer = StageTimer()
    with timer.stage("vision"):
        ...
    timer.summary()  # {"vision": {"count": 1, "total_ms": ..., "mean_ms": ..., "p50_ms": ..., "p95_ms": ..., "max_ms": ...}}

Stages keep a bounded window of recent durations so a long-running session does not grow without bound.
With `cuda_sync=True` the timer synchronises CUDA before reading the clock, so GPU work is attributed to its stage.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class StageTimer:
    def __init__(self, window: int = 4096, cuda_sync: bool = False):
        self.window = window
        self.cuda_sync = cuda_sync
        self._durations: OrderedDict[str, deque[float]] = OrderedDict()
        self._counts: dict[str, int] = {}
        self._totals: dict[str, float] = {}

    def _sync(self) -> None:
        if self.cuda_sync:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        if name not in self._durations:
            self._durations[name] = deque(maxlen=self.window)
            self._counts[name] = 0
            self._totals[name] = 0.0
        self._durations[name].append(seconds)
        self._counts[name] += 1
        self._totals[name] += seconds

    def totals(self) -> dict[str, float]:
        """{stage: total seconds so far} (the difference of two snapshots is the time spent in between)."""
        return dict(self._totals)

    def last(self, name: str) -> float:
        return self._durations[name][-1]

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, d in self._durations.items():
            a = np.asarray(d) * 1e3
            out[name] = {
                "count": self._counts[name],
                "total_ms": self._totals[name] * 1e3,
                "mean_ms": float(a.mean()),
                "p50_ms": float(np.percentile(a, 50)),
                "p95_ms": float(np.percentile(a, 95)),
                "max_ms": float(a.max()),
            }
        return out

    def table(self, title: str = "stage timings"):
        """A rich Table of the summary (for the terminal)."""
        from rich.table import Table

        t = Table(title=title)
        for col in ("stage", "count", "total ms", "mean ms", "p50 ms", "p95 ms", "max ms"):
            t.add_column(col, justify="left" if col == "stage" else "right")
        for name, s in self.summary().items():
            t.add_row(
                name,
                str(int(s["count"])),
                *(f"{s[k]:.1f}" for k in ("total_ms", "mean_ms", "p50_ms", "p95_ms", "max_ms")),
            )
        return t
