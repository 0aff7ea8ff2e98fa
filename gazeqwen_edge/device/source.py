"""The one interface every source implements: replay readers, synthetic scenes, the live Neon.

Policies every recorded-source reader follows (so the same fault reads the same everywhere):

- Time order. Records are delivered in non-decreasing `ts_ns`. A stream whose timestamps go backwards is re-sorted
  (stable, so equal times keep their file order) and a `Notice(kind="reordered")` says how many samples were out of
  order and by how much; nothing is dropped. Where re-sorting would pair data with the wrong time, the file is
  refused with InputError instead: scene-frame timestamps (frames are decoded in file order) and the parts of a
  multi-part Neon stream. Events are the one exception without a notice: the Companion app and our recorder append
  events in arrival order, and an event sent with its own (earlier) time lands after later ones by design.
- Values no device produces. Gaze samples and fixations with NaN / infinite coordinates or ones far outside any
  scene image (`possible_position`: `GAZE_MIN_PX`, `GAZE_MAX_PX`) are dropped with a `Notice(kind="invalid")` giving
  their count; fixations and blinks that end before they start likewise, and samples, fixations and blinks stamped
  more than a day from the recording's median time (`possible_times`; the gaze's median: a timestamp of 0, a clock
  jump). A file
  whose every row is unusable, or a value that cannot be read at all, is an InputError.
- IMU readings (`ImuSample`): rows whose angular velocity is not finite or beyond the sensor's widest range
  (`GYRO_MAX_DEG_S`), whose acceleration is beyond `ACCEL_MAX_G` or whose quaternion is not a unit one are dropped
  with a `Notice(kind="invalid")`; acceleration or quaternion values that are absent (empty, NaN) are delivered as
  None. The IMU is an auxiliary stream: when it is there but cannot be read, `records()` without `kinds` goes on
  without it and says so (`Notice(kind="imu_unreadable")`); asking for `ImuSample` explicitly raises the InputError.
- Pauses. An interval of more than `GAP_MIN_NS` without gaze is a gap in the recording (a pause between the parts of
  a Neon recording, a disconnect): `gaps` lists them, replay delivers a `Notice(kind="gap")` at the start of each,
  and rates are computed over recorded time (see `inspect.summarize`).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from functools import cached_property
from os import PathLike
from typing import NamedTuple

import numpy as np

from gazeqwen_edge.device.records import CameraIntrinsics, GazeSample, ImuSample, Notice, Record
from gazeqwen_edge.errors import InputError

# A pause: no gaze for more than 1 s. Neon gaze comes at 200 Hz (or at the realtime rate, >= 30 Hz, in the `gaze ps*`
# files), so 1 s is >= 30 missing samples: not jitter, and short enough that a pause between recording parts (which
# takes the wearer seconds on the phone) is always seen.
GAP_MIN_NS = 1_000_000_000

# The widest full-scale ranges of the Neon's IMU (TDK ICM-20948 datasheet: gyroscope +-250 .. +-2000 deg/s,
# accelerometer +-2 .. +-16 g): a reading beyond them cannot come from the sensor.
GYRO_MAX_DEG_S = 2000.0
ACCEL_MAX_G = 16.0
QUATERNION_NORM_TOL = 0.01  # |norm - 1| of a stored unit quaternion (float32 storage: ~1e-7; CSV text: ~1e-9)

# Gaze in scene-camera px lies within the image or near it: Neon reports gaze a little outside the frame, but a point
# a whole Neon scene-camera width (1600 px, REFERENCE.md section 4) beyond the image's edge is more than ~70 deg off
# the camera's axis (103 x 77 deg field of view), past the eye's ~50 deg range of rotation. Coordinates outside
# [GAZE_MIN_PX, GAZE_MAX_PX] (the 1600 x 1200 frame plus its width on every side) come from no device.
GAZE_MIN_PX = -1600.0
GAZE_MAX_PX = 1600.0 + 1600.0


def possible_position(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which scene-camera positions (x, y px arrays) a device can report: both within [GAZE_MIN_PX, GAZE_MAX_PX]
    (bool array; NaN and infinities are False)."""
    with np.errstate(invalid="ignore"):
        return (x >= GAZE_MIN_PX) & (x <= GAZE_MAX_PX) & (y >= GAZE_MIN_PX) & (y <= GAZE_MAX_PX)


# A recording lasts hours, not days: a sample more than this from the median time of its stream (a timestamp of 0, a
# clock that jumped by years) was stamped by no device clock running during the recording.
MAX_TIME_FROM_MEDIAN_NS = 24 * 3600 * 1_000_000_000


