"""One small timing utility used by every stage (model, device, runtime, benchmarks).

    timer = StageTimer()
    with timer.stage("vision"):
        ...
    timer.summary()  # {"vision": {"count": 1, "total_ms": ..., "mean_ms": ..., "p50_ms": ..., "p95_ms": ..., "max_ms": ...}}

Stages keep a bounded window of recent durations so a long-running session does not grow without bound.
CPU work is timed with `time.perf_counter()` (this machine's monotonic clock). With `cuda_sync=True` and a CUDA device,
a stage is timed with CUDA events recorded on the current stream around it and synchronised at its end, so the GPU
work it launched is attributed to it (not to whatever synchronises next). Thread-safe: a session's ingest and model
threads add to one timer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class StageTimer:
    """Durations of named stages (seconds in, milliseconds out).

    window: recent durations kept per stage for the percentiles (counts and totals cover every call); cuda_sync: time
    stages with CUDA events (see the module docstring) when CUDA is available, else perf_counter.
    """

    def __init__(self, window: int = 4096, cuda_sync: bool = False):
        self.window = window
        self.cuda_sync = cuda_sync
        self._durations: OrderedDict[str, deque[float]] = OrderedDict()
        self._counts: dict[str, int] = {}
        self._totals: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock: str | None = None
        # (name, start, end) perf_counter seconds of the recent `stage()` calls: what ran while something waited
        self._spans: deque[tuple[str, float, float]] = deque(maxlen=1024)

    @property
    def clock(self) -> str:
        """ "cuda_events" when stages are timed on the GPU, else "perf_counter" (asked of torch once: every stage,
        each decoded token's too, reads it)."""
        if self._clock is None:
            self._clock = "perf_counter"
            if self.cuda_sync:
                import torch

                if torch.cuda.is_available():
                    self._clock = "cuda_events"
        return self._clock

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body of the `with` block as one call of stage `name`."""
        if self.clock == "cuda_events":
            import torch

            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            try:
                yield
            finally:
                end.record()
                end.synchronize()
                self.add(name, start.elapsed_time(end) / 1e3, span=(t0, time.perf_counter()))
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            t1 = time.perf_counter()
            self.add(name, t1 - t0, span=(t0, t1))

    def add(self, name: str, seconds: float, span: tuple[float, float] | None = None) -> None:
        """Count one call of stage `name` that took `seconds`; `span`: its (start, end) perf_counter seconds, kept
        for `spent_between`."""
        with self._lock:
            if span is not None:
                self._spans.append((name, span[0], span[1]))
            if name not in self._durations:
                self._durations[name] = deque(maxlen=self.window)
                self._counts[name] = 0
                self._totals[name] = 0.0
            self._durations[name].append(seconds)
            self._counts[name] += 1
            self._totals[name] += seconds

    def totals(self) -> dict[str, float]:
        """{stage: total seconds so far} (the difference of two snapshots is the time spent in between)."""
        with self._lock:
            return dict(self._totals)

    def spent_between(self, t0: float, t1: float) -> dict[str, float]:
        """{stage: seconds of [t0, t1] (perf_counter seconds) spent in its `stage()` calls}, each instant counted
        once, for the innermost stage running then (the latest started of those in flight; a call that encloses
        another, such as score_options around its score_continuation calls, gets only its own time outside them),
        so the values add up to at most t1 - t0. A call in flight at t0 counts from t0 on. Covers the most recent
        1024 calls; stages added without a span (`add`) are not counted."""
        with self._lock:
            spans = [(max(a, t0), min(b, t1), name) for name, a, b in self._spans if min(b, t1) > max(a, t0)]
        # sweep the boundaries: between two consecutive ones the set of calls in flight does not change
        events = sorted({x for a, b, _ in spans for x in (a, b)})
        by_start = sorted(range(len(spans)), key=lambda i: spans[i][0])
        out: dict[str, float] = {}
        active: set[int] = set()
        nxt = 0
        for lo, hi in zip(events, events[1:], strict=False):
            while nxt < len(by_start) and spans[by_start[nxt]][0] <= lo:
                active.add(by_start[nxt])
                nxt += 1
            active = {i for i in active if spans[i][1] > lo}
            if active:  # innermost: the latest start, then the earliest end (a nested call ends first)
                name = spans[max(active, key=lambda i: (spans[i][0], -spans[i][1]))][2]
                out[name] = out.get(name, 0.0) + (hi - lo)
        return out

    def last(self, name: str) -> float:
        """Seconds of the latest call of stage `name` (KeyError if it never ran)."""
        with self._lock:
            return self._durations[name][-1]

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {count, total_ms, mean_ms, p50_ms, p95_ms, max_ms}} in the order stages first ran."""
        with self._lock:
            items = [(name, list(d), self._counts[name], self._totals[name]) for name, d in self._durations.items()]
        out: dict[str, dict[str, float]] = {}
        for name, d, count, total in items:
            a = np.asarray(d) * 1e3
            out[name] = {
                "count": count,
                "total_ms": total * 1e3,
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
