"""StreamGaze items (REFERENCE.md section 2): an egocentric video and its fixation CSV
(`start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,duration_seconds`,
centres normalised to 0-1, times in seconds of the video).

StreamGaze has fixations, not raw gaze. The source delivers SceneFrames (video time mapped to unix ns from `start_ns`)
and Fixations (centres in scene px); with `gaze_hz` set it also delivers GazeSamples on each fixation's centre
(a step signal, no saccades) for consumers that need a gaze stream. `window=(start_s, end_s)` restricts everything
to that span of the video (e.g. up to a question's time stamp); a fixation belongs to the window when it ends in it.
An item ends at its video's last frame (not at its last fixation).

StreamGaze ships two fixation files per video, `<name>_fixation_dataset.csv` and `<name>_fixation_filtered.csv`;
GazeQwen's loader reads the filtered one, and so do we when both are there (`fixation_csv` says which file was used,
and a Notice names the one left aside). Centres are normalised to the frame: values slightly outside [0, 1] (gaze
beyond the image edge) are kept with a Notice, values that cannot be normalised (|v| > `MAX_NORMALISED`, e.g. pixel
coordinates) are an InputError. Fixations that end after the video are dropped with a Notice (the CSV belongs to a
longer video, or the video was cut short).
"""

from __future__ import annotations

import glob
import math
import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from gazeqwen_edge.device._io import FLOAT, open_video, probe_video, read_csv_columns
from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import Fixation, GazeSample, Notice, Record, SceneFrame
from gazeqwen_edge.device.source import Source, invalid_notice
from gazeqwen_edge.device.synthetic import DEFAULT_START_NS
from gazeqwen_edge.errors import InputError

FIXATION_CSV_COLUMNS = {
    "center_x": FLOAT,
    "center_y": FLOAT,
    "start_time_seconds": FLOAT,
    "end_time_seconds": FLOAT,
}
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
# GazeQwen's StreamGaze loader reads `<video stem>_fixation_filtered.csv` (the demo data in REFERENCE.md section 2)
FILTERED_SUFFIX = "_fixation_filtered.csv"
# A normalised centre this far outside [0, 1] (more than a frame beyond its edge) is not normalised at all
MAX_NORMALISED = 2.0


def _is_fixation_csv(p: Path) -> bool:
    try:
        with open(p, encoding="utf-8-sig", errors="replace") as f:
            head = f.readline()
    except OSError:
        return False
    cols = {c.strip() for c in head.split(",")}
    return all(c in cols for c in FIXATION_CSV_COLUMNS)


def fixation_csv_candidates(video: Path, directory: Path | None = None) -> list[Path]:
    """The fixation CSVs of a StreamGaze video, best first: `<stem>_fixation_filtered.csv` (what GazeQwen reads),
    `<stem>.csv`, other `<stem>_fixation*.csv` (e.g. `_fixation_dataset.csv`). Only files with StreamGaze's fixation
    columns count.

    `directory`: a folder holding the fixation files of many videos (StreamGaze's fixation folder, or a folder of
    videos with their CSVs beside them): only those three names, made from the video's stem, are looked for there.
    Without it the video's own folder is searched as one item's folder, with two looser fallbacks after those three:
    other `<stem>*.csv`, else the only fixation CSV in the folder."""
    video = Path(video)
    d = video.parent if directory is None else Path(directory)
    stem = glob.escape(video.stem)  # a stem holding '[' or '*' is a name, not a pattern
    ordered = [
        d / f"{video.stem}{FILTERED_SUFFIX}",
        d / f"{video.stem}.csv",
        *sorted(d.glob(f"{stem}_fixation*.csv")),
    ]
    if directory is None:
        ordered += sorted(d.glob(f"{stem}*.csv"))
    out: list[Path] = []
    for c in ordered:
        if c not in out and c.is_file() and _is_fixation_csv(c):
            out.append(c)
    if not out and directory is None:
        others = [p for p in sorted(d.glob("*.csv")) if _is_fixation_csv(p)]
        if len(others) == 1:
            out = others
    return out


# "MM:SS", "MM:SS.s" or "HH:MM:SS(.s)": StreamGaze's time stamps (REFERENCE.md section 2); minutes may exceed 59
# only without hours, seconds never do
_CLOCK = re.compile(r"^\s*(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)\s*$")