def possible_times(ts_ns: np.ndarray, median_ns: int | None = None) -> np.ndarray:
    """Which timestamps (int64 ns array) a device clock running during the recording can have given: those within
    MAX_TIME_FROM_MEDIAN_NS of `median_ns` (the recording's median time; default: that of `ts_ns`, which needs
    enough samples to be the recording's: a dense stream such as gaze). Bool array; all True when empty."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if not len(ts):
        return np.ones(0, bool)
    median = int(np.median(ts)) if median_ns is None else int(median_ns)
    return np.abs(ts - median) <= MAX_TIME_FROM_MEDIAN_NS


class ImuArrays(NamedTuple):
    """An IMU stream as arrays, in time order: `ts_ns` (N,) int64 unix ns, `gyro` (N, 3) float64 deg/s, `accel`
    (N, 3) float64 g and `quaternion` (N, 4) float64 (w, x, y, z); NaN rows of `accel` / `quaternion` are absent."""

    ts_ns: np.ndarray
    gyro: np.ndarray
    accel: np.ndarray
    quaternion: np.ndarray


class SourceWarning(UserWarning):
    """A recoverable problem with a source that its consumer may not see as a Notice (e.g. a gaze-only analysis of a
    recording whose scene video is unreadable). Issued once per source and problem."""


def warn_about(path: str | PathLike, message: str) -> None:
    """Issue a `SourceWarning` about a file, shown as `<path>:0: SourceWarning: <message>` (no source line)."""
    warnings.warn_explicit(message, SourceWarning, str(path), 0)


def find_gaps(ts_ns: np.ndarray, min_gap_ns: int = GAP_MIN_NS) -> list[tuple[int, int]]:
    """(last_ns before, first_ns after) of every interval longer than `min_gap_ns` in sorted times `ts_ns` (int64)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if len(ts) < 2:
        return []
    k = np.nonzero(np.diff(ts) > min_gap_ns)[0]
    return [(int(ts[i]), int(ts[i + 1])) for i in k]


def gap_notices(gaps: list[tuple[int, int]], what: str = "gaze") -> list[Notice]:
    """One `Notice(kind="gap")` per gap, stamped at the gap's start (the last sample before it)."""
    return [
        Notice(a, "gap", f"no {what} for {(b - a) / 1e9:.2f} s (recording paused or data lost); it resumes at {b} ns")
        for a, b in gaps
    ]


