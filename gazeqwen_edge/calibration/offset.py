"""Wearer offset: a constant (dx, dy) in scene px ADDED to raw gaze (the Neon convention, checked on the demo
recording: its stored gaze = raw + info.json `gaze_offset`, x and y both added, y down).

- `apply_offset`: correct gaze points.
- `estimate_offset`: robust estimate from fixations on a known target (median, MAD outlier rejection, then the
  duration-weighted mean of the inliers) with the residual error in degrees.
- `OffsetStore`: our per-wearer store (JSON under $GAZEQWEN_EDGE_HOME or ~/.config/gazeqwen-edge/, atomic writes).
- `ArucoTarget`: find a printed ArUco marker's centre in scene frames.
- `calibrate_offset`: the routine behind `gazeqwen-edge calibrate offset`, against any `Source`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path

import numpy as np

from gazeqwen_edge.calibration.camera import CameraModel
from gazeqwen_edge.calibration.fixation import FixationParams, OnlineFixationDetector
from gazeqwen_edge.device._io import MAX_GAZE_OFFSET_PX
from gazeqwen_edge.device.records import Fixation, GazeSample, SceneFrame
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import ConfigError, DeviceError, InputError, write_error

STORE_FILENAME = "wearer_offsets.json"
STORE_VERSION = 1
# An offset is accepted only when enough fixation time agrees on it (estimate_offset's inliers):
# - at least half of the time spent in fixations while the wearer was asked to look at the target: less means they
#   mostly looked elsewhere or the target is wrong, and the agreeing fixations may be a chance cluster (1 of 12
#   fixations agreeing measured the wrong thing);
# - at least 0.5 s of it (100 samples at 200 Hz): the centre of a shorter look is a glance's, not a held gaze's.
# Time, not a count of fixations: a wearer who holds the target perfectly makes ONE long fixation.
MIN_USABLE_FRACTION = 0.5
MIN_USABLE_FIXATION_S = 0.5


def apply_offset(xy, offset: tuple[float, float]) -> np.ndarray:
    """Offset-corrected gaze: xy + (dx, dy), for points shaped (2,) or (N, 2)."""
    a = np.asarray(xy, dtype=np.float64)
    return a + np.asarray(offset, dtype=np.float64)


# ------------------------------------------------------------------------------------------------------- estimation
@dataclass(frozen=True)
class OffsetEstimate:
    dx: float
    dy: float
    n_fixations: int  # fixations considered
    n_used: int  # inliers the estimate is made from
    residual_before_deg: float  # median angular error to the target before correction (inliers)
    residual_after_deg: float  # ... after correction
    residual_after_rms_deg: float
    residual_after_px: float  # median distance to the target after correction, px
    spread_px: float = 0.0  # RMS distance of the inliers' own offsets (target - centre) from the estimate, px
    inliers: tuple[bool, ...] = field(default=(), repr=False)

    @property
    def offset(self) -> tuple[float, float]:
        return (self.dx, self.dy)


def estimate_offset(
    fixations_xy,
    targets_xy,
    camera: CameraModel | None = None,
    weights=None,
    max_distance_deg: float = 12.0,
    inlier_deg: float = 1.5,
) -> OffsetEstimate:
    """Estimate the constant offset that moves fixation centres onto their targets, robust to fixations that were
    not on the target (glances away).

    Each fixation proposes an offset (target - centre). The proposal supported by the largest total weight of
    fixations within `inlier_deg` of it wins (a weighted mode, so two fixations are enough when one is longer);
    the estimate is the weighted mean of its inliers, whose set is then re-selected once around that mean.

    Args:
        fixations_xy: (N, 2) fixation centres in raw scene px.
        targets_xy: (N, 2) or (2,) where the wearer was asked to look, scene px.
        camera: for distances in degrees (default: a pinhole Neon-like 1600x1200 model).
        weights: per-fixation weights (e.g. durations); default equal.
        max_distance_deg: fixations further than this from their target are not looking at it (never inliers).
        inlier_deg: how far (deg) a fixation's offset may lie from the estimate and still count.
    """
    f = np.asarray(fixations_xy, dtype=np.float64).reshape(-1, 2)
    t = np.array(np.broadcast_to(np.asarray(targets_xy, dtype=np.float64), f.shape))
    if len(f) == 0:
        raise InputError(None, "no fixations to estimate an offset from", hint="look at the target for longer")
    w = np.ones(len(f)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    cam = camera or CameraModel.pinhole(1600, 1200)
    d = t - f
    near = cam.angle_deg(f, t) <= max_distance_deg
    if not near.any():
        raise InputError(
            None,
            f"none of the {len(f)} fixations was within {max_distance_deg:.0f} deg of the target",
            hint="make sure the wearer looks at the target (and the target position is right)",
        )
    tol = inlier_deg * cam.px_per_degree(t[:1])
    dist = np.linalg.norm(d[:, None, :] - d[None, :, :], axis=2)  # (N, N) distances between proposals, px
    support = ((dist <= tol) & near[None, :]) @ w
    support[~near] = -1
    seed = d[int(np.argmax(support))]
    for _ in range(2):
        inl = near & (np.linalg.norm(d - seed, axis=1) <= tol)
        seed = (d[inl] * w[inl, None]).sum(0) / w[inl].sum()
    off = seed
    before = cam.angle_deg(f[inl], t[inl])
    after = cam.angle_deg(f[inl] + off, t[inl])
    return OffsetEstimate(
        dx=float(off[0]),
        dy=float(off[1]),
        n_fixations=len(f),
        n_used=int(inl.sum()),
        residual_before_deg=float(np.median(before)),
        residual_after_deg=float(np.median(after)),
        residual_after_rms_deg=float(np.sqrt(np.mean(after**2))),
        residual_after_px=float(np.median(np.linalg.norm(f[inl] + off - t[inl], axis=1))),
        spread_px=float(np.sqrt(np.mean(np.sum((d[inl] - off) ** 2, axis=1)))),
        inliers=tuple(bool(x) for x in inl),
    )


# ------------------------------------------------------------------------------------------------------- store
def default_store_path() -> Path:
    home = os.environ.get("GAZEQWEN_EDGE_HOME")
    base = Path(home) if home else Path.home() / ".config" / "gazeqwen-edge"
    return base / STORE_FILENAME


@dataclass(frozen=True)
class WearerOffset:
    wearer: str
    dx: float
    dy: float
    residual_deg: float | None = None
    n_fixations: int | None = None
    updated: str = ""
    source: str = ""

    @property
    def offset(self) -> tuple[float, float]:
        return (self.dx, self.dy)


MAX_WEARER_NAME = 100  # characters


def check_wearer_name(wearer: str) -> str:
    """`wearer` unchanged when it can name a stored offset: 1 to MAX_WEARER_NAME printable characters (str.isprintable:
    no control character, which a later `calibrate show` would send to the terminal, no line break) without outer
    spaces; else ConfigError."""
    if not wearer or not wearer.strip():
        raise ConfigError("wearer name must not be empty")
    if len(wearer) > MAX_WEARER_NAME or not wearer.isprintable() or wearer.strip() != wearer:
        raise ConfigError(
            f"wearer name must be 1 to {MAX_WEARER_NAME} printable characters without outer spaces, got {wearer!r}",
            hint="choose a plain name, e.g. --wearer alice",
        )
    return wearer


class OffsetStore:
    """Per-wearer offsets in one small JSON file: {"version": 1, "wearers": {name: {dx, dy, ...}}}."""

    def __init__(self, path: str | PathLike | None = None):
        self.path = Path(path) if path is not None else default_store_path()

    def load(self) -> dict[str, WearerOffset]:
        if not self.path.exists():
            return {}
        if self.path.is_dir():
            raise InputError(self.path, "is a directory, not a wearer offset store", hint="give --store a file name")
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(
                self.path, f"wearer offset store is not readable JSON ({e})", hint="fix or delete it"
            ) from e
        if not isinstance(doc, dict) or not isinstance(doc.get("wearers"), dict):
            raise InputError(self.path, "wearer offset store has no 'wearers' object", hint="fix or delete it")
        out = {}
        for name, v in doc["wearers"].items():
            try:
                out[name] = WearerOffset(
                    wearer=name,
                    dx=float(v["dx"]),
                    dy=float(v["dy"]),
                    residual_deg=None if v.get("residual_deg") is None else float(v["residual_deg"]),
                    n_fixations=None if v.get("n_fixations") is None else int(v["n_fixations"]),
                    updated=str(v.get("updated", "")),
                    source=str(v.get("source", "")),
                )
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(self.path, f"entry for wearer '{name}' is malformed ({e})") from e
            d = (out[name].dx, out[name].dy)
            if not (all(math.isfinite(v) for v in d) and max(abs(v) for v in d) <= MAX_GAZE_OFFSET_PX):
                # 1e308 (or 5000 px) cannot come from a calibration: it would move every gaze sample out of the
                # image, or overflow to inf on the way to the model and leave a session without answers
                raise InputError(
                    self.path,
                    f"entry for wearer '{name}' has an offset no calibration can produce ({d[0]:.6g}, {d[1]:.6g}) "
                    f"px; finite and at most {MAX_GAZE_OFFSET_PX:g} px",
                    hint=f"measure it again: gazeqwen-edge calibrate offset --wearer {name} ... (the store was "
                    "edited or damaged)",
                )
        return out

    def get(self, wearer: str) -> WearerOffset | None:
        return self.load().get(wearer)

    def require(self, wearer: str) -> WearerOffset:
        """The stored offset of `wearer`; InputError naming the known wearers when there is none (an unknown name
        must never fall back to another offset)."""
        check_wearer_name(wearer)  # (a name no one can store: say so, not "not stored" with a hint to store it)
        entries = self.load()
        if wearer not in entries:
            known = ", ".join(f"'{n}'" for n in sorted(entries)) or "none yet"
            raise InputError(
                self.path,
                f"no offset stored for wearer '{wearer}' (known wearers: {known})",
                hint=f"measure one: gazeqwen-edge calibrate offset --wearer {wearer} --address HOST (or --source SPEC)",
            )
        return entries[wearer]

    def names(self) -> list[str]:
        return sorted(self.load())

    def set(
        self,
        wearer: str,
        offset: tuple[float, float],
        residual_deg: float | None = None,
        n_fixations: int | None = None,
        source: str = "",
    ) -> WearerOffset:
        check_wearer_name(wearer)
        dx, dy = float(offset[0]), float(offset[1])
        if not (math.isfinite(dx) and math.isfinite(dy)) or max(abs(dx), abs(dy)) > MAX_GAZE_OFFSET_PX:
            raise ConfigError(f"offset must be finite and at most {MAX_GAZE_OFFSET_PX:g} px, got {offset}")
        entries = self.load()
        entries[wearer] = WearerOffset(
            wearer, dx, dy, residual_deg, n_fixations, datetime.now(timezone.utc).isoformat(timespec="seconds"), source
        )
        self._write(entries)
        return entries[wearer]

    def remove(self, wearer: str) -> bool:
        entries = self.load()
        if wearer not in entries:
            return False
        del entries[wearer]
        self._write(entries)
        return True

    def _write(self, entries: dict[str, WearerOffset]) -> None:
        doc = {
            "version": STORE_VERSION,
            "wearers": {
                k: {kk: vv for kk, vv in asdict(v).items() if kk != "wearer"} for k, v in sorted(entries.items())
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".wearer_offsets.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(doc, fh, indent=2)
                    fh.write("\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            raise write_error(self.path, "the wearer offset store", e) from e


def resolve_offset(
    source: Source | None = None, wearer: str | None = None, store: OffsetStore | None = None
) -> tuple[tuple[float, float], str]:
    """The offset to ADD to a source's raw gaze and where it came from: our stored offset for `wearer` when one is
    named (InputError naming the known wearers when it has none: never another wearer's or the source's offset in
    its place), else what the source recorded (`Source.gaze_offset`, e.g. info.json), else none."""
    if wearer is not None:
        w = (store or OffsetStore()).require(wearer)
        return w.offset, f"stored for wearer '{wearer}'"
    if source is not None:
        off = tuple(float(v) for v in source.gaze_offset)
        if off != (0.0, 0.0):
            return (off[0], off[1]), "recorded with the source"
    return (0.0, 0.0), "none"


# ------------------------------------------------------------------------------------------------------- targets
class ArucoTarget:
    """Find a printed ArUco marker in scene frames; its centre (mean of the corners) is the target."""

    def __init__(self, dictionary: str = "DICT_4X4_50", marker_id: int | None = None):
        import cv2

        if not hasattr(cv2.aruco, dictionary):
            raise ConfigError(f"unknown ArUco dictionary '{dictionary}' (e.g. DICT_4X4_50, DICT_6X6_250)")
        self.dictionary = dictionary
        self.marker_id = marker_id
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
        self._det = cv2.aruco.ArucoDetector(d, cv2.aruco.DetectorParameters())

    def detect(self, rgb: np.ndarray) -> tuple[float, float] | None:
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        corners, ids, _ = self._det.detectMarkers(grey)
        if ids is None or len(ids) == 0:
            return None
        ids = ids.ravel()
        idx = [i for i in range(len(ids)) if self.marker_id is None or int(ids[i]) == self.marker_id]
        if not idx:
            return None
        c = np.asarray(corners[idx[0]], dtype=np.float64).reshape(-1, 2).mean(0)
        return float(c[0]), float(c[1])


def parse_target(spec: str, scene_size: tuple[int, int] | None) -> tuple[float, float] | ArucoTarget:
    """'center' | 'X,Y' (scene px) | 'aruco' | 'aruco:ID' | 'aruco:DICT_NAME:ID'."""
    s = spec.strip().lower()
    if s in ("center", "centre"):
        if scene_size is None:
            raise ConfigError("target 'center' needs the scene size, but this source has no scene camera")
        return (scene_size[0] / 2.0, scene_size[1] / 2.0)
    if s.startswith("aruco"):
        parts = spec.strip().split(":")[1:]
        try:
            if len(parts) == 0:
                return ArucoTarget()
            if len(parts) == 1:
                return ArucoTarget(marker_id=int(parts[0]))
            return ArucoTarget(parts[0].upper(), int(parts[1]))
        except ValueError:
            raise ConfigError(f"bad ArUco target '{spec}': expected aruco, aruco:ID or aruco:DICT_4X4_50:ID") from None
    try:
        x, y = (float(v) for v in s.split(","))
    except ValueError:
        raise ConfigError(f"bad target '{spec}': expected 'center', 'X,Y' in scene px, or 'aruco[:ID]'") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ConfigError(f"bad target '{spec}': the scene px must be finite numbers")
    if scene_size is not None and not (0 <= x <= scene_size[0] and 0 <= y <= scene_size[1]):
        raise ConfigError(f"target ({x:g}, {y:g}) lies outside the {scene_size[0]}x{scene_size[1]} scene")
    return (x, y)


# ------------------------------------------------------------------------------------------------------- routine
@dataclass
class CalibrationRun:
    estimate: OffsetEstimate
    fixations: list[Fixation]
    targets: np.ndarray  # (N, 2) target px per fixation
    n_samples: int
    n_frames: int
    marker_seen: int  # frames where the marker was found (ArUco targets)
    duration_s: float
    target_px: tuple[float, float] | None = None  # the fixed target point (None for a marker)


def camera_for(source: Source, scene_size: tuple[int, int] | None = None) -> CameraModel:
    """The source's camera model, or a Neon-like pinhole model of its scene size (default 1600x1200)."""
    intr = source.intrinsics
    if intr is not None:
        return CameraModel(intr)
    w, h = scene_size or source.scene_size or (1600, 1200)
    return CameraModel.pinhole(w, h)