def parse_mmss(text: str) -> float:
    """A StreamGaze time stamp -> seconds of the video: 'MM:SS' ('04:36' -> 276.0), 'MM:SS.s' ('00:07.5' -> 7.5) or
    'HH:MM:SS' ('01:02:03' -> 3723.0). Raises ValueError for anything else (seconds >= 60, minutes >= 60 after an
    hour field, a bare number, a non-string)."""
    m = _CLOCK.match(text) if isinstance(text, str) else None
    if m is None or float(m.group(3)) >= 60 or (m.group(1) is not None and int(m.group(2)) >= 60):
        raise ValueError(f"not a MM:SS time: {text!r}")
    hours = int(m.group(1)) if m.group(1) is not None else 0
    return hours * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def read_fixation_csv(path: Path) -> np.ndarray:
    """The fixations of a StreamGaze fixation CSV as a float64 array (N, 4) of rows [x, y, start_s, end_s], in file
    order: centres normalised to the frame (as the file gives them), times in seconds of the video.

    Raises InputError (naming the file and line) for a missing/unreadable file, a missing column, a time that is not a
    number, negative or ends before it starts, a centre that is not a number, and a centre further than
    `MAX_NORMALISED` from the frame (|v - 0.5| > MAX_NORMALISED - 0.5: pixel coordinates in the normalised columns).
    Centres slightly outside [0, 1] (gaze beyond the image edge) are kept; callers may tell about them."""
    path = Path(path)
    c = read_csv_columns(path, FIXATION_CSV_COLUMNS)
    s, e = c["start_time_seconds"], c["end_time_seconds"]
    bad = np.nonzero(~np.isfinite(s) | ~np.isfinite(e) | (e < s) | (s < 0))[0]
    if len(bad):
        raise InputError(path, f"line {bad[0] + 2}: fixation ends before it starts or has no time")
    cx, cy = c["center_x"], c["center_y"]
    if np.any(~np.isfinite(cx)) or np.any(~np.isfinite(cy)):
        raise InputError(path, "center_x/center_y must be numbers (normalised 0-1)")
    far = np.nonzero((np.abs(cx - 0.5) > MAX_NORMALISED - 0.5) | (np.abs(cy - 0.5) > MAX_NORMALISED - 0.5))[0]
    if len(far):
        k = int(far[0])
        raise InputError(
            path,
            f"line {k + 2}: centre ({cx[k]:g}, {cy[k]:g}) is not normalised to the frame (0-1); pixel coordinates?",
            hint="StreamGaze fixation CSVs give center_x/center_y as fractions of the frame width/height",
        )
    return np.stack([cx, cy, s, e], axis=1).astype(np.float64).reshape(-1, 4)


def find_fixation_csv(video: Path) -> Path:
    """The fixation CSV of a StreamGaze video: the first of `fixation_csv_candidates` beside it, else of those in a
    `fixations/` folder beside the video's folder (the `videos/` + `fixations/` layout of a benchmark directory, as
    `dataset synthetic` writes it); InputError when neither has one."""
    cands = fixation_csv_candidates(video)
    if cands:
        return cands[0]
    shared = video.parent.parent / "fixations"
    if shared.is_dir() and shared != video.parent:
        cands = fixation_csv_candidates(video, shared)
        if cands:
            return cands[0]
    others = [p for p in sorted(video.parent.glob("*.csv")) if _is_fixation_csv(p)]
    raise InputError(
        video,
        "no fixation CSV found beside this video"
        + (f" ({len(others)} fixation CSVs in its folder, none named after it)" if others else ""),
        hint=f"put its fixation CSV beside it (or in a fixations/ folder beside its folder) as "
        f"{video.stem}{FILTERED_SUFFIX} or {video.stem}.csv (columns: "
        + ",".join(FIXATION_CSV_COLUMNS)
        + ", ...); from Python, open_source(video, fixations=PATH)",
    )


