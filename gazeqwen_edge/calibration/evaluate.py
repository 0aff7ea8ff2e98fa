"""Agreement between two fixation lists (ours vs the device's): onset precision/recall/F1 and centre differences;
running our detector over a whole source (with its scene video and IMU when it has them) next to the source's own
fixations; the naive I-VT baseline."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from gazeqwen_edge.device.records import Fixation, GazeSample, ImuSample, SceneFrame
from gazeqwen_edge.errors import InputError


@dataclass(frozen=True)
class FixationAgreement:
    n_detected: int
    n_reference: int
    n_matched: int
    precision: float
    recall: float
    f1: float
    mean_onset_error_ms: float  # mean |onset difference| of matched pairs
    mean_centre_diff_px: float  # mean Euclidean distance between matched centres
    mean_abs_dx_px: float
    mean_abs_dy_px: float

    def summary(self) -> str:
        return (
            f"onsets within tolerance: precision {self.precision:.3f}, recall {self.recall:.3f}, F1 {self.f1:.3f} "
            f"({self.n_matched} matched of {self.n_detected} detected / {self.n_reference} reference); "
            f"mean |onset error| {self.mean_onset_error_ms:.1f} ms; centre difference mean {self.mean_centre_diff_px:.1f}"
            f" px (|dx| {self.mean_abs_dx_px:.1f}, |dy| {self.mean_abs_dy_px:.1f})"
        )


def match_fixations(
    detected: Sequence[Fixation], reference: Sequence[Fixation], tolerance_ms: float = 50.0
) -> tuple[FixationAgreement, list[tuple[int, int]]]:
    """One-to-one matching of fixation onsets within `tolerance_ms` (greedy by smallest onset difference).
    Returns the agreement figures and the matched (detected index, reference index) pairs."""
    tol = tolerance_ms * 1e6
    cands = []
    for i, d in enumerate(detected):
        for j, r in enumerate(reference):
            diff = abs(d.start_ns - r.start_ns)
            if diff <= tol:
                cands.append((diff, i, j))
    cands.sort()
    used_d, used_r, pairs = set(), set(), []
    for _, i, j in cands:
        if i not in used_d and j not in used_r:
            used_d.add(i)
            used_r.add(j)
            pairs.append((i, j))
    pairs.sort()
    m = len(pairs)
    p = m / len(detected) if detected else 0.0
    r = m / len(reference) if reference else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    if pairs:
        on = np.array([abs(detected[i].start_ns - reference[j].start_ns) / 1e6 for i, j in pairs])
        dxy = np.array([(detected[i].x - reference[j].x, detected[i].y - reference[j].y) for i, j in pairs])
        centre, adx, ady = float(np.linalg.norm(dxy, axis=1).mean()), *np.abs(dxy).mean(0).tolist()
        onset = float(on.mean())
    else:
        onset = centre = adx = ady = float("nan")
    return FixationAgreement(len(detected), len(reference), m, p, r, f1, onset, centre, adx, ady), pairs


def naive_ivt(ts_ns, x, y, threshold_px_s: float = 1500.0, min_duration_ms: float = 70.0) -> list[Fixation]:
    """The naive velocity-threshold floor every detector here is compared with (REFERENCE.md section 6): positions
    Savitzky-Golay smoothed (window 11, order 3, on the samples as they come), speed = `numpy.gradient` in px/s on
    the real timestamps, fixations = runs of samples below `threshold_px_s` lasting >= `min_duration_ms` (first to
    last sample), centre = mean of the raw samples. Offline, no micro-saccade merging, no camera model.
    `ts_ns` (N,) int ns, `x`, `y` (N,) px; returns `Fixation(source="naive-ivt")` in time order."""
    from scipy.signal import savgol_filter

    ts = np.asarray(ts_ns, dtype=np.int64)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(ts) < 11:
        return []
    p = savgol_filter(np.stack([x, y], 1), 11, 3, axis=0)
    v = np.linalg.norm(np.gradient(p, (ts - ts[0]) / 1e9, axis=0), axis=1)
    slow = np.r_[False, v < threshold_px_s, False].astype(np.int8)
    starts, ends = np.flatnonzero(np.diff(slow) == 1), np.flatnonzero(np.diff(slow) == -1) - 1
    return [
        Fixation(int(ts[i]), int(ts[j]), float(x[i : j + 1].mean()), float(y[i : j + 1].mean()), "naive-ivt")
        for i, j in zip(starts, ends, strict=True)
        if ts[j] - ts[i] >= min_duration_ms * 1e6
    ]


@dataclass
class SourceDetection:
    fixations: list[Fixation]  # ours, in raw gaze px
    reference: list[Fixation]  # the source's own (e.g. the Neon's), empty when it has none
    n_gaze: int
    n_frames: int  # scene frames used for head-motion compensation
    detector_s: float  # time spent in our detector
    n_imu: int = 0  # IMU samples used for head-motion compensation


def _records_with_optional(source, kinds: set, optional: tuple[type, ...] = (SceneFrame, ImuSample)) -> Iterator:
    """The source's records of `kinds`, plus those of the `optional` kinds it can deliver: a kind asked for by name
    that the source refuses (a gaze-only recording's scene frames, an unreadable IMU: InputError) is left out, the
    richest combination that opens being used."""
    for k in range(len(optional), -1, -1):
        for extra in combinations(optional, k):
            try:
                it = source.records(kinds | set(extra))
                first = next(it)
            except StopIteration:
                return
            except InputError:
                if k == 0:
                    raise
                continue
            yield first
            yield from it
            return


def detect_on_source(source, detector) -> SourceDetection:
    """Run `detector` (an OnlineFixationDetector) over a source's gaze (with its scene frames and IMU samples when
    it has them, for head-motion compensation) and collect the source's own fixations beside ours."""
    ours: list[Fixation] = []
    reference: list[Fixation] = []
    n_gaze = n_frames = n_imu = 0
    spent = 0.0
    for rec in _records_with_optional(source, {GazeSample, Fixation}):
        if isinstance(rec, Fixation):
            reference.append(rec)
            continue
        n_gaze += isinstance(rec, GazeSample)
        n_frames += isinstance(rec, SceneFrame)
        n_imu += isinstance(rec, ImuSample)
        t0 = time.perf_counter()
        ours += detector.push_record(rec)
        spent += time.perf_counter() - t0
    t0 = time.perf_counter()
    ours += detector.flush()
    spent += time.perf_counter() - t0
    return SourceDetection(ours, reference, n_gaze, n_frames, spent, n_imu)
