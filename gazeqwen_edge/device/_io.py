"""File helpers shared by the readers and the recorder: strict CSV columns, JSON, mp4 probing/decoding/encoding.

Every problem with a user's file becomes one `InputError(path, problem)`; nothing else escapes for bad data.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError

INT, FLOAT, BOOL, STR = "int", "float", "bool", "str"


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, expected a file") from None
    except OSError as e:
        raise InputError(path, f"cannot be read ({e.strerror or e})") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(path, f"is not UTF-8 text (byte {e.start})") from None


def read_json(path: Path) -> dict:
    text = read_text(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(path, f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(path, f"expected a JSON object, found {type(obj).__name__}")
    return obj


def _convert(path: Path, name: str, kind: str, values: list[str], first_line: int, allow_empty: bool):
    if kind == STR:
        return np.array(values, dtype=object)
    if kind == BOOL:
        out = np.empty(len(values), dtype=bool)
        for i, v in enumerate(values):
            lv = v.strip().lower()
            if lv in ("true", "yes"):
                out[i] = True
            elif lv in ("false", "no") or (lv in ("", "none") and allow_empty):
                out[i] = False
            else:
                try:
                    out[i] = float(lv) != 0
                except ValueError:
                    raise InputError(path, f"line {first_line + i}: column '{name}': {v!r} is not a boolean") from None
        return out
    dtype = np.int64 if kind == INT else np.float64
    if allow_empty:
        values = [v if v.strip() else ("-1" if kind == INT else "nan") for v in values]
    try:
        if kind == INT:
            # exact for 19-digit nanosecond timestamps (no float round trip)
            return np.array([int(v) for v in values], dtype=np.int64)
        arr = np.array(values, dtype=np.str_).astype(dtype) if values else np.zeros(0, dtype)
        return arr
    except (ValueError, OverflowError):
        for i, v in enumerate(values):
            try:
                int(v) if kind == INT else float(v)
            except (ValueError, OverflowError):
                what = "an integer" if kind == INT else "a number"
                raise InputError(path, f"line {first_line + i}: column '{name}': {v!r} is not {what}") from None
        raise InputError(path, f"column '{name}': values out of range") from None


def read_csv_columns(
    path: Path,
    required: dict[str, str],
    optional: dict[str, str] | None = None,
    tolerate_partial_tail: bool = False,
    allow_empty: set[str] | frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """Read named columns of a CSV with a header line.

    `required` / `optional`: column name -> INT | FLOAT | BOOL | STR. A missing required column, a row with the wrong
    number of fields or a value that does not parse raises InputError naming the file, line and column.
    `tolerate_partial_tail`: drop a last line that is incomplete (no newline at the end / too few fields), as left by a
    process killed while writing.
    """
    optional = optional or {}
    text = read_text(path)
    if not text.strip():
        raise InputError(path, "is empty (expected a header line: " + ",".join(required) + ")")
    complete = text.endswith("\n")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise InputError(path, f"is not valid CSV ({e})") from None
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            path,
            f"wrong CSV header: missing column(s) {', '.join(repr(m) for m in missing)}; found {', '.join(header) or 'none'}",
        )
    body = [r for r in rows[1:] if r]  # blank lines are harmless
    if tolerate_partial_tail and body and (not complete or len(body[-1]) != len(header)):
        body = body[:-1]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise InputError(path, f"line {i + 2}: expected {len(header)} fields, found {len(r)}")
    out: dict[str, np.ndarray] = {}
    for cols in (required, optional):
        for name, kind in cols.items():
            if name not in header:
                continue
            j = header.index(name)
            out[name] = _convert(path, name, kind, [r[j] for r in body], 2, name in allow_empty)
    return out


def info_gaze_offset(info: dict, path: Path) -> tuple[float, float]:
    """The wearer offset (px) from an info.json dict (Neon native recordings, Cloud exports, our sessions)."""
    off = info.get("gaze_offset") or [0.0, 0.0]
    try:
        return (float(off[0]), float(off[1]))
    except (TypeError, ValueError, IndexError):
        raise InputError(path, f"gaze_offset {off!r} is not a pair of numbers") from None


def check_sorted(path: Path, ts: np.ndarray, what: str = "timestamps") -> None:
    if len(ts) > 1 and np.any(np.diff(ts) < 0):
        k = int(np.argmax(np.diff(ts) < 0))
        raise InputError(path, f"{what} go backwards at row {k + 2} ({ts[k]} then {ts[k + 1]})")


# ---------------------------------------------------------------------------------------------------------- video
class VideoInfo:
    def __init__(self, n_frames: int, width: int, height: int, codec: str):
        self.n_frames, self.width, self.height, self.codec = n_frames, width, height, codec


def probe_video(path: Path, count: bool = True) -> VideoInfo:
    """Open a video with PyAV and count its frames (by demuxing, no decoding). Empty/corrupt -> InputError."""
    import av

    if not path.exists():
        raise InputError(path, "video file is missing")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(path, "has no video stream")
            vs = c.streams.video[0]
            n = 0
            if count:
                for p in c.demux(vs):
                    if p.size:
                        n += 1
            return VideoInfo(n, int(vs.width or 0), int(vs.height or 0), vs.codec_context.name)
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(path, f"is not a readable video ({e})") from None


def iter_video_frames(path: Path, start_index: int = 0, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode RGB frames in order (frame index >= start_index). Decoding errors -> InputError."""
    import av

    try:
        c = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(path, f"is not a readable video ({e})") from None
    try:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        k = 0
        n = 0
        try:
            for frame in c.decode(vs):
                if k >= start_index:
                    yield frame.to_ndarray(format="rgb24")
                    n += 1
                    if max_frames is not None and n >= max_frames:
                        return
                k += 1
        except av.error.FFmpegError as e:
            raise InputError(path, f"video decoding failed after {k} frames ({e})") from None
    finally:
        c.close()


