"""Scanpaths for the gaze resampler: rows [x, y, mid_t, dur] (x, y in [0, 1] of the frame the model sees, times in
seconds from an origin), with a bounded history and "what was known at time t".

`scanpath_rows` is the one conversion from fixations to rows; everything here goes through it.

    rows = scanpath_rows(fixations, GazeMapper(None, FrameTransform.identity(w, h)), origin_ns=clip_start_ns)

    mapper = GazeMapper(camera, FrameTransform.identity(1600, 1200), offset=wearer_offset)  # the frames Qwen gets
    sp = OnlineScanpath(mapper, origin_ns=session_start_ns)
    for rec in source.records():
        sp.push_record(rec)                        # GazeSample / SceneFrame / ImuSample; others ignored
        rows = sp.rows_at(rec.ts_ns)                # what the detector knew at that moment (ongoing fixation included)

Apply the wearer offset in one place only: the mapper's `offset` (with the detector fed raw gaze, as here).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gazeqwen_edge.calibration.camera import CameraModel, GazeMapper
from gazeqwen_edge.calibration.fixation import FixationParams, OnlineFixationDetector
from gazeqwen_edge.device.records import Fixation, GazeSample, ImuSample, SceneFrame
from gazeqwen_edge.errors import InputError


def scanpath_rows(fixations: Iterable[Fixation], mapper: GazeMapper, origin_ns: int) -> np.ndarray:
    """Fixations -> the gaze resampler's scanpath: (N, 4) float32 rows [x, y, mid_t, dur], in the given order.

    - x, y: the fixation's centre (raw device px, as `Fixation` records carry it: distorted scene px, wearer offset
      not applied) through `mapper`: + the wearer offset, undistorted if the mapper says so, then its
      `FrameTransform`, giving [0, 1] of the frame the model is fed (values outside [0, 1] lie outside that frame);
    - mid_t: the fixation's midpoint, seconds after `origin_ns`; dur: its duration (end - start), seconds.
    `origin_ns` must be on the fixations' clock (unix ns for device data); use the timestamp of the clip's first
    frame, so that rows and the model's frame times (clip start + t * 2 / fps) share their zero. A fixation is active
    at frame time t when mid_t - dur/2 <= t <= mid_t + dur/2 (REFERENCE.md section 1).
    Raises InputError for a fixation that ends before it starts or has a non-finite centre (no device reports one).
    """
    fx = list(fixations)
    if not fx:
        return np.zeros((0, 4), np.float32)
    start = np.array([f.start_ns for f in fx], dtype=np.int64)
    end = np.array([f.end_ns for f in fx], dtype=np.int64)
    xy = np.array([[f.x, f.y] for f in fx], dtype=np.float64)
    bad = (end < start) | ~np.isfinite(xy).all(axis=1)
    if bad.any():
        f = fx[int(np.flatnonzero(bad)[0])]
        raise InputError(None, f"a fixation no device reports: {f} (it ends before it starts or has no finite centre)")
    uv = mapper.to_model(xy)
    mid = ((start - origin_ns) + (end - start) / 2) / 1e9  # (int64 differences first: unix ns lose precision as float)
    return np.column_stack([uv, mid, (end - start) / 1e9]).astype(np.float32)


@dataclass(frozen=True)
class KnownFixation:
    fixation: Fixation
    reported_ns: int  # when the detector emitted it (its end is known from then on)


class ScanpathBuilder:
    """Keeps the recent fixations (bounded by count and age) and turns them into resampler rows (`scanpath_rows`)."""

    def __init__(
        self,
        mapper: GazeMapper,
        origin_ns: int = 0,
        max_fixations: int = 1024,
        max_age_s: float | None = None,
        latency_ns: int = 0,
    ):
        self.mapper = mapper
        self.origin_ns = int(origin_ns)
        self.max_age_ns = None if max_age_s is None else int(max_age_s * 1e9)
        self.latency_ns = int(latency_ns)  # detector delay, for reconstructing past "ongoing" fixations
        self._fix: deque[KnownFixation] = deque(maxlen=max_fixations)

    def __len__(self) -> int:
        return len(self._fix)

    @property
    def fixations(self) -> list[KnownFixation]:
        return list(self._fix)

    def add(self, fixation: Fixation, reported_ns: int | None = None) -> KnownFixation:
        k = KnownFixation(fixation, fixation.end_ns if reported_ns is None else int(reported_ns))
        self._fix.append(k)
        if self.max_age_ns is not None:
            self.prune(k.reported_ns - self.max_age_ns)
        return k

    def extend(self, fixations: Iterable[Fixation], reported_ns: int | None = None) -> None:
        for f in fixations:
            self.add(f, reported_ns)

    def prune(self, before_ns: int) -> None:
        """Forget fixations that ended before `before_ns`."""
        while self._fix and self._fix[0].fixation.end_ns < before_ns:
            self._fix.popleft()

    def rows(
        self,
        t_ns: int | None = None,
        since_ns: int | None = None,
        ongoing: Fixation | None = None,
        min_ongoing_ns: int = 0,
    ) -> np.ndarray:
        """Rows [x, y, mid_t, dur] (float32, (N, 4)) of what was known at `t_ns` (default: everything): fixations
        reported by then, plus the fixation in progress at `t_ns` (`ongoing` when given - the detector's present
        view -, otherwise reconstructed from a later-reported fixation as start .. t - latency, if longer than
        `min_ongoing_ns`). `since_ns` drops fixations that ended before it (e.g. the start of the clip)."""
        known: list[Fixation] = []
        last_end = None
        for k in self._fix:
            f = k.fixation
            if since_ns is not None and f.end_ns < since_ns:
                continue
            if t_ns is None or k.reported_ns <= t_ns:
                known.append(f)
                last_end = f.end_ns
            elif ongoing is None and f.start_ns <= t_ns:
                end = min(f.end_ns, t_ns - self.latency_ns)
                if end - f.start_ns > min_ongoing_ns:
                    known.append(Fixation(f.start_ns, end, f.x, f.y, f.source))
        if ongoing is not None and (t_ns is None or ongoing.start_ns <= t_ns):
            end = ongoing.end_ns if t_ns is None else min(ongoing.end_ns, t_ns)
            if last_end is None or ongoing.start_ns > last_end:
                known.append(Fixation(ongoing.start_ns, end, ongoing.x, ongoing.y, ongoing.source))
        return scanpath_rows(known, self.mapper, self.origin_ns)

    def rows_until(self, t_ns: int, since_ns: int | None = None, ongoing: Fixation | None = None) -> np.ndarray:
        """Rows [x, y, mid_t, dur] (float32, (N, 4)) of the fixations up to `t_ns` as known now, in hindsight: every
        fixation begun before `t_ns`, the one in progress at `t_ns` cut at it (the detector's `ongoing` one too, when
        given and not yet reported). Unlike `rows(t_ns)`, which is what was known at `t_ns`: this is what a question
        asked at `t_ns` and answered later should see, and what the training "stream" scanpath protocol feeds
        (training.streamgaze.item_scanpath: fixations overlapping the window, cut at the question time).
        `since_ns` drops fixations that ended before it."""
        known: list[Fixation] = []
        last_end = None
        for k in self._fix:
            f = k.fixation
            if f.start_ns >= t_ns or (since_ns is not None and f.end_ns < since_ns):
                continue
            known.append(f if f.end_ns <= t_ns else Fixation(f.start_ns, t_ns, f.x, f.y, f.source))
            last_end = f.end_ns if last_end is None else max(last_end, f.end_ns)
        if ongoing is not None and ongoing.start_ns < t_ns and (last_end is None or ongoing.start_ns > last_end):
            known.append(Fixation(ongoing.start_ns, min(ongoing.end_ns, t_ns), ongoing.x, ongoing.y, ongoing.source))
        return scanpath_rows(known, self.mapper, self.origin_ns)


class OnlineScanpath:
    """An `OnlineFixationDetector` feeding a `ScanpathBuilder`: push records, read rows at any time."""

    def __init__(
        self,
        mapper: GazeMapper,
        origin_ns: int = 0,
        params: FixationParams | None = None,
        max_fixations: int = 1024,
        max_age_s: float | None = None,
    ):
        # without intrinsics: a nominal camera of the gaze's own frame size (speeds in degrees need one)
        camera = mapper.camera or CameraModel.pinhole(mapper.transform.src_width, mapper.transform.src_height)
        self.detector = OnlineFixationDetector(camera, params)
        latency = self.detector.classification_delay_ns
        self.builder = ScanpathBuilder(mapper, origin_ns, max_fixations, max_age_s, latency_ns=latency)
        self.now_ns: int | None = None

    def push_record(self, rec) -> list[Fixation]:
        """Feed a record: gaze, scene frames and IMU samples go to the detector (frames and IMU for head-motion
        compensation); returns the fixations that became final with it."""
        if isinstance(rec, GazeSample | SceneFrame | ImuSample):
            self.now_ns = rec.ts_ns if self.now_ns is None else max(self.now_ns, rec.ts_ns)
            new = self.detector.push_record(rec)
            self.builder.extend(new, rec.ts_ns)
            return new
        return []

    def flush(self) -> list[Fixation]:
        new = self.detector.flush()
        self.builder.extend(new, self.now_ns)
        return new

    @property
    def settle_ns(self) -> int:
        """How long the gaze must run past a time t before the fixation in progress at t is known, ns: the detector's
        classification delay, its minimum fixation duration (a shorter ongoing fixation is not reported) and one
        resampling period: 105 ms at the default FixationParams (30 + 70 + 5)."""
        d = self.detector
        return d.classification_delay_ns + d.min_duration_ns + d.period_ns

    def rows_until(self, t_ns: int, since_ns: int | None = None) -> np.ndarray:
        """The fixations up to `t_ns` as known now (`ScanpathBuilder.rows_until`, with the detector's ongoing fixation):
        complete once the gaze has run `settle_ns` past `t_ns`."""
        return self.builder.rows_until(t_ns, since_ns, ongoing=self.detector.ongoing())

    def rows_at(self, t_ns: int | None = None, since_ns: int | None = None) -> np.ndarray:
        """Rows known at `t_ns` (default: now). At the present the detector's ongoing fixation is included."""
        present = t_ns is None or (self.now_ns is not None and t_ns >= self.now_ns)
        ongoing = self.detector.ongoing() if present else None
        return self.builder.rows(
            None if t_ns is None else t_ns, since_ns, ongoing=ongoing, min_ongoing_ns=self.detector.min_duration_ns
        )
