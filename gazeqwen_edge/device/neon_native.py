"""Neon native recordings (the Companion app's folder: info.json, `gaze ps1.raw/.time`, `Neon Scene Camera v1 ps1.mp4`,
...), read through Pupil Labs' `pupil-labs-neon-recording`. We check the files' sizes first so that an inconsistent
recording fails with one clear error and a cut one is told about (see below), then read the sample streams (gaze,
worn, fixations, blinks, events) with the library's own multipart loader (`utils.load_multipart_data_time_pairs`,
the files it picks, the dtypes it uses) and the scene video and audio through `nr.open`.

Gaze offset (measured on the demo recording in ../shared/fixtures, app 2.9.19): the gaze stored in `gaze*.raw` ALREADY
includes the wearer offset of info.json with the sign `stored = raw + (dx, dy)` in image px (y down): the mean of the
stored gaze over each device fixation minus that fixation's stored mean is (27.1, 6.7) px for
`gaze_offset = [27.24, 6.64]`. Fixations stored by apps older than 2.9.31 do NOT include it (the library's
FixationTimeseries then adds `(+dx, -dy)` to their mean, a y sign the data disagrees with; we read the stored means as
they are). This reader keeps
the package's convention (`records.py`: records carry raw gaze, `Source.gaze_offset` is to be ADDED): gaze and
fixation positions are delivered WITHOUT the offset (stored gaze minus the offset; fixation means as the app's detector
computed them), and `gaze_offset` is info.json's `(dx, dy)`. Adding `gaze_offset` gives back the gaze the Companion
app showed and stored.

Recordings without a scene video (e.g. exported without it, or the fixture) are gaze-only: `has_scene_video` is False,
`scene_size` is the Neon scene camera's (1600, 1200), `records()` starts with a Notice("sensor_missing"), and asking
explicitly for SceneFrame raises InputError. A scene video that is there but unreadable (empty, damaged, a Git LFS
pointer) does not stop gaze-only work: the scene size is the camera's and the intrinsics come from calibration.bin,
a `SourceWarning` is issued once and a Notice("video_unreadable") delivered; asking for scene frames (explicitly or
with `kinds=None`) raises the video's InputError.

IMU: `imu ps*.raw` (or the protobuf `extimu ps*.raw` of other app versions) is read through the library (`rec.imu`)
and delivered as `ImuSample` records (gyro deg/s, acceleration g, quaternion w, x, y, z; ~110 Hz) under the policies
of source.py: a recording without IMU files delivers none; one whose IMU cannot be read goes on without it with a
Notice("imu_unreadable") unless `ImuSample` is asked for by name (then the InputError is raised).

A recording cut short by a crash (the phone's app killed, the battery gone) has a last part whose `.raw` and `.time`
files disagree by a few samples, or end in a partial sample. It is read as Pupil Labs' reader reads it: the intact
`gaze_200hz` file where there is one, else the common length of the two files, with a Notice("truncated"). A larger
disagreement, or one in a part that is not the last, is an InputError (later samples would get wrong times). Pauses
between parts are gaps (see source.py): replay delivers a Notice("gap") at each, `gaps` lists them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from gazeqwen_edge.device._io import (
    LFS_HINT,
    check_not_lfs_pointer,
    check_sorted,
    info_gaze_offset,
    is_lfs_pointer,
    quiet_libav,
    read_json,
)
from gazeqwen_edge.device.calibration_bin import read_calibration_record, serial_text
from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import (
    AudioChunk,
    Blink,
    CameraIntrinsics,
    Event,
    Fixation,
    GazeSample,
    ImuSample,
    Notice,
    Record,
    SceneFrame,
)
from gazeqwen_edge.device.source import ImuArrays, RecordedSource, gap_notices
from gazeqwen_edge.errors import InputError, require

NEON_SCENE_SIZE = (1600, 1200)  # the Neon scene camera (REFERENCE.md section 4)
SCENE_BASENAME = "Neon Scene Camera v1"
# What pupil-labs-neon-recording reads each raw stream as when the recording has no `<stream>.dtype` file beside it
# (which otherwise says, and which the library's loader then uses): its timeseries modules' fallback dtypes.
_FALLBACK_DTYPES = {
    "gaze": np.dtype([("x", "<f4"), ("y", "<f4")]),
    "worn": np.dtype([("worn", "u1")]),
    "fixations": np.dtype(
        [("event_type", "<i4"), ("start_timestamp_ns", "<i8"), ("end_timestamp_ns", "<i8")]
        + [
            (n, "<f4")
            for n in (
                "start_gaze_x",
                "start_gaze_y",
                "end_gaze_x",
                "end_gaze_y",
                "mean_gaze_x",
                "mean_gaze_y",
                "amplitude_pixels",
                "amplitude_angle_deg",
                "mean_velocity",
                "max_velocity",
            )
        ]
    ),
    "blinks": np.dtype([("start_timestamp_ns", "<i8"), ("end_timestamp_ns", "<i8")]),
}
_NEEDED_FIELDS = {
    "fixations": ("event_type", "start_timestamp_ns", "end_timestamp_ns", "mean_gaze_x", "mean_gaze_y"),
    "blinks": ("start_timestamp_ns", "end_timestamp_ns"),
}
_NEEDED_COUNT = {"gaze": 2}  # fields after the time: gaze x, y are taken by position (as the library does)
FIXATION_EVENT_TYPE = 1  # in `fixations ps*.raw`, 1 = fixation, 0 = saccade (the library keeps type 1)
_TIMELESS = {"worn": "gaze"}  # streams that share another stream's .time file
FIXATION_OFFSET_FIXED_IN = (2, 9, 31)  # from this app version on the stored fixations include the gaze offset
# A crash cuts the .raw and .time files of a stream where each writer was: they can disagree by what one writer had
# buffered and the other had not. We accept a disagreement of up to one 8 KiB write buffer (the default of Java's
# BufferedOutputStream; the Companion app is an Android app) in the shorter file, in the last part only; more is not
# a cut but a mismatch.
CUT_TAIL_MAX_BYTES = 8192


def _version_tuple(v: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", v.split("-")[0])
    return tuple(int(n) for n in nums[:3]) if nums else (0,)


class NeonRecordingSource(RecordedSource):
    """A Neon native recording directory (single- or multi-part), through `pupil_labs.neon_recording`.

    Raises InputError at open for what cannot be read (see the module docstring); `gaps`, `has_scene_video`,
    `scene_video_problem` and the Notices of `records()` tell what was recovered."""

    name = "neon-recording"

    def __init__(self, path: str | Path, **_ignored):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "is not a directory (expected a Neon native recording folder)")
        self.info = read_json(self.path / "info.json")
        for key in ("start_time", "duration"):
            v = self.info.get(key)
            if not isinstance(v, int) or isinstance(v, bool):
                raise InputError(self.path / "info.json", f"has no integer '{key}' (not a Neon recording's info.json?)")
            if v < 0:
                raise InputError(self.path / "info.json", f"'{key}' is negative ({v}): no recording has that")
        self.gaze_offset  # noqa: B018  a NaN or absurd offset fails at open
        self._notices: list[Notice] = []
        self._check_files()
        nr = require("pupil_labs.neon_recording", "device", "reading Neon recordings")
        quiet_libav()  # importing the library turns libav's logging on (pupil-labs-video)
        try:
            self._rec = nr.open(self.path)
        except (OSError, ValueError) as e:
            raise InputError(self.path, f"cannot be opened as a Neon recording ({e})") from e
        self._scene = None
        self._closed = False

    # ------------------------------------------------------------------ validation (sizes only, no parsing)
    def _parts(self, base: str, ext: str = ".raw") -> list[Path]:
        return sorted(
            self.path.glob(f"{base} ps*{ext}"), key=lambda p: int(re.sub(r"\D", "", p.stem[len(base) :]) or 0)
        )

    def _check_pairs(self, pairs: list[tuple[Path, Path]], itemsize: int) -> None:
        """Check the (.raw, .time) file pairs of one stream, in part order (see the module docstring): a cut last
        part becomes a Notice, anything else that disagrees an InputError."""
        for k, (raw, time) in enumerate(pairs):
            for f in (raw, time):
                check_not_lfs_pointer(f, "recorded data")
            rs, ts = raw.stat().st_size, time.stat().st_size
            n_raw, raw_rem = divmod(rs, itemsize)
            n_time, time_rem = divmod(ts, 8)
            if n_raw == n_time and not raw_rem and not time_rem:
                continue
            last = k == len(pairs) - 1
            lost = (n_time - n_raw) * itemsize if n_raw < n_time else (n_raw - n_time) * 8
            if last and lost <= CUT_TAIL_MAX_BYTES:
                partial = [f"a partial last sample in {f.name}" for f, rem in ((raw, raw_rem), (time, time_rem)) if rem]
                self._notices.append(
                    Notice(
                        int(self.info["start_time"]),
                        "truncated",
                        f"{raw.name} has {n_raw} samples and {time.name} {n_time} timestamps"
                        + (f" ({', '.join(partial)})" if partial else "")
                        + f": the recording was cut short; reading the first {min(n_raw, n_time)} as Pupil Labs' "
                        "reader does",
                        "warning",
                    )
                )
                continue
            if raw_rem and n_raw == n_time:
                raise InputError(
                    raw, f"is truncated: {rs} bytes is not a whole number of {itemsize}-byte samples ({n_raw} complete)"
                )
            shorter = "shorter" if n_time < n_raw else "longer"
            where = "" if last else f" (part {k + 1} of {len(pairs)}: only the last part of a stream can be cut short)"
            raise InputError(
                time,
                f"has {n_time} timestamps but {raw.name} has {n_raw} samples (.time is {shorter} than .raw){where}",
                hint=None if last else "later samples would be stamped with wrong times; the recording is damaged",
            )

    def _itemsize(self, stream: str) -> int:
        """Bytes per sample of a raw stream, from its `.dtype` file (a Python literal list of (name, type))."""
        f = self.path / f"{stream}.dtype"
        if not f.exists():
            return _FALLBACK_DTYPES[stream].itemsize
        try:
            return int(np.dtype([tuple(x) for x in ast.literal_eval(f.read_text())]).itemsize)
        except (ValueError, SyntaxError, TypeError, OSError, UnicodeDecodeError) as e:
            raise InputError(f, f"is not a readable dtype description ({e})") from None

    def _check_files(self) -> None:
        try:
            names = {p.name for p in self.path.iterdir()}
        except OSError as e:
            raise InputError(self.path, f"directory cannot be read ({e.strerror or e})") from e
        g200 = "gaze_200hz.raw" in names and "gaze_200hz.time" in names
        gaze_parts = self._parts("gaze")
        if not g200 and not gaze_parts:
            raise InputError(self.path, "has no gaze data (neither gaze_200hz.raw nor 'gaze ps1.raw')")
        streams = ["fixations", "blinks"]
        self._pairs: dict[str, list[tuple[Path, Path]]] = {}
        if g200:  # the library reads gaze and worn from the 200 Hz files then, not from the realtime parts
            g200_time = self.path / "gaze_200hz.time"
            self._pairs["gaze"] = [(self.path / "gaze_200hz.raw", g200_time)]
            self._check_pairs(self._pairs["gaze"], 8)
            if "worn_200hz.raw" in names:
                self._pairs["worn"] = [(self.path / "worn_200hz.raw", g200_time)]
                self._check_pairs(self._pairs["worn"], 1)
        else:
            streams = ["gaze", "worn", *streams]
        for stream in streams:
            pairs = []
            for raw in self._parts(stream):
                timebase = _TIMELESS.get(stream)
                time = (
                    raw.with_name(raw.name.replace(f"{stream} ", f"{timebase} ")).with_suffix(".time")
                    if timebase
                    else raw.with_suffix(".time")
                )
                if not time.exists():
                    raise InputError(time, f"is missing (the timestamps of {raw.name})")
                pairs.append((raw, time))
            if pairs:
                self._check_pairs(pairs, self._itemsize(stream))
                self._pairs[stream] = pairs
        if "event.txt" in names and "event.time" in names:
            ev, evt = self.path / "event.txt", self.path / "event.time"
            self._pairs["events"] = [(ev, evt)]
            for f in (ev, evt):
                check_not_lfs_pointer(f, "recorded data")
            n_ev = len(ev.read_bytes().decode("utf-8", "replace").splitlines())
            n_t, rem = divmod(evt.stat().st_size, 8)
            if n_t != n_ev or rem:
                if abs(n_t - n_ev) * 8 > CUT_TAIL_MAX_BYTES:
                    raise InputError(evt, f"has {n_t} timestamps for {n_ev} events in event.txt")
                self._notices.append(
                    Notice(
                        int(self.info["start_time"]),
                        "truncated",
                        f"event.txt has {n_ev} events and event.time {n_t} timestamps: the recording was cut short; "
                        f"reading the first {min(n_t, n_ev)}",
                        "warning",
                    )
                )

    # ------------------------------------------------------------------ library access with errors mapped
    def _load(self, attr: str, optional: bool = True):
        try:
            return getattr(self._rec, attr)
        except Exception as e:  # the library wraps everything in SensorError
            cause = e.__cause__ or e
            if optional and isinstance(cause, AttributeError | FileNotFoundError):
                return None
            raise InputError(self.path, f"cannot read the '{attr}' stream ({cause})") from e

    @cached_property
    def gaze_offset(self) -> tuple[float, float]:
        return info_gaze_offset(self.info, self.path / "info.json")

    def _read(self, stream: str) -> np.ndarray | None:
        """The stream's samples as the library's loader reads them (structured array with a `time` int64 ns field
        first), None when the recording has no such stream. Given plain paths, the loader reads a cut part (the
        last one: `_check_pairs`) at the common length of its .raw and .time files, a partial last sample dropped."""
        from pupil_labs.neon_recording.utils import load_multipart_data_time_pairs

        pairs = self._pairs.get(stream)
        if not pairs or sum(t.stat().st_size for _, t in pairs) < 8:  # (the loader fails on no timestamps)
            return None
        try:
            d = load_multipart_data_time_pairs(pairs, "str" if stream == "events" else _FALLBACK_DTYPES[stream])
        except (ValueError, OSError, UnicodeDecodeError) as e:
            raise InputError(pairs[0][0], f"cannot be read as the '{stream}' stream ({e})") from e
        need = _NEEDED_FIELDS.get(stream, ())
        names = d.dtype.names or ()
        if len(names) < 1 + _NEEDED_COUNT.get(stream, 1) or any(n not in names for n in need):
            raise InputError(
                pairs[0][0],
                f"its samples have the fields {list(names[1:])}, the '{stream}' stream needs "
                f"{list(need) or _NEEDED_COUNT.get(stream, 1)}",
                hint=f"check {stream}.dtype beside it",
            )
        return d

    @cached_property
    def _gaze(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        d = self._read("gaze")
        if d is None:
            d = np.zeros(0, [("time", "<i8")] + _FALLBACK_DTYPES["gaze"].descr)
        _, xname, yname = d.dtype.names[:3]  # the library takes them by position (x, y after the time)
        ts = np.asarray(d["time"], dtype=np.int64)
        dx, dy = self.gaze_offset
        x = np.asarray(d[xname], dtype=np.float64) - dx
        y = np.asarray(d[yname], dtype=np.float64) - dy
        worn = np.ones(len(ts), dtype=bool)
        w = self._read("worn")
        if w is not None and len(w):
            wt = np.asarray(w["time"], dtype=np.int64)
            wv = np.asarray(w[w.dtype.names[1]]) != 0
            if len(wt) == len(ts) and np.array_equal(wt, ts):
                worn = wv
            else:  # a different rate or length: the last worn value at or before each gaze sample
                o = np.argsort(wt, kind="stable")
                wt, wv = wt[o], wv[o]
                k = np.clip(np.searchsorted(wt, ts, side="right") - 1, 0, len(wt) - 1)
                worn = wv[k]
        where = self._pairs["gaze"][0][0].name + (" ..." if len(self._pairs["gaze"]) > 1 else "")
        return self._checked_gaze(ts, x, y, worn, where, at_ns=self.start_ns)

    @cached_property
    def fixations(self) -> list[Fixation]:
        """The device's fixations (event type 1 of `fixations ps*.raw`), means in raw gaze px (module docstring)."""
        d = self._read("fixations")
        if d is None:
            return []
        d = d[d["event_type"] == FIXATION_EVENT_TYPE]
        x = np.asarray(d["mean_gaze_x"], dtype=np.float64)
        y = np.asarray(d["mean_gaze_y"], dtype=np.float64)
        if _version_tuple(str(self.info.get("app_version", "0"))) >= FIXATION_OFFSET_FIXED_IN:
            dx, dy = self.gaze_offset
            x, y = x - dx, y - dy  # stored in the offset-corrected space of the gaze
        s, e = np.asarray(d["start_timestamp_ns"], np.int64), np.asarray(d["end_timestamp_ns"], np.int64)
        keep = self._checked_intervals(s, e, x, y, "fixations ps*.raw", "fixations")
        return [Fixation(int(s[i]), int(e[i]), float(x[i]), float(y[i]), "device") for i in keep]

    @cached_property
    def blinks(self) -> list[Blink]:
        d = self._read("blinks")
        if d is None:
            return []
        s, e = np.asarray(d["start_timestamp_ns"], np.int64), np.asarray(d["end_timestamp_ns"], np.int64)
        keep = self._checked_intervals(s, e, None, None, "blinks ps*.raw", "blinks")
        return [Blink(int(s[i]), int(e[i])) for i in keep]

    @cached_property
    def _imu(self) -> ImuArrays | None:
        """The IMU stream as the library reads it (`rec.imu`: the `imu ps*.raw` parts with `imu.dtype`, else the
        protobuf `extimu ps*.raw`), None when the recording has none. Raises InputError when it is there but cannot
        be read (a Git LFS pointer, .raw and .time disagreeing beyond a cut last part: `_check_pairs`)."""
        parts = self._parts("imu")
        if parts and (self.path / "imu.dtype").exists():
            pairs = [(raw, raw.with_suffix(".time")) for raw in parts]
            for _, time in pairs:
                if not time.exists():
                    raise InputError(time, "is missing (the timestamps of the IMU samples)")
            self._check_pairs(pairs, self._itemsize("imu"))
        for raw in parts or self._parts("extimu"):
            check_not_lfs_pointer(raw, "recorded data")
        imu = self._load("imu")
        if imu is None:
            return None
        d = imu.data
        names = ("angular_velocity", "acceleration")
        try:
            ts = np.asarray(d["time"], dtype=np.int64)
            gyro, accel = (np.stack([np.asarray(d[f"{n}_{a}"], np.float64) for a in "xyz"], 1) for n in names)
            quat = np.stack([np.asarray(d[f"quaternion_{a}"], np.float64) for a in "wxyz"], 1)
        except (ValueError, KeyError) as e:
            raise InputError(self.path / "imu.dtype", f"the IMU samples lack a field ({e})") from None
        where = (parts or self._parts("extimu") or [self.path / "imu"])[0].name
        return self._checked_imu(ts, gyro, accel, quat, where)

    @property
    def has_imu(self) -> bool:
        """True when the recording has IMU files (readable or not: see `records`)."""
        return bool(self._parts("imu") or self._parts("extimu"))

    @cached_property
    def events(self) -> list[Event]:
        """Events in time order, sorted without a notice (event.txt is in arrival order by design: source.py)."""
        d = self._read("events")
        if d is None:
            return []
        out = [Event(int(t), str(n)) for t, n in zip(d["time"], d["text"], strict=True)]
        out.sort(key=lambda ev: ev.ts_ns)
        return out

    # ------------------------------------------------------------------ scene video
    @cached_property
    def _scene_parts(self) -> list[Path]:
        return self._parts(SCENE_BASENAME, ".mp4")

    @cached_property
    def scene_video_problem(self) -> InputError | None:
        """Why the scene video cannot be read (None when it can, or when there is none)."""
        for mp4 in self._scene_parts:
            time = mp4.with_suffix(".time")
            if not time.exists():
                return InputError(time, f"is missing (the frame timestamps of {mp4.name})")
            if is_lfs_pointer(time):
                return InputError(time, "is a Git LFS pointer, not the recorded data itself", hint=LFS_HINT)
            if time.stat().st_size % 8:
                return InputError(time, "is truncated: not a whole number of 8-byte timestamps (cut short)")
            if mp4.stat().st_size == 0:
                return InputError(mp4, "video file is empty (0 bytes)")
            if is_lfs_pointer(mp4):
                return InputError(mp4, "is a Git LFS pointer, not the video itself", hint=LFS_HINT)
        try:
            self._scene = self._load("scene", optional=False)
            quiet_libav()
            if not len(self._scene):
                return InputError(self._scene_parts[0], "has no video frames")
        except InputError as e:
            root = e  # the library's SensorError wraps PyAV's error: name that one, without its repeated path
            while root.__cause__ is not None:
                root = root.__cause__
            why = getattr(root, "strerror", None) or str(root)
            return InputError(self._scene_parts[0], f"is not a readable video ({why})")
        try:  # frames are decoded in file order: times that go backwards cannot be re-sorted (source.py)
            check_sorted(self._scene_parts[0].with_suffix(".time"), np.asarray(self._scene.data["time"]), "frame times")
        except InputError as e:
            return e
        return None

    def _video_fallback(self, warn: bool) -> None:
        w, h = NEON_SCENE_SIZE
        how = f"scene size {w}x{h} (the Neon scene camera), intrinsics from calibration.bin"
        self._tell_video_unreadable(self.scene_video_problem, how, self.start_ns, warn)

    @property
    def has_scene_video(self) -> bool:
        """True when scene frames can be delivered (a scene video that is there and readable)."""
        if not self._scene_parts:
            return False
        if self.scene_video_problem is not None:
            self._video_fallback(warn=False)
            return False
        return True

    @cached_property
    def frame_ts_ns(self) -> np.ndarray:
        """Times (unix ns) of the scene frames that can be delivered (none when the video is missing/unreadable)."""
        if not self.has_scene_video:
            return np.zeros(0, np.int64)
        return np.asarray(self._scene.data["time"], dtype=np.int64)

    @cached_property
    def scene_size(self) -> tuple[int, int]:
        """(width, height) px: the scene video's, else the Neon scene camera's (no video needed for gaze-only work)."""
        if self.has_scene_video and self._scene.width and self._scene.height:
            return (int(self._scene.width), int(self._scene.height))
        if self._scene_parts:
            self._video_fallback(warn=True)
        return NEON_SCENE_SIZE

    @cached_property
    def intrinsics(self) -> CameraIntrinsics | None:
        """The scene camera from calibration.bin (CRC checked, see calibration_bin.py), None without one."""
        cal_path = self.path / "calibration.bin"
        if not cal_path.exists():
            return None
        rec = read_calibration_record(cal_path)
        k = np.array(rec["scene_camera_matrix"], dtype=np.float64).reshape(3, 3)
        dist = np.array(rec["scene_distortion_coefficients"], dtype=np.float64).reshape(-1)
        w, h = self.scene_size
        extra = {"serial": serial_text(rec), "version": int(rec["version"]), "source": str(cal_path)}
        return CameraIntrinsics(k, dist, w, h, extra)

    @property
    def start_ns(self) -> int:
        return int(self.info["start_time"])

    @property
    def end_ns(self) -> int:
        return int(self.info["start_time"]) + int(self.info["duration"])

    # ------------------------------------------------------------------ records
    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)

        def wanted(t: type) -> bool:
            return want is None or t in want

        if wanted(SceneFrame):
            if self._scene_parts and self.scene_video_problem is not None:
                raise self.scene_video_problem
            if want is not None and not self._scene_parts:
                raise InputError(
                    self.path,
                    f"has no scene video ('{SCENE_BASENAME} ps1.mp4'): it is a gaze-only recording, scene frames "
                    "cannot be delivered",
                    hint="ask for gaze, fixations, blinks and events only, or use a recording with its scene video",
                )
        streams: list[Iterator[Record]] = []
        if wanted(GazeSample) or wanted(Notice):
            self._gaze  # noqa: B018  (reading gaze may add notices)
        if wanted(Fixation) or wanted(Notice):
            self.fixations  # noqa: B018
        if wanted(Blink) or wanted(Notice):
            self.blinks  # noqa: B018
        imu = self._imu_stream(explicit=want is not None and ImuSample in want) if wanted(ImuSample) else None
        if wanted(Notice):
            notes = list(self._notices) + gap_notices(self.gaps)
            if not self._scene_parts:
                notes.append(
                    Notice(self.start_ns, "sensor_missing", "no scene video in this recording: gaze-only", "info")
                )
            elif self.has_scene_video:
                n_time = sum(p.with_suffix(".time").stat().st_size // 8 for p in self._scene_parts)
                if n_time > len(self.frame_ts_ns):
                    n = len(self.frame_ts_ns)
                    msg = f"the scene video has {n} frames for {n_time} timestamps: using the first ones"
                    notes.append(Notice(self.start_ns, "truncated", msg, "info"))
            streams.append(iter(sorted(notes, key=lambda n: n.ts_ns)))
        if wanted(Event):
            streams.append(iter(self.events))
        if wanted(GazeSample):
            streams.append(self._gaze_records())
        if wanted(SceneFrame) and self.has_scene_video:
            streams.append(self._frame_records())
        if wanted(Fixation):
            streams.append(iter(self.fixations))
        if wanted(Blink):
            streams.append(iter(self.blinks))
        if imu is not None:
            streams.append(imu)
        if wanted(AudioChunk) and self.has_scene_video:
            streams.append(self._audio_records())
        return merge_by_time(streams)

    def _frame_records(self) -> Iterator[SceneFrame]:
        s = self._scene
        try:
            for i, fr in enumerate(s):
                yield SceneFrame(int(fr.time), np.asarray(fr.rgb), i)
        except InputError:
            raise
        except Exception as e:
            raise InputError(self.path, f"scene video cannot be decoded ({e})") from e

    def _audio_records(self) -> Iterator[AudioChunk]:
        """Audio of the scene video: timestamps from the library (`rec.audio.time`), samples decoded in order with
        PyAV part by part (the library's own frame access fails on some AAC streams)."""
        import av

        try:
            a = self._load("audio")
        except InputError:
            a = None  # scene video without an audio track
        quiet_libav()
        if a is None or not len(a):
            return
        times = np.asarray(a.data["time"], dtype=np.int64).tolist()
        rate = int(a.rate)
        k = 0
        for mp4 in self._scene_parts:
            try:
                with av.open(str(mp4)) as c:
                    if not c.streams.audio:
                        continue
                    for fr in c.decode(c.streams.audio[0]):
                        if k >= len(times):
                            return
                        pcm = fr.to_ndarray().astype(np.float32)
                        if pcm.ndim == 2:  # planar (channels, n) or packed (1, n*channels)
                            ch = len(fr.layout.channels)
                            pcm = (
                                pcm.reshape(ch, -1).mean(axis=0) if fr.format.is_planar else pcm.reshape(-1, ch).mean(1)
                            )
                        yield AudioChunk(times[k], pcm, int(fr.sample_rate or rate))
                        k += 1
            except av.error.FFmpegError as e:
                raise InputError(mp4, f"audio cannot be decoded ({e})") from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._rec.close()
            except Exception:
                pass
