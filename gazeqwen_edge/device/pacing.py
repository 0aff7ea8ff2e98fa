"""Putting records in time order and replaying them at a chosen pace.

- `merge_by_time(streams)`: merge per-stream iterators (each in time order) into one time-ordered iterator.
- `paced(records, speed)`: a generator wrapper for any Source's records: `speed=None` (or 0 / inf) delivers as fast as
  possible, `speed=1.0` in real time, `speed=N` at N x real time. The wall clock is mapped to recording time at the
  first record, or at a given `origin` (`wall = wall0 + (ts_ns - ts0) / speed`); a record is released when the wall clock
  reaches its time, and a consumer that falls behind is not made to wait (no catch-up sleeping, no dropped records).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter

from gazeqwen_edge.device.records import Record


def merge_by_time(streams: list[Iterator[Record]]) -> Iterator[Record]:
    """Merge record iterators, each in non-decreasing `ts_ns` order, into one such iterator (stable: on equal times
    the earlier stream in the list goes first, as heapq.merge guarantees)."""
    return heapq.merge(*streams, key=attrgetter("ts_ns"))


class ReplayClock:
    """Maps recording time (unix ns of the source) to the wall clock for a replay at `speed` x real time."""

    def __init__(
        self,
        speed: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if speed is not None and (speed < 0 or math.isnan(speed)):
            raise ValueError(f"replay speed must be >= 0 (0 or None = as fast as possible), got {speed}")
        self.speed = None if (speed is None or speed == 0 or math.isinf(speed)) else float(speed)
        self._clock = clock
        self._sleep = sleep
        self.ts0: int | None = None
        self.wall0: float | None = None

    def start(self, ts0_ns: int, wall0: float | None = None) -> None:
        """Anchor the mapping: recording time `ts0_ns` is due at wall-clock time `wall0` (of `clock`; default now)."""
        self.ts0, self.wall0 = int(ts0_ns), self._clock() if wall0 is None else float(wall0)

    def wall_time(self, ts_ns: int) -> float:
        """The wall-clock time (of `clock`) at which a record stamped ts_ns is due."""
        if self.ts0 is None or self.speed is None:
            return self._clock()
        return self.wall0 + (ts_ns - self.ts0) / 1e9 / self.speed

    def recording_time(self, wall: float | None = None) -> int | None:
        """The recording time (unix ns) that the wall clock `wall` (default now) corresponds to."""
        if self.ts0 is None or self.speed is None:
            return None
        wall = self._clock() if wall is None else wall
        return self.ts0 + int(round((wall - self.wall0) * self.speed * 1e9))

    def wait_for(self, ts_ns: int) -> None:
        if self.speed is None:
            return
        if self.ts0 is None:
            self.start(ts_ns)
            return
        delay = self.wall_time(ts_ns) - self._clock()
        if delay > 0:
            self._sleep(delay)


def paced(
    records: Iterable[Record],
    speed: float | None = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    origin: tuple[int, float] | None = None,
) -> Iterator[Record]:
    """Yield `records` no earlier than their recording time mapped to the wall clock at `speed` x real time
    (None / 0 / inf: as fast as possible). Works on any Source: `paced(src.records(), speed=2.0)`.

    `origin=(ts_ns, wall)` anchors the mapping in advance: recording time ts_ns is due at wall-clock time `wall` (of
    `clock`), so even the first record waits for its time (the Neon simulator schedules a source to start a moment
    after it is served, and each pass of a looped source a period later). Default: the first record is due at once.
    `sleep` may return early (e.g. `threading.Event.wait`, to stop a replay): the record is then yielded early."""
    rc = ReplayClock(speed, clock, sleep)
    if origin is not None:
        rc.start(*origin)
    for r in records:
        rc.wait_for(r.ts_ns)
        yield r
