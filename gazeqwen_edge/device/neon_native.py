"""Neon native recordings (the Companion app's folder: info.json, `gaze ps1.raw/.time`, `Neon Scene Camera v1 ps1.mp4`,
...), read through Pupil Labs' `pupil-labs-neon-recording` (`nr.open`). We check the files' sizes first so that a
truncated or inconsistent recording fails with one clear error instead of being silently cut short, then take every
stream from the library.

Gaze offset (measured on the demo recording in ../shared/fixtures, app 2.9.19): the gaze stored in `gaze*.raw` ALREADY
includes the wearer offset of info.json with the sign `stored = raw + (dx, dy)` in image px (y down): the mean of the
stored gaze over each device fixation minus that fixation's stored mean is (27.1, 6.7) px for
`gaze_offset = [27.24, 6.64]`. Fixations stored by apps older than 2.9.31 do NOT include it; the library then adds
`(+dx, -dy)` to their mean (the y sign disagrees with the data: it leaves them 2*dy off the gaze). This reader keeps
the package's convention (`records.py`: records carry raw gaze, `Source.gaze_offset` is to be ADDED): gaze and
fixation positions are delivered WITHOUT the offset (stored gaze minus the offset; fixation means as the app's detector
computed them), and `gaze_offset` is info.json's `(dx, dy)`. Adding `gaze_offset` gives back the gaze the Companion
app showed and stored.

Recordings without a scene video (e.g. exported without it, or the fixture) are gaze-only: `has_scene_video` is False,
`scene_size` is the Neon scene camera's (1600, 1200), `records()` starts with a Notice("sensor_missing"), and asking
explicitly for SceneFrame raises InputError.
"""

from __future__ import annotations

import ast
import re
import zlib
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from gazeqwen_edge.device._io import info_gaze_offset, read_json
from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import (
    AudioChunk,
    Blink,
    CameraIntrinsics,
    Event,
    Fixation,
    GazeSample,
    Notice,
    Record,
    SceneFrame,
)
from gazeqwen_edge.device.source import RecordedSource
from gazeqwen_edge.errors import InputError, require

NEON_SCENE_SIZE = (1600, 1200)
SCENE_BASENAME = "Neon Scene Camera v1"
# record sizes of the raw streams we read (bytes per sample): what the library reads them as
# (used when the recording has no `<stream>.dtype` file, which otherwise says)
_RAW_ITEMSIZE = {"gaze": 8, "worn": 1, "fixations": 60, "blinks": 20}
_TIMELESS = {"worn": "gaze"}  # streams that share another stream's .time file
FIXATION_OFFSET_FIXED_IN = (2, 9, 31)  # from this app version on the stored fixations include the gaze offset