class StreamGazeSource(Source):
    """A StreamGaze video + fixation CSV, optionally windowed by time (seconds of the video)."""

    name = "streamgaze"

    def __init__(
        self,
        path: str | Path,
        fixations: str | Path | None = None,
        window: tuple[float, float] | None = None,
        start_ns: int = DEFAULT_START_NS,
        gaze_hz: float | None = None,
        **_ignored,
    ):
        p = Path(path)
        if p.is_dir():
            vids = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            if len(vids) != 1:
                raise InputError(p, f"expected one video in a StreamGaze item folder, found {len(vids)}")
            p = vids[0]
        self.video_path = p
        self._notices: list[Notice] = []
        self.fixation_csv = Path(fixations) if fixations is not None else find_fixation_csv(p)
        if fixations is None:
            left = [c.name for c in fixation_csv_candidates(p)[1:]]
            if left:
                self._notices.append(
                    Notice(
                        int(start_ns),
                        "file_choice",
                        f"fixations from {self.fixation_csv.name} (also found {', '.join(left)}: GazeQwen reads the "
                        "filtered file)",
                        "info",
                    )
                )
        if window is not None:
            a, b = float(window[0]), float(window[1])
            if not (math.isfinite(a) and math.isfinite(b)) or b < a or a < 0:
                raise InputError(None, f"window must be (start_s, end_s) with 0 <= start_s <= end_s, got {window}")
            window = (a, b)
        self.window = window
        self._start = int(start_ns)
        self.gaze_hz = gaze_hz
        info = probe_video(p, count=False)
        self._size = (info.width, info.height)
        self._rate = info.fps or 30.0
        self._fix  # noqa: B018  fail at open on a bad CSV

    @cached_property
    def video_end_s(self) -> float:
        """Time of the video's last frame, s from its first (demuxed once, not decoded)."""
        info = probe_video(self.video_path)
        if info.last_frame_s is None:
            raise InputError(self.video_path, "has no video frames")
        return float(info.last_frame_s)

    @cached_property
    def _fix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(start s, end s, centre x, centre y normalised) of the usable fixations, in order of their end."""
        cx, cy, s, e = read_fixation_csv(self.fixation_csv).T
        off = (cx < 0) | (cx > 1) | (cy < 0) | (cy > 1)
        if off.any():
            self._notices.append(
                Notice(
                    self._ns(float(s[off][0])),
                    "off_frame",
                    f"{self.fixation_csv.name}: {int(off.sum())} of {len(cx)} fixation centres lie outside the frame "
                    "([0, 1]): kept (gaze beyond the image edge)",
                    "warning",
                )
            )
        order = np.argsort(e, kind="stable")
        return s[order], e[order], cx[order], cy[order]

    @cached_property
    def _in_video(self) -> np.ndarray:
        """Which fixations (in `_fix` order) end within the video (its last frame shown for one frame period)."""
        _, e, _, _ = self._fix
        end = self.video_end_s + 1.0 / self._rate
        inside = e <= end + 1e-6
        if not inside.all():
            self._notices.append(
                invalid_notice(
                    self._ns(float(e[~inside][0])),
                    self.fixation_csv.name,
                    int((~inside).sum()),
                    len(e),
                    f"fixations end after the video ({end:.2f} s; the CSV belongs to a longer video or the video "
                    "is cut short)",
                )
            )
        return inside

    def _ns(self, t_s: float) -> int:
        return self._start + int(round(t_s * 1e9))

    @property
    def scene_size(self) -> tuple[int, int]:
        return self._size

    @property
    def start_ns(self) -> int:
        return self._ns(self.window[0]) if self.window else self._start

    @property
    def end_ns(self) -> int:
        """The window's end, else the time of the video's last frame (not of the last fixation)."""
        if self.window:
            return self._ns(self.window[1])
        return self._ns(self.video_end_s)

    @cached_property
    def fixations(self) -> list[Fixation]:
        s, e, cx, cy = self._fix
        w, h = self._size
        inside = self._in_video
        out = []
        for a, b, x, y, ok in zip(s.tolist(), e.tolist(), cx.tolist(), cy.tolist(), inside.tolist(), strict=True):
            if not ok or (self.window and not (self.window[0] <= b <= self.window[1])):
                continue
            out.append(Fixation(self._ns(a), self._ns(b), x * w, y * h, "streamgaze"))
        return out

    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)
        streams: list[Iterator[Record]] = []
        if want is None or Notice in want:
            self.fixations  # noqa: B018  (reading them may add notices)
            streams.append(iter(sorted(self._notices, key=lambda n: n.ts_ns)))
        if want is None or SceneFrame in want:
            streams.append(self._frames())
        if want is None or Fixation in want:
            streams.append(iter(self.fixations))
        if self.gaze_hz and (want is None or GazeSample in want):
            streams.append(self._gaze())
        return merge_by_time(streams)

    def _gaze(self) -> Iterator[GazeSample]:
        step = int(round(1e9 / self.gaze_hz))
        for f in self.fixations:
            for t in range(f.start_ns, f.end_ns + 1, step):
                yield GazeSample(t, f.x, f.y, True)

    def _frames(self) -> Iterator[SceneFrame]:
        import av

        c = open_video(self.video_path)
        try:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            tb = float(vs.time_base) if vs.time_base else 1.0 / self._rate
            first_pts = None
            if self.window and self.window[0] > 0:
                c.seek(int(self.window[0] / tb), stream=vs, backward=True)
            k = 0
            try:
                for fr in c.decode(vs):
                    if fr.pts is None:
                        t = k / self._rate
                    else:
                        if first_pts is None:
                            first_pts = vs.start_time or 0
                        t = (fr.pts - first_pts) * tb
                    k += 1
                    if self.window:
                        if t < self.window[0] - 1e-6:
                            continue
                        if t > self.window[1] + 1e-6:
                            break
                    idx = int(round(t * self._rate))
                    yield SceneFrame(self._ns(t), fr.to_ndarray(format="rgb24"), idx)
            except av.error.FFmpegError as e:
                raise InputError(self.video_path, f"video decoding failed ({e})") from None
        finally:
            c.close()