class Mp4Writer:
    """H.264 mp4 writer (PyAV). Fragmented mp4 (a fragment per keyframe, one per second at 30 fps), no encoder
    look-ahead (zerolatency) and packets flushed to the file as they are muxed, so the file stays readable up to
    (about) its last frame if the process is killed."""

    def __init__(self, path: Path, width: int, height: int, fps: float = 30.0, crf: int = 23, preset: str = "veryfast"):
        import av

        self.path = path
        self._c = av.open(
            str(path), "w", options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
        )
        rate = max(1, int(round(fps)))
        self._s = self._c.add_stream("libx264", rate=rate)
        self._s.width, self._s.height = width + (width % 2), height + (height % 2)
        self._s.pix_fmt = "yuv420p"
        self._s.options = {"crf": str(crf), "preset": preset, "tune": "zerolatency", "g": str(rate), "bf": "0"}
        self.width, self.height = width, height
        self.n = 0
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        import av

        if rgb.shape[1] != self.width or rgb.shape[0] != self.height:
            raise ValueError(
                f"frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the video's {self.width}x{self.height}"
            )
        if self._s.width != self.width or self._s.height != self.height:  # odd sizes: pad to even for yuv420p
            pad = np.zeros((self._s.height, self._s.width, 3), np.uint8)
            pad[: self.height, : self.width] = rgb
            rgb = pad
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.n
        for p in self._s.encode(frame):
            self._c.mux(p)
        self.n += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for p in self._s.encode():
            self._c.mux(p)
        self._c.close()


def fsync_file(f) -> None:
    f.flush()
    try:
        os.fsync(f.fileno())
    except OSError:
        pass


class RandomAccessVideo:
    """Decode single frames of a video by display index (seek to the keyframe before, decode forward).

    The presentation times of all frames are read once by demuxing (no decoding)."""

    def __init__(self, path: Path):
        import av

        self.path = path
        try:
            self._c = av.open(str(path))
            self._vs = self._c.streams.video[0]
            pts = sorted(p.pts for p in self._c.demux(self._vs) if p.size and p.pts is not None)
        except (av.error.FFmpegError, OSError, IndexError) as e:
            raise InputError(path, f"is not a readable video ({e})") from None
        self.pts = pts

    def __len__(self) -> int:
        return len(self.pts)

    def rgb(self, index: int) -> np.ndarray:
        import av

        if not 0 <= index < len(self.pts):
            raise IndexError(f"frame {index} not in 0..{len(self.pts) - 1}")
        target = self.pts[index]
        try:
            self._c.seek(target, stream=self._vs, backward=True)
            for fr in self._c.decode(self._vs):
                if fr.pts is not None and fr.pts >= target:
                    return fr.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise InputError(self.path, f"frame {index} cannot be decoded ({e})") from None
        raise InputError(self.path, f"frame {index} cannot be decoded (stream ended)")

    def close(self) -> None:
        self._c.close()