def time_order(ts_ns: np.ndarray, where: str, level: str = "warning") -> tuple[np.ndarray | None, Notice | None]:
    """The time-order policy (module docstring) for one stream: None, None when `ts_ns` never goes backwards, else
    (a stable argsort putting it in time order, the Notice that says so). `where` names the file / stream."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if len(ts) < 2:
        return None, None
    back = np.diff(ts) < 0
    if not back.any():
        return None, None
    order = np.argsort(ts, kind="stable")
    worst = int(-np.diff(ts).min())
    first = int(np.argmax(back)) + 1
    msg = (
        f"{where}: {int(back.sum())} timestamp(s) go backwards (first at sample {first}, at most "
        f"{worst / 1e6:.3f} ms back): re-sorted into time order"
    )
    return order, Notice(int(ts.min()), "reordered", msg, level)


def invalid_notice(ts_ns: int, where: str, n_bad: int, n_all: int, what: str) -> Notice:
    """The Notice for `n_bad` of `n_all` rows dropped because their values cannot come from a device."""
    return Notice(int(ts_ns), "invalid", f"{where}: {n_bad} of {n_all} {what}: dropped", "warning")


class Source(ABC):
    """Iterate records in time order; know the scene size and intrinsics; close cleanly.

    `kinds` restricts what is delivered (e.g. {GazeSample, Fixation} for gaze-only analysis) so a reader can skip
    decoding what nobody asked for.
    """

    name: str = "source"

    @property
    def scene_size(self) -> tuple[int, int] | None:
        """(width, height) of the scene camera in px, or None if the source has no scene camera."""
        return None

    @property
    def intrinsics(self) -> CameraIntrinsics | None:
        return None

    @property
    def gaze_offset(self) -> tuple[float, float]:
        """Wearer offset in scene px (to be ADDED to raw gaze) as recorded with the source; (0, 0) if none.

        Sign convention (image px, x right, y down): corrected = (x + dx, y + dy). Records carry raw gaze, so sources
        whose files store corrected gaze remove the offset when reading: Neon native recordings store gaze with
        info.json's `gaze_offset` already added (checked on the demo recording: stored gaze minus the app's own
        fixation means is (+27.1, +6.7) px for gaze_offset [27.24, 6.64]); Pupil Cloud exports and our sessions
        likewise store corrected gaze in gaze.csv. Adding `gaze_offset` to a record gives back what the app showed.
        """
        return (0.0, 0.0)

    @property
    def start_ns(self) -> int | None:
        return None

    @property
    def end_ns(self) -> int | None:
        return None

    @abstractmethod
    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        """All records in non-decreasing `ts_ns` order (live sources reach this by holding records for a short
        reorder window; see `NeonLiveSource.records`)."""

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files, sockets, decoders. Safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecordedSource(Source):
    """A recorded source that holds its gaze as arrays: subclasses provide `_gaze` = (ts_ns int64, x, y, worn), raw
    gaze without the wearer offset, in time order, and collect what they had to tell in `_notices`."""

    _gaze: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    _notices: list[Notice]
    _told_video: set[str]  # "notice" / "warning" once told that the scene video is unreadable

    def gaze_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts_ns, x, y) of the gaze without the wearer offset."""
        ts, x, y, _ = self._gaze
        return ts, x, y

    @cached_property
    def gaps(self) -> list[tuple[int, int]]:
        """(last_ns before, first_ns after) of each interval of more than `GAP_MIN_NS` without gaze."""
        return find_gaps(self._gaze[0])

    def _checked_gaze(self, ts, x, y, worn, where: str, at_ns: int | None = None, reorder_level: str = "warning"):
        """Apply the module's policies to a gaze stream read from `where`: re-sort backwards times (Notice), drop
        samples at positions no device reports (`possible_position`: NaN, infinite or far outside the image; Notice),
        say when there is no gaze at all (Notice at `at_ns`). Arrays in, arrays out (ts int64, x, y float64, worn
        bool)."""
        ts = np.asarray(ts, dtype=np.int64)
        x, y, worn = np.asarray(x), np.asarray(y), np.asarray(worn)
        when = possible_times(ts)
        if not when.all():  # before re-sorting: a sample stamped 0 is no sample "out of order by 56 years"
            self._notices.append(
                invalid_notice(
                    int(np.median(ts)), where, int((~when).sum()), len(ts),
                    f"gaze samples have a timestamp more than {MAX_TIME_FROM_MEDIAN_NS // 3_600_000_000_000} h "
                    "from the rest of the recording (a time no device clock gave it)",
                )
            )  # fmt: skip
            ts, x, y, worn = ts[when], x[when], y[when], worn[when]
        order, note = time_order(ts, where, reorder_level)
        if order is not None:
            ts, x, y, worn = ts[order], x[order], y[order], worn[order]
            self._notices.append(note)
        ok = possible_position(x, y)
        if not ok.all():
            bad = int((~ok).sum())
            why = (
                "gaze samples have NaN or infinite coordinates, or coordinates no device reports (outside "
                f"{GAZE_MIN_PX:g}..{GAZE_MAX_PX:g} px)"
            )
            self._notices.append(invalid_notice(ts[~ok][0], where, bad, len(ts), why))
            ts, x, y, worn = ts[ok], x[ok], y[ok], worn[ok]
        if not len(ts):
            self._notices.append(Notice(int(at_ns or 0), "no_gaze", f"{where}: no gaze samples", "warning"))
        return ts, x, y, worn

    def _tell_video_unreadable(self, problem, going_on: str, at_ns: int, warn: bool) -> None:
        """Tell once that the scene video is unreadable (`problem`, an InputError) and gaze-only work goes on (how:
        `going_on`): a Notice("video_unreadable"), and with `warn` (the gaze-only path took the scene size without
        the video, where no Notice may be read) one SourceWarning carrying the problem's hint."""
        msg = f"{problem.problem}; going on without it (gaze-only): {going_on}"
        told = self.__dict__.setdefault("_told_video", set())
        if "notice" not in told:
            told.add("notice")
            self._notices.append(Notice(int(at_ns), "video_unreadable", f"{problem.path}: {msg}", "warning"))
        if warn and "warning" not in told:
            told.add("warning")
            warn_about(problem.path, msg + (f" ({problem.hint})" if problem.hint else ""))

    def _checked_intervals(self, start, end, x, y, where: str, what: str, reorder_level: str = "warning") -> np.ndarray:
        """Indices of the usable fixations/blinks read from `where` (start, end int64 ns; mean x, y px, or None for
        blinks), in order of their end (delivery) time: rows at a position no device reports (`possible_position`)
        or ending before they start are dropped and times that go backwards re-sorted, each told by a Notice (the
        module's policies)."""
        start, end = np.asarray(start, np.int64), np.asarray(end, np.int64)
        gaze_ts = self._gaze[0]  # the recording's time: its gaze (200 Hz), not a handful of fixations
        median = int(np.median(gaze_ts)) if len(gaze_ts) else (int(np.median(end)) if len(end) >= 3 else None)
        when = (
            np.ones(len(end), bool) if median is None else possible_times(end, median) & possible_times(start, median)
        )
        ok = (end >= start) & when
        if x is not None:
            ok &= possible_position(x, y)
        if not ok.all():  # told at the first bad row's end, or the recording's time when that end is impossible
            at = end[~ok & when][0] if (~ok & when).any() else (median or 0)
            why = (
                f"{what} are impossible (a NaN position or one far outside the image, an end before the start, or "
                "a time far from the rest of the recording)"
            )
            self._notices.append(invalid_notice(at, where, int((~ok).sum()), len(ok), why))
        keep = np.nonzero(ok)[0]
        order, note = time_order(end[keep], where, reorder_level)
        if order is not None:
            self._notices.append(note)
            keep = keep[order]
        return keep

    def _checked_imu(self, ts, gyro, accel, quat, where: str, reorder_level: str = "warning") -> ImuArrays:
        """Apply the module's policies to an IMU stream read from `where` (ts (N,) int ns, gyro (N, 3) deg/s, accel
        (N, 3) g or None, quat (N, 4) (w, x, y, z) or None; NaN = absent): backwards times re-sorted, impossible rows
        dropped, each told by a Notice."""
        ts = np.asarray(ts, dtype=np.int64)
        n = len(ts)
        gyro = np.asarray(gyro, dtype=np.float64).reshape(n, 3)
        accel = np.full((n, 3), np.nan) if accel is None else np.asarray(accel, dtype=np.float64).reshape(n, 3)
        quat = np.full((n, 4), np.nan) if quat is None else np.asarray(quat, dtype=np.float64).reshape(n, 4)
        order, note = time_order(ts, where, reorder_level)
        if order is not None:
            ts, gyro, accel, quat = ts[order], gyro[order], accel[order], quat[order]
            self._notices.append(note)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(gyro).all(axis=1) | (np.abs(gyro) > GYRO_MAX_DEG_S).any(axis=1)
            bad |= np.isfinite(accel).all(axis=1) & (np.abs(accel) > ACCEL_MAX_G).any(axis=1)
            bad |= np.isfinite(quat).all(axis=1) & (np.abs(np.linalg.norm(quat, axis=1) - 1) > QUATERNION_NORM_TOL)
        if bad.any():
            why = (
                f"IMU samples have an angular velocity that is not finite or beyond {GYRO_MAX_DEG_S:g} deg/s, an "
                f"acceleration beyond {ACCEL_MAX_G:g} g or a quaternion that is not a unit one"
            )
            self._notices.append(invalid_notice(ts[bad][0], where, int(bad.sum()), n, why))
            ts, gyro, accel, quat = ts[~bad], gyro[~bad], accel[~bad], quat[~bad]
        return ImuArrays(ts, gyro, accel, quat)

    def _imu_stream(self, explicit: bool) -> Iterator[ImuSample] | None:
        """The IMU records of `_imu` (a subclass's cached ImuArrays, None without an IMU stream), None when there are
        none. An IMU stream that cannot be read raises its InputError when `explicit` (ImuSample was asked for by
        name), else it is told once by a Notice("imu_unreadable") and left out (the module's policy)."""
        try:
            imu: ImuArrays | None = self._imu
        except InputError as e:
            if explicit:
                raise
            told = self.__dict__.setdefault("_told_imu", [False])
            if not told[0]:
                told[0] = True
                msg = f"{e.path}: {e.problem}; going on without the IMU"
                self._notices.append(Notice(int(self.start_ns or 0), "imu_unreadable", msg, "warning"))
            return None
        if imu is None or not len(imu.ts_ns):
            return None
        return self._imu_records(imu)

    @staticmethod
    def _imu_records(imu: ImuArrays) -> Iterator[ImuSample]:
        has_a = np.isfinite(imu.accel).all(axis=1).tolist()
        has_q = np.isfinite(imu.quaternion).all(axis=1).tolist()
        rows = zip(imu.ts_ns.tolist(), imu.gyro.tolist(), imu.accel.tolist(), imu.quaternion.tolist(), strict=True)
        for (t, g, a, q), ha, hq in zip(rows, has_a, has_q, strict=True):
            yield ImuSample(t, tuple(g), tuple(a) if ha else None, tuple(q) if hq else None)

    def _gaze_records(self) -> Iterator[GazeSample]:
        ts, x, y, worn = self._gaze
        for t, a, b, w in zip(ts.tolist(), x.tolist(), y.tolist(), worn.tolist(), strict=True):
            yield GazeSample(t, a, b, w)
