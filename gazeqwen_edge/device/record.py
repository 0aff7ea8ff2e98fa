"""Writing what a source delivers to a session directory: the loop behind `gazeqwen-edge record`.

    with open_source("synthetic:3") as src:
        result = record(src, "out/session", spec="synthetic:3", duration_s=5.0, speed=1.0)

Live sources are written in arrival order (the session readers sort by time), so nothing waits in the live source's
reordering window when the recording is stopped or killed; recorded sources are replayed at `speed` x real time
through `paced()`. Ctrl-C (KeyboardInterrupt) ends the recording like the end of the source: the session is closed
properly and the result says it was interrupted. Nothing written is lost (the Recorder flushes continuously).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gazeqwen_edge.device.pacing import paced
from gazeqwen_edge.device.session import Recorder
from gazeqwen_edge.device.source import Source


@dataclass(frozen=True)
class RecordResult:
    """What `record` wrote: the session directory, the Recorder's counts (gaze, frames, fixations, blinks, events,
    notices, audio_samples), the recording time covered in seconds, and whether Ctrl-C ended it early."""

    out_dir: Path
    counts: dict[str, int]
    span_s: float
    interrupted: bool


def expected_seconds(source: Source, duration_s: float | None = None) -> float | None:
    """How many seconds of recording time `record(source, duration_s=...)` will cover, if known beforehand (a live
    source without `duration_s`: None)."""
    start, end = source.start_ns, source.end_ns
    if start is not None and end is not None:
        length = (end - start) / 1e9
        return length if duration_s is None else min(duration_s, length)
    return duration_s


def record(
    source: Source,
    out_dir: str | Path,
    *,
    spec: str = "",
    kinds: Iterable[type] | None = None,
    duration_s: float | None = None,
    speed: float | None = None,
    overwrite: bool = False,
    progress: Callable[[float], None] | None = None,
) -> RecordResult:
    """Write `source`'s records (of `kinds`, default all) to a new session directory `out_dir`.

    Args:
        spec: the SOURCE spec, stored in session.json.
        duration_s: stop after this many seconds of recording time (from the first record); None: the whole source.
        speed: replay pace of a recorded source (`paced`): None or 0 = as fast as possible, 1 = real time.
        overwrite: replace the session files of a non-empty `out_dir` (else InputError).
        progress: called now and then with the recording time written so far, in seconds.

    Raises InputError when `out_dir` cannot be used (see `Recorder`); an error of the source propagates after the
    recording was aborted (nothing left when nothing was recorded, else the session marked "failed")."""
    from gazeqwen_edge.device.neon import NeonLiveSource

    rec = Recorder.for_source(out_dir, source, spec=spec, overwrite=overwrite)
    limit = None if duration_s is None else int(round(duration_s * 1e9))
    interrupted = False
    with rec:  # an error of the source aborts the recording (Recorder.abort): nothing left, or marked "failed"
        try:
            live = isinstance(source, NeonLiveSource)
            records = source.records(kinds, ordered=False) if live else source.records(kinds)
            t0 = None
            for i, r in enumerate(paced(records, speed=speed or None)):
                if t0 is None:
                    t0 = r.ts_ns
                if limit is not None and r.ts_ns - t0 > limit:
                    break
                rec.write(r)
                if progress is not None and i % 256 == 0:
                    progress((r.ts_ns - t0) / 1e9)
        except KeyboardInterrupt:
            interrupted = True
    span = ((rec.last_ns or 0) - (rec.first_ns or 0)) / 1e9
    return RecordResult(Path(out_dir), dict(rec.counts), span, interrupted)