TargetSpec = tuple[float, float] | ArucoTarget | str


def calibrate_offset(
    source: Source,
    target: TargetSpec,
    seconds: float = 5.0,
    camera: CameraModel | None = None,
    params: FixationParams | None = None,
    progress: Callable[[float, int], None] | None = None,
    wall_timeout_s: float | None = None,
    size_wait_s: float = 2.0,
) -> CalibrationRun:
    """Collect `seconds` of gaze (by the source's timestamps) while the wearer looks at `target`, detect fixations
    with our online detector on the RAW gaze, and estimate the offset that moves them onto the target.

    `target`: scene px (x, y), an `ArucoTarget`, or a spec string for `parse_target` ("center", "X,Y", "aruco:ID")
    resolved once the scene size is known (a live source learns it from its first frame: records are held back up
    to `size_wait_s` of source time for that). `progress(fraction, n_fixations)` is called as data arrives.
    `wall_timeout_s` (default: 3 x seconds + 10) bounds the wait on a live source that stops delivering.
    Raises InputError when the fixations agreeing on the offset cover less than `MIN_USABLE_FRACTION` of the
    fixation time or less than `MIN_USABLE_FIXATION_S`, DeviceError when no gaze arrives, ConfigError for a bad
    target or time."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"the collection time must be a positive number of seconds, got {seconds}")
    aruco = target if isinstance(target, ArucoTarget) else None
    if isinstance(target, str) and target.strip().lower().startswith("aruco"):
        aruco = parse_target(target, None)
    need_frames = aruco is not None or (isinstance(target, str) and source.scene_size is None)
    kinds = {GazeSample, SceneFrame} if need_frames else {GazeSample}
    marks: list[tuple[int, float, float]] = []
    fixes: list[Fixation] = []
    first = None
    n_samples = n_frames = 0
    limit_ns = int(seconds * 1e9)
    deadline = time.monotonic() + (wall_timeout_s if wall_timeout_s is not None else 3 * seconds + 10)
    last_ts = None
    det: OnlineFixationDetector | None = None
    point: tuple[float, float] | None = None if isinstance(target, str) or aruco is not None else target
    held: list[GazeSample] = []
    size: tuple[int, int] | None = source.scene_size

    def start(sz: tuple[int, int] | None) -> None:
        nonlocal det, point, camera
        camera = camera or camera_for(source, sz)
        if isinstance(target, str) and aruco is None:
            point = parse_target(target, sz or (camera.width, camera.height))  # type: ignore[assignment]
        det = OnlineFixationDetector(camera, params)

    if size is not None or not need_frames:
        start(size)
    for rec in source.records(kinds):
        if time.monotonic() > deadline:
            break
        if not isinstance(rec, GazeSample | SceneFrame):
            continue
        if first is None:
            first = rec.ts_ns
        if rec.ts_ns - first > limit_ns:
            break
        last_ts = rec.ts_ns
        if isinstance(rec, SceneFrame):
            n_frames += 1
            if det is None:
                start((rec.width, rec.height))
            if aruco is not None:
                c = aruco.detect(rec.rgb)
                if c is not None:
                    marks.append((rec.ts_ns, c[0], c[1]))
        else:
            n_samples += 1
            if det is None:
                held.append(rec)
                if rec.ts_ns - first < size_wait_s * 1e9:
                    continue
                start(source.scene_size)
        if det is not None and held:
            for g in held:
                fixes += det.push(g.ts_ns, g.x, g.y, g.worn)
            held.clear()
        if det is not None and isinstance(rec, GazeSample):
            fixes += det.push(rec.ts_ns, rec.x, rec.y, rec.worn)
        if progress is not None and n_samples % 20 == 0:
            progress(min(1.0, (rec.ts_ns - first) / max(limit_ns, 1)), len(fixes))
    if det is None:
        start(source.scene_size)
    for g in held:
        fixes += det.push(g.ts_ns, g.x, g.y, g.worn)
    fixes += det.flush()
    if progress is not None:
        progress(1.0, len(fixes))
    if n_samples == 0:
        raise DeviceError(
            "no gaze samples arrived from the source", hint="check that the glasses are connected and worn"
        )
    if not fixes:
        raise InputError(
            None,
            f"no fixations detected in {n_samples} gaze samples",
            hint="ask the wearer to hold their gaze on the target, or collect for longer (--seconds)",
        )
    if aruco is None:
        tgt = np.tile(np.asarray(point, dtype=np.float64), (len(fixes), 1))
        keep = list(range(len(fixes)))
    else:
        if not marks:
            raise InputError(
                None,
                f"the ArUco marker ({aruco.dictionary}"
                + ("" if aruco.marker_id is None else f" id {aruco.marker_id}")
                + f") was not found in any of {n_frames} scene frames",
                hint="show the printed marker to the scene camera, well lit and not too small",
            )
        mt = np.array([m[0] for m in marks])
        mxy = np.array([[m[1], m[2]] for m in marks])
        tgt_list, keep = [], []
        for i, f in enumerate(fixes):
            sel = (mt >= f.start_ns - 50_000_000) & (mt <= f.end_ns + 50_000_000)
            if sel.any():
                tgt_list.append(mxy[sel].mean(axis=0))  # the fixation centre is a mean too
                keep.append(i)
        if not keep:
            raise InputError(None, "the marker was never visible during a fixation", hint="look at the marker")
        tgt = np.array(tgt_list)
    used = [fixes[i] for i in keep]
    fxy = np.array([[f.x, f.y] for f in used])
    est = estimate_offset(fxy, tgt, det.camera, weights=[f.duration_ns for f in used])
    agree_s = sum(f.duration_ns for f, ok in zip(used, est.inliers, strict=True) if ok) / 1e9
    total_s = sum(f.duration_ns for f in fixes) / 1e9
    if agree_s < MIN_USABLE_FRACTION * total_s or agree_s < MIN_USABLE_FIXATION_S:
        raise InputError(
            None,
            f"only {est.n_used} of the {len(fixes)} fixations detected ({agree_s:.2f} s of {total_s:.2f} s in "
            f"fixations) agree on an offset; at least half of the fixation time and {MIN_USABLE_FIXATION_S:g} s are "
            "needed; nothing was stored",
            hint="ask the wearer to keep looking at the target, check the target position, or collect longer "
            "(--seconds)",
        )
    dur = 0.0 if last_ts is None or first is None else (last_ts - first) / 1e9
    return CalibrationRun(est, used, tgt, n_samples, n_frames, len(marks), dur, point)