def _version_tuple(v: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", v.split("-")[0])
    return tuple(int(n) for n in nums[:3]) if nums else (0,)


class NeonRecordingSource(RecordedSource):
    """A Neon native recording directory (single- or multi-part), through `pupil_labs.neon_recording`."""

    name = "neon-recording"

    def __init__(self, path: str | Path, **_ignored):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "is not a directory (expected a Neon native recording folder)")
        self.info = read_json(self.path / "info.json")
        for key in ("start_time", "duration"):
            if not isinstance(self.info.get(key), int):
                raise InputError(self.path / "info.json", f"has no integer '{key}' (not a Neon recording's info.json?)")
        self._check_files()
        nr = require("pupil_labs.neon_recording", "device", "reading Neon recordings")
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

    def _check_pair(self, raw: Path, time: Path, itemsize: int) -> int:
        rs, ts = raw.stat().st_size, time.stat().st_size
        if rs % itemsize:
            raise InputError(
                raw,
                f"is truncated: {rs} bytes is not a whole number of {itemsize}-byte samples ({rs // itemsize} complete)",
            )
        if ts % 8:
            raise InputError(time, f"is truncated: {ts} bytes is not a whole number of 8-byte timestamps")
        if rs // itemsize != ts // 8:
            shorter = "shorter" if ts // 8 < rs // itemsize else "longer"
            raise InputError(
                time,
                f"has {ts // 8} timestamps but {raw.name} has {rs // itemsize} samples (.time is {shorter} than .raw)",
            )
        return ts // 8

    def _itemsize(self, stream: str) -> int:
        """Bytes per sample of a raw stream, from its `.dtype` file (a Python literal list of (name, type))."""
        f = self.path / f"{stream}.dtype"
        if not f.exists():
            return _RAW_ITEMSIZE[stream]
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
        if g200:
            self._check_pair(self.path / "gaze_200hz.raw", self.path / "gaze_200hz.time", 8)
            if "worn_200hz.raw" in names:
                self._check_pair(self.path / "worn_200hz.raw", self.path / "gaze_200hz.time", 1)
        for stream in ("gaze", "worn", "fixations", "blinks"):
            for raw in self._parts(stream):
                timebase = _TIMELESS.get(stream)
                time = (
                    raw.with_name(raw.name.replace(f"{stream} ", f"{timebase} ")).with_suffix(".time")
                    if timebase
                    else raw.with_suffix(".time")
                )
                if not time.exists():
                    raise InputError(time, f"is missing (the timestamps of {raw.name})")
                self._check_pair(raw, time, self._itemsize(stream))
        for mp4 in self._parts(SCENE_BASENAME, ".mp4"):
            time = mp4.with_suffix(".time")
            if not time.exists():
                raise InputError(time, f"is missing (the frame timestamps of {mp4.name})")
            if time.stat().st_size % 8:
                raise InputError(time, "is truncated: not a whole number of 8-byte timestamps")
            if mp4.stat().st_size == 0:
                raise InputError(mp4, "video file is empty (0 bytes)")
        if "event.txt" in names and "event.time" in names:
            n_ev = len((self.path / "event.txt").read_bytes().decode("utf-8", "replace").splitlines())
            n_t = (self.path / "event.time").stat().st_size
            if n_t % 8 or n_t // 8 != n_ev:
                raise InputError(self.path / "event.time", f"has {n_t / 8:g} timestamps for {n_ev} events in event.txt")

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

    @cached_property
    def _gaze(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        g = self._load("gaze", optional=False)
        d = g.data
        ts = np.asarray(d["time"], dtype=np.int64)
        order = None
        if len(ts) > 1 and np.any(np.diff(ts) < 0):  # records must come in time order
            order = np.argsort(ts, kind="stable")
        dx, dy = self.gaze_offset
        x = np.asarray(d["point_x"], dtype=np.float64) - dx
        y = np.asarray(d["point_y"], dtype=np.float64) - dy
        worn = np.ones(len(ts), dtype=bool)
        w = self._load("worn")
        if w is not None and len(w):
            wt = np.asarray(w.data["time"], dtype=np.int64)
            wv = np.asarray(w.data["worn"]) != 0
            if len(wt) == len(ts) and np.array_equal(wt, ts):
                worn = wv
            else:  # a different rate: the last worn value at or before each gaze sample
                k = np.clip(np.searchsorted(wt, ts, side="right") - 1, 0, len(wt) - 1)
                worn = wv[k]
        if order is not None:
            ts, x, y, worn = ts[order], x[order], y[order], worn[order]
        return ts, x, y, worn

    @cached_property
    def fixations(self) -> list[Fixation]:
        f = self._load("fixations")
        if f is None:
            return []
        d = f.data
        x = np.asarray(d["mean_gaze_x"], dtype=np.float64)
        y = np.asarray(d["mean_gaze_y"], dtype=np.float64)
        dx, dy = self.gaze_offset
        if _version_tuple(str(self.info.get("app_version", "0"))) < FIXATION_OFFSET_FIXED_IN:
            x, y = x - dx, y + dy  # undo the library's (+dx, -dy): back to the detector's own (raw) means
        else:
            x, y = x - dx, y - dy  # stored in the offset-corrected space of the gaze
        out = [
            Fixation(int(s), int(e), float(a), float(b), "device")
            for s, e, a, b in zip(d["start_time"], d["stop_time"], x, y, strict=True)
        ]
        out.sort(key=lambda r: r.end_ns)
        return out

    @cached_property
    def blinks(self) -> list[Blink]:
        b = self._load("blinks")
        if b is None:
            return []
        out = [Blink(int(s), int(e)) for s, e in zip(b.data["start_time"], b.data["stop_time"], strict=True)]
        out.sort(key=lambda r: r.end_ns)
        return out

    @cached_property
    def events(self) -> list[Event]:
        ev = self._load("events")
        if ev is None:
            return []
        return [Event(int(t), str(n)) for t, n in zip(ev.data["time"], ev.data["event"], strict=True)]

    @cached_property
    def has_scene_video(self) -> bool:
        return bool(self._parts(SCENE_BASENAME, ".mp4"))

    def _scene_ts(self):
        if not self.has_scene_video:
            return None
        if self._scene is None:
            self._scene = self._load("scene", optional=False)
        return self._scene

    @cached_property
    def frame_ts_ns(self) -> np.ndarray:
        s = self._scene_ts()
        return np.zeros(0, np.int64) if s is None else np.asarray(s.data["time"], dtype=np.int64)

    @cached_property
    def scene_size(self) -> tuple[int, int]:
        s = self._scene_ts()
        if s is not None and s.width and s.height:
            return (int(s.width), int(s.height))
        return NEON_SCENE_SIZE

    @cached_property
    def intrinsics(self) -> CameraIntrinsics | None:
        cal_path = self.path / "calibration.bin"
        if not cal_path.exists():
            return None
        if cal_path.stat().st_size != 803:
            raise InputError(cal_path, f"has {cal_path.stat().st_size} bytes, expected 803")
        data = cal_path.read_bytes()
        stored, computed = int.from_bytes(data[799:803], "little"), zlib.crc32(data[:799])
        if stored != computed:
            raise InputError(
                cal_path, f"CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted"
            )
        try:
            c = self._rec.calibration
            k = np.array(c.scene_camera_matrix, dtype=np.float64).reshape(3, 3)
            dist = np.array(c.scene_distortion_coefficients, dtype=np.float64).reshape(-1)
            serial, version = str(c.serial), int(c.version)
        except Exception as e:
            raise InputError(cal_path, f"cannot be read ({e})") from e
        w, h = self.scene_size
        return CameraIntrinsics(k, dist, w, h, {"serial": serial, "version": version, "source": str(cal_path)})

    @property
    def start_ns(self) -> int:
        return int(self.info["start_time"])

    @property
    def end_ns(self) -> int:
        return int(self.info["start_time"]) + int(self.info["duration"])

    # ------------------------------------------------------------------ records
    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)
        if want is not None and SceneFrame in want and not self.has_scene_video:
            raise InputError(
                self.path,
                f"has no scene video ('{SCENE_BASENAME} ps1.mp4'): it is a gaze-only recording, scene frames cannot be "
                "delivered",
                hint="ask for gaze, fixations, blinks and events only, or use a recording with its scene video",
            )

        def wanted(t: type) -> bool:
            return want is None or t in want

        streams: list[Iterator[Record]] = []
        if not self.has_scene_video and wanted(Notice):
            streams.append(
                iter([Notice(self.start_ns, "sensor_missing", "no scene video in this recording: gaze-only", "info")])
            )
        if self.has_scene_video and wanted(Notice):
            n_time = sum(p.with_suffix(".time").stat().st_size // 8 for p in self._parts(SCENE_BASENAME, ".mp4"))
            if n_time > len(self.frame_ts_ns):
                msg = (
                    f"the scene video has {len(self.frame_ts_ns)} frames for {n_time} timestamps: using the first ones"
                )
                streams.append(iter([Notice(self.start_ns, "truncated", msg, "info")]))
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
        if wanted(AudioChunk) and self.has_scene_video:
            streams.append(self._audio_records())
        return merge_by_time(streams)

    def _frame_records(self) -> Iterator[SceneFrame]:
        s = self._scene_ts()
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
        if a is None or not len(a):
            return
        times = np.asarray(a.data["time"], dtype=np.int64).tolist()
        rate = int(a.rate)
        k = 0
        for mp4 in self._parts(SCENE_BASENAME, ".mp4"):
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
