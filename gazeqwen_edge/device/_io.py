"""File helpers shared by the readers and the recorder: strict CSV columns, JSON, mp4 probing/decoding/encoding.

Every problem with a user's file becomes one `InputError(path, problem)`; nothing else escapes for bad data. A file
that is a Git LFS pointer (what a clone without `git lfs` leaves in place of a large file) is named as such, with
the command that fetches the real content. libav never prints to the terminal: its messages are switched off
(`quiet_libav`) and the error that matters is raised as an InputError instead.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError

INT, FLOAT, BOOL, STR = "int", "float", "bool", "str"

# git-lfs pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md): UTF-8 text starting with this
# line, and by the spec smaller than 1024 bytes
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX_BYTES = 1024
LFS_HINT = (
    "the repository was cloned without its Git LFS objects: run 'git lfs pull' in it (or 'git lfs fetch' then "
    "'git lfs checkout'), or download the file itself"
)
# The largest wearer offset we accept, px: the width of the Neon scene camera (REFERENCE.md section 4). An offset this
# large would move every gaze sample out of the image; the Companion app's offsets are tens of px.
MAX_GAZE_OFFSET_PX = 1600.0


def is_lfs_pointer(path: Path) -> bool:
    """True when `path` is a small text file starting with the git-lfs pointer line (not the file's real content)."""
    try:
        if path.stat().st_size >= LFS_POINTER_MAX_BYTES:
            return False
        with open(path, "rb") as f:
            return f.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError:
        return False


def check_not_lfs_pointer(path: Path, what: str = "file") -> None:
    """Raise InputError naming `path` as a Git LFS pointer (with the fix) when it is one."""
    if is_lfs_pointer(Path(path)):
        raise InputError(path, f"is a Git LFS pointer, not the {what} itself", hint=LFS_HINT)


def quiet_libav() -> None:
    """Switch libav's own logging off. PyAV leaves it off by default, but pupil-labs-video turns it on (VERBOSE) when
    imported, after which libav lines such as "moov atom not found" reach stderr through Python's logging. The
    errors that matter reach us as exceptions and become one InputError."""
    import av.logging

    av.logging.set_level(None)


def read_text(path: Path) -> str:
    check_not_lfs_pointer(path)
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
    on_dropped_tail: Callable[[int, str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Read named columns of a CSV with a header line.

    `required` / `optional`: column name -> INT | FLOAT | BOOL | STR. A missing required column, a row with the wrong
    number of fields or a value that does not parse raises InputError naming the file, line and column.
    `tolerate_partial_tail`: drop a last line that is incomplete (no newline at the end / too few fields), as left by a
    process killed while writing; `on_dropped_tail(line_number, text)` is then told which line was dropped.
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
        if on_dropped_tail is not None:
            on_dropped_tail(len(rows), ",".join(body[-1]))
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


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def checked_gaze_offset(off, path: Path, key: str = "gaze_offset") -> tuple[float, float]:
    """A wearer offset (dx, dy) px read from a file, checked: a pair of finite numbers no larger than
    `MAX_GAZE_OFFSET_PX` (NaN or 1e308 cannot come from a device and would turn every gaze sample into nonsense)."""
    try:
        if isinstance(off, str | bytes) or len(off) != 2 or not all(_is_number(v) for v in off):
            raise TypeError
        dx, dy = float(off[0]), float(off[1])
    except (TypeError, ValueError, IndexError):
        raise InputError(path, f"{key} {off!r} is not a pair of numbers") from None
    if not (math.isfinite(dx) and math.isfinite(dy)) or max(abs(dx), abs(dy)) > MAX_GAZE_OFFSET_PX:
        raise InputError(
            path,
            f"{key} {[dx, dy]} is not a wearer offset a device can produce (finite, at most {MAX_GAZE_OFFSET_PX:g} px)",
            hint="the file is damaged or was edited: restore it, or set the offset to [0, 0]",
        )
    return (dx, dy)


def info_gaze_offset(info: dict, path: Path) -> tuple[float, float]:
    """The wearer offset (px) from an info.json dict (Neon native recordings, Cloud exports, our sessions); (0, 0)
    when absent. Checked with `checked_gaze_offset`."""
    off = info.get("gaze_offset")
    return (0.0, 0.0) if off is None else checked_gaze_offset(off, path)


def check_sorted(path: Path, ts: np.ndarray, what: str = "timestamps") -> None:
    """Refuse timestamps that go backwards where re-sorting would pair data with the wrong time (scene frames, decoded
    in file order): see the time-order policy in source.py."""
    if len(ts) > 1 and np.any(np.diff(ts) < 0):
        k = int(np.argmax(np.diff(ts) < 0))
        raise InputError(path, f"{what} go backwards at row {k + 2} ({ts[k]} then {ts[k + 1]})")


# ---------------------------------------------------------------------------------------------------------- video
class VideoInfo:
    """What `probe_video` found: frame count (0 when not counted), size px, codec name, average frame rate (Hz, 0 if
    the file does not say) and the presentation time of the last frame in s from the first (None when not counted)."""

    def __init__(
        self, n_frames: int, width: int, height: int, codec: str, fps: float = 0.0, last_frame_s: float | None = None
    ):
        self.n_frames, self.width, self.height, self.codec = n_frames, width, height, codec
        self.fps, self.last_frame_s = fps, last_frame_s


def open_video(path: Path):
    """Open a video container with PyAV (the caller closes it). A missing, empty or unreadable file, a Git LFS pointer
    in place of the video, or a file without a video stream raises InputError; libav prints nothing."""
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(path, "video file is missing")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)")
    check_not_lfs_pointer(path, "video")
    quiet_libav()
    try:
        c = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(path, f"is not a readable video ({e})") from None
    if not c.streams.video:
        c.close()
        raise InputError(path, "has no video stream")
    return c


def probe_video(path: Path, count: bool = True) -> VideoInfo:
    """Open a video with PyAV and (with `count`) count its frames and find its last frame's time by demuxing, no
    decoding. Empty/corrupt/LFS pointer -> InputError."""
    import av

    c = open_video(path)
    try:
        vs = c.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate
        n, last = 0, None
        if count:
            tb = float(vs.time_base) if vs.time_base else None
            first_pts = vs.start_time or 0
            max_pts = None
            for p in c.demux(vs):
                if p.size:
                    n += 1
                    if p.pts is not None:
                        max_pts = p.pts if max_pts is None else max(max_pts, p.pts)
            if max_pts is not None and tb:
                last = (max_pts - first_pts) * tb
            elif n and rate:
                last = (n - 1) / float(rate)
        return VideoInfo(n, int(vs.width or 0), int(vs.height or 0), vs.codec_context.name, float(rate or 0), last)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(path, f"is not a readable video ({e})") from None
    finally:
        c.close()


def iter_video_frames(path: Path, start_index: int = 0, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode RGB frames in order (frame index >= start_index). Decoding errors -> InputError."""
    import av

    c = open_video(path)
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


# Keyframe (and so fragment) interval of `Mp4Writer`, s: a killed writer's mp4 is readable up to its last complete
# fragment, so at most this much video (plus the frame being encoded) is lost.
MP4_FRAGMENT_S = 1.0


class Mp4Writer:
    """H.264 mp4 writer (PyAV). Fragmented mp4 (a fragment per keyframe, one every `MP4_FRAGMENT_S`), no encoder
    look-ahead (zerolatency) and packets flushed to the file as they are muxed, so the file stays readable up to
    (about) its last fragment if the process is killed."""

    def __init__(self, path: Path, width: int, height: int, fps: float = 30.0, crf: int = 23, preset: str = "veryfast"):
        import av

        self.path = path
        self._c = av.open(  # (format named: a temporary name such as x.mp4.part tells av nothing)
            str(path),
            "w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
        )
        rate = max(1, int(round(fps)))
        self._s = self._c.add_stream("libx264", rate=rate)
        self._s.width, self._s.height = width + (width % 2), height + (height % 2)
        self._s.pix_fmt = "yuv420p"
        gop = max(1, int(round(rate * MP4_FRAGMENT_S)))
        self._s.options = {"crf": str(crf), "preset": preset, "tune": "zerolatency", "g": str(gop), "bf": "0"}
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
        self._c = open_video(path)
        try:
            self._vs = self._c.streams.video[0]
            pts = sorted(p.pts for p in self._c.demux(self._vs) if p.size and p.pts is not None)
        except (av.error.FFmpegError, OSError, IndexError) as e:
            self._c.close()
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
