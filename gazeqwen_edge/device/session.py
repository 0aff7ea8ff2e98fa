"""Our session format: what a session saw and said, in a directory that Pupil Cloud tools and our replay both read.

    OUT_DIR/
      session.json            manifest, written first ("state": "recording") and rewritten at close ("closed", or
                              "failed" with the error when the recording was stopped by one)
      info.json               Cloud-style: recording_id, start_time, duration, gaze_offset (updated at close)
      gaze.csv                Cloud export layout (gaze WITH the wearer offset applied, as Cloud exports it)
      fixations.csv           Cloud layout + a `source` column (which detector)
      blinks.csv              Cloud layout
      events.csv              Cloud layout + a `data` column: recording.begin/end, queries, answers, notices
      imu.csv                 Cloud layout (when the source has an IMU); roll / pitch / yaw left empty (Pupil Cloud
                              derives them from the quaternion, which is written as it came)
      world_timestamps.csv    one row per frame of scene.mp4
      scene.mp4               H.264, fragmented (readable up to its last second if the writer is killed)
      scene_camera.json       camera_matrix + distortion_coefficients (when the source has intrinsics)
      audio.wav               16-bit PCM mono, header kept valid at every flush
      audio_timestamps.csv    timestamp [ns],first sample,samples,sample rate   (one row per AudioChunk)
      timings.csv             timestamp [ns],stage,duration [ms]

Files are written through large buffers (`WRITE_BUFFER_BYTES`) and pushed to the OS every `FLUSH_INTERVAL_S` by a
background thread, so a killed process loses what it was handed in the last flush interval (and the scene video's
last fragment, `MP4_FRAGMENT_S`), nothing earlier. Nothing is written until the first record arrives: a recording
whose source fails at once leaves no session behind (and `overwrite` has destroyed nothing); one that fails later is
marked "failed" in session.json, with what it had recorded kept. `overwrite` replaces only a session of ours
(session.json with our format), never a directory the source is reading from. A disk that stops taking writes (full,
over quota, read-only, failing) stops the recording with a `DeviceError` at the next `write`, `flush` or `close`
(never in the background thread, never silently); what reached the disk before stays readable. A "recording"
session.json keeps room (spaces after the JSON) for the "failed" manifest, which a full disk could not take as a
new file.

`SessionSource` reads a session back, also one whose writer was killed (partial last lines dropped with a Notice,
video shorter than its timestamps accepted, time span taken from the data). `CloudExportSource` reads the same
directory.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from gazeqwen_edge.device._io import INT, Mp4Writer, checked_gaze_offset, read_json
from gazeqwen_edge.device.cloud_export import (
    BLINK_COLUMNS,
    EVENT_COLUMNS,
    FIXATION_COLUMNS,
    GAZE_COLUMNS,
    IMU_COLUMNS,
    WORLD_COLUMNS,
    CloudExportSource,
)
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
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import (
    OUTPUT_ERRNOS,
    ConfigError,
    DeviceError,
    GazeQwenError,
    InputError,
    disk_hint,
    write_bytes_atomic,
)

FORMAT = "gazeqwen-edge session"
FORMAT_VERSION = 1
STATES = ("recording", "closed", "failed")
# Spare bytes (spaces after the JSON, a whole number of 4 KiB pages) in a "recording" session.json: room for the
# "failed" manifest when the disk is full at the end (Recorder._rewrite_manifest)
MANIFEST_ROOM_BYTES = 4096
# How often the recorder pushes its files to the OS, s: a killed recording loses at most what it was handed in the
# last interval. 0.5 s keeps that to ~100 gaze samples at 200 Hz and costs 2 small writes per file per second.
FLUSH_INTERVAL_S = 0.5
# Write buffer of every file the recorder keeps open, bytes: large enough (about a minute of 200 Hz gaze rows) that
# only the periodic flush decides when rows reach the OS, so a missing flush cannot hide behind a small buffer.
WRITE_BUFFER_BYTES = 1 << 20


def _f(x: float) -> str:
    return repr(float(x))


_WAV_HEADER_BYTES = 44  # RIFF + fmt (16-byte PCM) + data chunk headers, as _WavAppender writes them


class _WavAppender:
    """16-bit PCM mono WAV, appended; the RIFF/data sizes are rewritten at every flush so the file is always valid."""

    def __init__(self, path: Path, rate: int):
        self.path, self.rate = path, rate
        self._f = open(path, "wb", buffering=WRITE_BUFFER_BYTES)  # noqa: SIM115
        self.n = 0
        self._f.write(self._header(0))

    def _header(self, n: int) -> bytes:
        data = n * 2
        return (
            b"RIFF"
            + struct.pack("<I", 36 + data)
            + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, self.rate, self.rate * 2, 2, 16)
            + b"data"
            + struct.pack("<I", data)
        )

    def write(self, pcm: np.ndarray) -> None:
        a = np.asarray(pcm, dtype=np.float32)
        if a.ndim == 2:
            a = a.mean(axis=1)
        self._f.write((np.clip(a, -1, 1) * 32767).round().astype("<i2").tobytes())
        self.n += len(a)

    def flush(self) -> None:
        pos = self._f.tell()
        self._f.seek(0)
        self._f.write(self._header(self.n))
        self._f.seek(pos)
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()


class Recorder:
    """Write records (any Record) to a session directory; see the module docstring for the layout.

    `write(record)` is cheap and thread-safe; `write_timing(stage, seconds)` logs a stage timing; `close()` flushes,
    finishes the video and marks the session closed; `abort(error)` ends a recording that an error stopped (nothing
    is left when nothing was recorded, else the session is marked failed). As a context manager it closes, or aborts
    when an exception other than KeyboardInterrupt (a user's stop) leaves the block.

    Raises InputError at construction when `out_dir` cannot be used: a file, a non-empty directory without
    `overwrite`, with `overwrite` a directory that is not a session of ours or that is one of `reading` (the paths the
    source reads, compared after resolving symlinks) or holds one of them.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        scene_size: tuple[int, int] | None = None,
        intrinsics: CameraIntrinsics | None = None,
        gaze_offset: tuple[float, float] = (0.0, 0.0),
        source: str = "",
        fps: float = 30.0,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        recording_id: str | None = None,
        overwrite: bool = False,
        metadata: dict | None = None,
        clock: Callable[[], int] = time.time_ns,
        reading: Iterable[str | Path] = (),
    ):
        self.dir = Path(out_dir)
        self._replace = self._check_out_dir(overwrite, [Path(p) for p in reading if p is not None])
        if not (math.isfinite(fps) and fps > 0) or not (math.isfinite(flush_interval_s) and flush_interval_s > 0):
            raise ConfigError(f"fps and flush_interval_s must be positive numbers, got {fps}, {flush_interval_s}")
        self.recording_id = recording_id or str(uuid.uuid4())
        self.scene_size = scene_size
        self.intrinsics = intrinsics
        self.gaze_offset = checked_gaze_offset(gaze_offset, self.dir, "gaze_offset")
        self.fps = fps
        self.source = source
        self.metadata = dict(metadata or {})
        self.clock = clock  # "now" in the records' clock (unix ns), for events and timings stamped without a time
        self.counts = {
            "gaze": 0,
            "frames": 0,
            "fixations": 0,
            "blinks": 0,
            "events": 0,
            "notices": 0,
            "audio_samples": 0,
            "imu": 0,
        }
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.error: str | None = None
        self.write_failure: OSError | None = None  # the first write the disk refused; the recording stops there
        self._lock = threading.RLock()
        self._started = False
        self._closed = False
        self._video: Mp4Writer | None = None
        self._wav: _WavAppender | None = None
        self._audio_ts = None
        self._fix_id = 0
        self._blink_id = 0
        self._created = time.time()
        self._files: dict = {}
        self._flush_interval = flush_interval_s
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def _check_out_dir(self, overwrite: bool, reading: list[Path]) -> list[str]:
        """Refuse an unusable `out_dir` (see the class docstring); return the names of an old session's files that
        the first write will replace."""
        d = self.dir
        if not d.exists():
            return []
        if not d.is_dir():
            raise InputError(d, "exists and is not a directory")
        try:
            existing = [p.name for p in d.iterdir()]
        except OSError as e:
            raise InputError(d, f"directory cannot be read ({e.strerror or e})") from e
        if not existing:
            return []
        if not overwrite:
            raise InputError(
                d,
                "already exists and is not empty",
                hint="choose a new directory, or add --overwrite to replace its session files",
            )
        real = d.resolve()
        for p in reading:
            rp = p.resolve()
            if rp == real or real in rp.parents:
                raise InputError(
                    d,
                    f"is being read as the source ({p}): overwriting it would destroy what is being recorded",
                    hint="write the session to another directory",
                )
        manifest = d / "session.json"
        ours = False
        if manifest.is_file():
            try:
                ours = read_json(manifest).get("format") == FORMAT
            except InputError:
                ours = False
        if not ours:
            raise InputError(
                d,
                "is not a session written by gazeqwen-edge (no session.json of ours): overwrite only replaces our "
                "own sessions",
                hint="choose a new directory; move or delete this one's contents yourself if you mean to",
            )
        return [n for n in existing if n in _SESSION_FILES and (d / n).is_file()]

    @classmethod
    def for_source(cls, out_dir: str | Path, source: Source, spec: str = "", **kw) -> Recorder:
        """A Recorder that carries the source's scene size, intrinsics and gaze offset, stamps events and timings
        logged without a time on the source's clock (a live Neon's `now_ns`: the phone's clock), and refuses to
        overwrite the paths the source reads."""
        if "clock" not in kw and callable(getattr(source, "now_ns", None)):
            kw["clock"] = source.now_ns
        reading = [getattr(source, a, None) for a in ("path", "video_path", "fixation_csv")]
        return cls(
            out_dir,
            scene_size=source.scene_size,
            intrinsics=source.intrinsics,
            gaze_offset=source.gaze_offset,
            source=spec or getattr(source, "name", ""),
            reading=[p for p in reading if isinstance(p, str | os.PathLike)],
            **kw,
        )

    # ------------------------------------------------------------------ files
    def _start(self) -> None:
        """Create the session on the first record: replace an old session's files, write the manifest, open files."""
        for name in self._replace:
            (self.dir / name).unlink(missing_ok=True)
        made = not self.dir.exists()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(self.dir, f"cannot be created ({e.strerror or e})") from e
        try:
            self._create_files()
        except OSError:  # a disk full or read-only from the start: nothing was recorded, so nothing is left behind
            self._undo_start(made)
            raise
        self._started = True
        self._flusher = threading.Thread(target=self._flush_loop, name="recorder-flush", daemon=True)
        self._flusher.start()

    def _create_files(self) -> None:
        """The manifest ("recording"), info.json, the CSV files with their headers, scene_camera.json. OSError."""
        self._write_manifest("recording")
        for name, cols in (
            ("gaze.csv", GAZE_COLUMNS),
            ("fixations.csv", FIXATION_COLUMNS + ["source"]),
            ("blinks.csv", BLINK_COLUMNS),
            ("events.csv", EVENT_COLUMNS + ["data"]),
            ("world_timestamps.csv", WORLD_COLUMNS),
            ("timings.csv", ["timestamp [ns]", "stage", "duration [ms]"]),
        ):
            f = self._files[name] = self._open(name)
            try:
                f.write(",".join(cols) + "\n")
                f.flush()
            except OSError as e:  # (a buffered flush names no file: the error line should)
                e.filename = e.filename or str(self.dir / name)
                raise
        if self.intrinsics is not None:
            self._write_scene_camera(self.intrinsics)

    def _undo_start(self, made_dir: bool) -> None:
        """Remove what _create_files wrote before the disk refused it (headers only, no record) and the directory
        when this recorder made it, so a failed start leaves no empty session behind; errors are let be."""
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
        self._files = {}
        for name in _SESSION_FILES:
            try:
                (self.dir / name).unlink(missing_ok=True)
            except OSError:
                pass
        if made_dir:
            try:
                self.dir.rmdir()
            except OSError:
                pass

    def _open(self, name: str):
        return open(self.dir / name, "w", newline="", encoding="utf-8", buffering=WRITE_BUFFER_BYTES)  # noqa: SIM115

    def _manifest(self, state: str) -> dict:
        m = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "state": state,
            "recording_id": self.recording_id,
            "created_unix_s": self._created,
            "source": self.source,
            "start_ns": self.first_ns,
            "end_ns": self.last_ns,
            "scene_size": list(self.scene_size) if self.scene_size else None,
            "gaze_offset": list(self.gaze_offset),
            "fps": self.fps,
            "counts": dict(self.counts),
            "gaze_csv_offset_applied": True,
            "metadata": self.metadata,
        }
        if self.error is not None:
            m["error"] = self.error
        return m

    def _json_bytes(self, name: str, obj: dict) -> bytes:
        try:
            return json.dumps(obj, indent=2, allow_nan=False).encode("utf-8")  # strict JSON: NaN / inf are not JSON
        except ValueError as e:
            raise ConfigError(f"{name}: a value cannot be written as JSON ({e}); check the session metadata") from e

    def _write_json(self, name: str, obj: dict) -> None:
        # atomic: a reader never sees half a manifest; on a full disk the old one stays, no half-written copy beside it
        write_bytes_atomic(self.dir / name, self._json_bytes(name, obj))

    def _write_manifest(self, state: str) -> None:
        data = self._json_bytes("session.json", self._manifest(state))
        if state == "recording":  # room for the final manifest when the disk is full by then (_rewrite_manifest)
            data = _padded(data, -(-(len(data) + MANIFEST_ROOM_BYTES) // MANIFEST_ROOM_BYTES) * MANIFEST_ROOM_BYTES)
        write_bytes_atomic(self.dir / "session.json", data)
        info = {"recording_id": self.recording_id}
        if self.first_ns is not None:
            info["start_time"] = int(self.first_ns)
            info["duration"] = int((self.last_ns or self.first_ns) - self.first_ns)
        self._write_json(
            "info.json",
            {
                **info,
                "gaze_offset": list(self.gaze_offset),
                "scene_camera": {"width": self.scene_size[0], "height": self.scene_size[1]}
                if self.scene_size
                else None,
                "source": "gazeqwen-edge " + (self.source or ""),
            },
        )

    def _write_scene_camera(self, k: CameraIntrinsics) -> None:
        extra = {a: b for a, b in k.extra.items() if isinstance(b, str | int | float | bool)}
        self._write_json(
            "scene_camera.json",
            {
                "camera_matrix": np.asarray(k.camera_matrix, dtype=float).tolist(),
                "dist_coefs": [np.asarray(k.dist_coeffs, dtype=float).reshape(-1).tolist()],  # Cloud's name
                "distortion_coefficients": [np.asarray(k.dist_coeffs, dtype=float).reshape(-1).tolist()],
                "width": int(k.width),
                "height": int(k.height),
                **extra,
            },
        )

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval):
            with self._lock:
                if self.write_failure is not None:
                    return  # reported by the next write, flush or close, in the thread that records
                try:
                    self._flush_files()
                except OSError as e:
                    self.write_failure = e

    def _flush_files(self) -> None:
        if self._closed or not self._started:
            return
        for name, f in self._files.items():
            try:
                f.flush()
            except OSError as e:  # (a buffered flush names no file: the error line should)
                e.filename = e.filename or str(self.dir / name)
                raise
        if self._wav is not None:
            self._wav.flush()

    def flush(self) -> None:
        """Push everything written so far to the OS (the background thread does this every flush interval).

        Raises DeviceError when the disk refuses the data (or refused an earlier write)."""
        with self._lock:
            self._check_disk()
            try:
                self._flush_files()
            except OSError as e:
                self.write_failure = e
                self._check_disk()

    def _check_disk(self) -> None:
        """Raise DeviceError when a write to the session's disk has failed (full, over quota, read-only, I/O
        error): the recording cannot go on, and saying so beats recording into the void."""
        e = self.write_failure
        if e is None:
            return
        what = f" ({Path(e.filename).name})" if getattr(e, "filename", None) else ""
        kept = "what reached the disk before is kept" if self._started else "nothing was recorded, nothing left behind"
        raise DeviceError(
            f"cannot write the session in {self.dir}{what}: {e.strerror or e}",
            hint=disk_hint(e.errno, "that disk") + "; " + kept,
        )

    # ------------------------------------------------------------------ writing
    def _seen(self, ts: int) -> None:
        if self.first_ns is None or ts < self.first_ns:
            self.first_ns = ts
        if self.last_ns is None or ts > self.last_ns:
            self.last_ns = ts

    def write(self, r: Record) -> None:
        """Record `r`. Raises RuntimeError after close(), DeviceError when the disk refuses the session's writes,
        TypeError for what is not a Record."""
        with self._lock:
            if self._closed:
                raise RuntimeError("Recorder is closed")
            self._check_disk()
            try:
                self._write(r)
            except OSError as e:
                self.write_failure = e
                self._check_disk()

    def _write(self, r: Record) -> None:
        if not self._started:
            self._start()
        rid = self.recording_id
        dx, dy = self.gaze_offset
        if isinstance(r, GazeSample):
            self._files["gaze.csv"].write(
                f"{rid},{rid},{r.ts_ns},{_f(r.x + dx)},{_f(r.y + dy)},{1 if r.worn else 0},,,,\n"
            )
            self.counts["gaze"] += 1
            self._seen(r.ts_ns)
        elif isinstance(r, SceneFrame):
            self._write_frame(r)
        elif isinstance(r, Fixation):
            self._fix_id += 1
            self._files["fixations.csv"].write(
                f"{rid},{rid},{self._fix_id},{r.start_ns},{r.end_ns},{r.duration_ns / 1e6!r},{_f(r.x + dx)},"
                f"{_f(r.y + dy)},,,{_csv_field(r.source)}\n"
            )
            self.counts["fixations"] += 1
            self._seen(r.start_ns)
            self._seen(r.end_ns)
        elif isinstance(r, Blink):
            self._blink_id += 1
            self._files["blinks.csv"].write(
                f"{rid},{rid},{self._blink_id},{r.start_ns},{r.end_ns},{(r.end_ns - r.start_ns) / 1e6!r}\n"
            )
            self.counts["blinks"] += 1
            self._seen(r.start_ns)
            self._seen(r.end_ns)
        elif isinstance(r, Event):
            typ = "recording" if r.name.startswith("recording.") else "session"
            self._files["events.csv"].write(f"{rid},{r.ts_ns},{_csv_field(r.name)},{typ},{_csv_field(r.data)}\n")
            self.counts["events"] += 1
            self._seen(r.ts_ns)
        elif isinstance(r, Notice):
            self._files["events.csv"].write(
                f"{rid},{r.ts_ns},{_csv_field('notice.' + r.kind)},notice.{_csv_field(r.level)},"
                f"{_csv_field(r.message)}\n"
            )
            self.counts["notices"] += 1
        elif isinstance(r, AudioChunk):
            self._write_audio(r)
        elif isinstance(r, ImuSample):
            self._write_imu(r)
        else:
            raise TypeError(f"Recorder cannot write {type(r).__name__}")

    def _write_frame(self, r: SceneFrame) -> None:
        if self._video is None:
            if self.scene_size is None:
                self.scene_size = (r.width, r.height)
            self._video = Mp4Writer(self.dir / "scene.mp4", r.width, r.height, self.fps)
            self._write_manifest("recording")
        self._video.write(r.rgb)
        self._files["world_timestamps.csv"].write(f"{self.recording_id},{self.recording_id},{r.ts_ns}\n")
        self.counts["frames"] += 1
        self._seen(r.ts_ns)

    def _write_audio(self, r: AudioChunk) -> None:
        if self._wav is None:
            self._wav = _WavAppender(self.dir / "audio.wav", r.sample_rate)
            self._audio_ts = self._open("audio_timestamps.csv")
            self._audio_ts.write("timestamp [ns],first sample,samples,sample rate\n")
            self._audio_ts.flush()  # the header is on disk at once, like every other file's
            self._files["audio_timestamps.csv"] = self._audio_ts
        if r.sample_rate != self._wav.rate:
            raise InputError(self.dir / "audio.wav", f"audio rate changed from {self._wav.rate} to {r.sample_rate} Hz")
        n = len(r.pcm)
        self._audio_ts.write(f"{r.ts_ns},{self._wav.n},{n},{r.sample_rate}\n")
        self._wav.write(r.pcm)
        self.counts["audio_samples"] += n
        self._seen(r.ts_ns)

    def _write_imu(self, r: ImuSample) -> None:
        f = self._files.get("imu.csv")
        if f is None:  # created with the first IMU sample: a source without an IMU leaves no imu.csv
            f = self._files["imu.csv"] = self._open("imu.csv")
            f.write(",".join(IMU_COLUMNS) + "\n")
            f.flush()
        a = ",".join(_f(v) for v in r.accel) if r.accel is not None else ",,"
        q = ",".join(_f(v) for v in r.quaternion) if r.quaternion is not None else ",,,"
        rid = self.recording_id
        f.write(f"{rid},{rid},{r.ts_ns},{','.join(_f(v) for v in r.gyro)},{a},,,,{q}\n")
        self.counts["imu"] += 1
        self._seen(r.ts_ns)

    def event(self, name: str, data: str = "", ts_ns: int | None = None) -> Event:
        """Log a named event (e.g. "query" / "answer" with the text as data) at ts_ns (default: now on `clock`)."""
        ev = Event(self.clock() if ts_ns is None else int(ts_ns), name, data)
        self.write(ev)
        return ev

    def write_timing(self, stage: str, seconds: float, ts_ns: int | None = None) -> None:
        """Log one stage duration (e.g. from StageTimer) at recording time ts_ns (default: now). A no-op after
        close(); DeviceError when the disk refuses the session's writes (as write)."""
        with self._lock:
            if self._closed:
                return
            self._check_disk()
            try:
                if not self._started:
                    self._start()
                t = self.clock() if ts_ns is None else int(ts_ns)
                self._files["timings.csv"].write(f"{t},{_csv_field(stage)},{seconds * 1e3!r}\n")
            except OSError as e:
                self.write_failure = e
                self._check_disk()

    def _finish(self, state: str) -> None:
        """Close every file (each one tried even when another fails: all that reaches the disk is kept) and write
        the manifest with `state`; "failed" with the disk's error when a write failed."""
        self._stop.set()
        closers = [f.close for f in self._files.values()]  # (close flushes first)
        closers += [w.close for w in (self._wav, self._video) if w is not None]
        for close in closers:
            try:
                close()
            except OSError as e:
                self.write_failure = self.write_failure or e
        self._closed = True
        if self.write_failure is not None:
            state = "failed"
            if self.error is None:
                self.error = f"{type(self.write_failure).__name__}: {self.write_failure}"
        try:
            self._write_manifest(state)
        except OSError as e:
            self.write_failure = self.write_failure or e
            if e.errno in OUTPUT_ERRNOS:  # a full disk: "failed" goes into the room the "recording" manifest kept
                self.error = self.error or f"{type(e).__name__}: {e}"
                self._rewrite_manifest(self._json_bytes("session.json", self._manifest("failed")))

    def _rewrite_manifest(self, data: bytes) -> None:
        """Overwrite session.json in place with `data`, padded with spaces to the file's size: on a full disk the
        atomic write (a new file) is refused, but rewriting blocks the file already holds needs no new space (the
        "recording" manifest is written with MANIFEST_ROOM_BYTES to spare). Not atomic, so only this last resort.
        When `data` does not fit or the rewrite fails too, the manifest keeps saying "recording" (read back as a
        session that was not closed); the disk's error is already kept in write_failure."""
        try:
            with open(self.dir / "session.json", "r+b") as f:
                size = f.seek(0, os.SEEK_END)
                if len(data) + 2 <= size:
                    f.seek(0)
                    f.write(_padded(data, size))
                    f.flush()
                    os.fsync(f.fileno())
        except OSError:
            pass

    def close(self) -> None:
        """Finish the session and mark it closed (an empty one is created if nothing was written). Idempotent.

        Raises DeviceError when the disk refused a write (the session is then marked "failed" where it still can
        be; every file is closed first)."""
        with self._lock:
            if self._closed:
                return
            if not self._started and self.write_failure is not None:  # the start failed: nothing to finish
                self._closed = True
                self._check_disk()
            if not self._started:
                self._start()
            self._finish("closed")
            self._check_disk()

    def abort(self, error: BaseException | str) -> None:
        """End a recording that `error` stopped: when nothing was recorded, leave nothing (an old session that
        `overwrite` would have replaced stays as it was); else keep what was recorded and mark it "failed".
        A no-op after close()."""
        with self._lock:
            if self._closed:
                return
            if isinstance(error, GazeQwenError):  # its message, not the hint below it: session.json's "error" is a line
                error = f"{type(error).__name__}: {error.message}"
            elif not isinstance(error, str):
                error = f"{type(error).__name__}: {error}"
            self.error = " ".join(error.split())
            if not self._started:
                self._closed = True
                return
            self._finish("failed")

    @property
    def started(self) -> bool:
        """True once the session directory has been written (at the first record)."""
        return self._started

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None or isinstance(exc, KeyboardInterrupt):
            self.close()
        else:
            self.abort(exc)


_SESSION_FILES = {
    "session.json",
    "info.json",
    "gaze.csv",
    "fixations.csv",
    "blinks.csv",
    "events.csv",
    "world_timestamps.csv",
    "scene.mp4",
    "scene_camera.json",
    "audio.wav",
    "audio_timestamps.csv",
    "timings.csv",
    "imu.csv",
    # what a streaming session (runtime.Session) adds to the recording: kept beside another recording, they would
    # describe questions and alerts that recording never had
    "answers.jsonl",
    "alerts.jsonl",
}


def _padded(data: bytes, size: int) -> bytes:
    """JSON `data` (len(data) + 2 <= size) followed by a line break, spaces and a line break to `size` bytes: JSON
    readers skip the whitespace."""
    return data + b"\n" + b" " * (size - len(data) - 2) + b"\n"


def _csv_field(s: str) -> str:
    s = str(s)
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


class SessionSource(CloudExportSource):
    """A session directory written by `Recorder` (also one whose writer was killed mid-way, or that failed).

    A session that was not closed gets a Notice ("incomplete", or "failed" with the recorded error) and takes its
    time span from the data (its manifest was last written at the start); a closed one whose files hold fewer rows
    than session.json counted gets a Notice ("truncated"). Late samples of a live recording (written in arrival
    order) are re-sorted with an info-level Notice."""

    name = "session"
    tolerant = True
    reorder_level = "info"  # a live source's late samples are recorded in arrival order: expected, not a fault

    def __init__(self, path: str | Path, **kw):
        p = Path(path)
        self.manifest = read_json(p / "session.json")
        if self.manifest.get("format") != FORMAT:
            raise InputError(p / "session.json", f"is not a {FORMAT} manifest (format={self.manifest.get('format')!r})")
        self._check_manifest(p / "session.json")
        super().__init__(p, **kw)
        state = self.manifest.get("state")
        if state == "recording":
            self._notices.append(
                Notice(
                    self.start_ns or 0,
                    "incomplete",
                    "this session was not closed (its writer was stopped): the last second may be missing",
                    "warning",
                )
            )
        elif state == "failed":
            self._notices.append(
                Notice(
                    self.start_ns or 0,
                    "failed",
                    f"this session's recording was stopped by an error ({self.manifest.get('error', 'unknown')}): "
                    "it holds what was recorded until then",
                    "warning",
                )
            )
        else:
            self._check_counts()

    def _check_manifest(self, path: Path) -> None:
        m = self.manifest

        def pair(key, kind):
            v = m.get(key)
            if v is None:
                return None
            if (
                not isinstance(v, list)
                or len(v) != 2
                or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in v)
            ):
                raise InputError(path, f"'{key}' must be a pair of numbers, found {v!r}")
            return tuple(kind(a) for a in v)

        off = m.get("gaze_offset")
        self._m_offset = (0.0, 0.0) if off is None else checked_gaze_offset(off, path)
        size = pair("scene_size", int)
        if size is not None and (size[0] <= 0 or size[1] <= 0):
            raise InputError(path, f"'scene_size' must be positive, found {list(size)}")
        self._m_size = size
        for key in ("start_ns", "end_ns"):
            v = m.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise InputError(path, f"'{key}' must be an integer (unix ns), found {v!r}")
        if m.get("state") not in STATES:
            raise InputError(path, f"'state' must be one of {', '.join(STATES)}, found {m.get('state')!r}")

    def _check_counts(self) -> None:
        """A closed session's files must hold what session.json counted: say so when they hold less."""
        counts = self.manifest.get("counts") or {}
        for key, name, have in (("gaze", "gaze.csv", self._gaze_rows), ("frames", "world_timestamps.csv", None)):
            want = counts.get(key)
            if have is None:
                have = len(self.world_ts_ns)
            if isinstance(want, int) and have < want:
                self._notices.append(
                    Notice(
                        self.start_ns or 0,
                        "truncated",
                        f"{name} holds {have} rows but session.json counted {want}: the file was cut or changed after "
                        "the session was closed",
                        "warning",
                    )
                )

    @property
    def closed(self) -> bool:
        return self.manifest.get("state") == "closed"

    @cached_property
    def gaze_offset(self) -> tuple[float, float]:
        return self._m_offset

    @cached_property
    def scene_size(self) -> tuple[int, int] | None:
        return self._m_size or super().scene_size

    def _video_loss_expected(self) -> bool:
        return not self.closed  # a killed/failed writer may leave the video short or without a complete fragment

    @cached_property
    def _video_info(self):
        from gazeqwen_edge.device._io import VideoInfo, probe_video

        try:
            return probe_video(self.video_path)
        except InputError:
            if self.closed:
                raise
            return VideoInfo(0, 0, 0, "")  # killed before the first video fragment was written

    @cached_property
    def frame_ts_ns(self) -> np.ndarray:
        if self.video_path is not None and self._video_info.n_frames == 0 and not self.closed:
            return np.zeros(0, np.int64)
        return super().frame_ts_ns

    @property
    def start_ns(self) -> int | None:
        """session.json's start when the session was closed, else the first time in the data."""
        v = self.manifest.get("start_ns")
        return int(v) if v is not None and self.closed else self._data_span()[0]

    @property
    def end_ns(self) -> int | None:
        """session.json's end when the session was closed, else the last time in the data (a killed session's
        manifest and info.json were last written at its start)."""
        v = self.manifest.get("end_ns")
        return int(v) if v is not None and self.closed else self._data_span()[1]

    @cached_property
    def timings(self) -> list[tuple[int, str, float]]:
        """(unix ns, stage, duration ms) of every logged stage timing (a cut last line is dropped with a Notice)."""
        if not (self.path / "timings.csv").exists():
            return []
        c = self._csv("timings.csv", {"timestamp [ns]": INT, "stage": "str", "duration [ms]": "float"})
        return [
            (int(t), str(s), float(d))
            for t, s, d in zip(c["timestamp [ns]"], c["stage"], c["duration [ms]"], strict=True)
        ]

    @cached_property
    def _audio_index(self) -> dict[str, np.ndarray]:
        """audio_timestamps.csv, cut to the chunks whose samples audio.wav holds (a Notice says when some are not)."""
        c = self._csv(
            "audio_timestamps.csv", {"timestamp [ns]": INT, "first sample": INT, "samples": INT, "sample rate": INT}
        )
        n_pcm = max(0, (self.path / "audio.wav").stat().st_size - _WAV_HEADER_BYTES) // 2
        inside = (c["first sample"] + c["samples"] <= n_pcm) & (c["first sample"] >= 0) & (c["samples"] >= 0)
        k = len(inside) if inside.all() else int(np.argmin(inside))
        if k < len(inside):
            self._notices.append(
                Notice(
                    int(c["timestamp [ns]"][k]),
                    "truncated",
                    f"audio.wav holds {n_pcm} samples: the last {len(inside) - k} of {len(inside)} audio chunks listed "
                    "in audio_timestamps.csv are not in it (its writer was stopped)",
                    "info" if not self.closed else "warning",
                )
            )
        return {name: v[:k] for name, v in c.items()}

    def _extra_streams(self, wanted) -> list[Iterator[Record]]:
        if wanted(AudioChunk) and (self.path / "audio.wav").exists() and (self.path / "audio_timestamps.csv").exists():
            self._audio_index  # noqa: B018  read now: what it tells goes into this call's notices
            return [self._audio_records()]
        return []

    def _audio_records(self) -> Iterator[AudioChunk]:
        c = self._audio_index
        raw = (self.path / "audio.wav").read_bytes()[_WAV_HEADER_BYTES:]
        pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
        for t, first, n, rate in zip(
            c["timestamp [ns]"], c["first sample"], c["samples"], c["sample rate"], strict=True
        ):
            yield AudioChunk(int(t), pcm[first : first + n].astype(np.float32) / 32767, int(rate))
