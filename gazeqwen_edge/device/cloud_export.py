"""Pupil Cloud "Timeseries + Scene Video" exports (REFERENCE.md section 4): gaze.csv, world_timestamps.csv, the scene
mp4, and when present fixations.csv, blinks.csv, events.csv, imu.csv, scene_camera.json, info.json.

imu.csv (Pupil Labs' "Recording Format" documentation: `gyro x/y/z [deg/s]`, `acceleration x/y/z [g]`, `roll /
pitch / yaw [deg]`, `quaternion w/x/y/z`) becomes `ImuSample` records (the timestamp and gyro columns are required,
the others optional); the IMU policies of source.py apply.

Gaze offset: Pupil Cloud exports gaze and fixations with the wearer offset applied (as the Companion app stores them).
When the export carries info.json with `gaze_offset`, this reader removes it so records follow the package convention
(raw gaze, `Source.gaze_offset` to be ADDED); without info.json the offset is unknown and reported as (0, 0).

Extra columns are ignored, so files written by other tools (and by our `Recorder`, which adds a `data` column to
events.csv and a `source` column to fixations.csv) read the same. Time order, impossible values and gaps follow the
policies in source.py. A scene video that cannot be read does not stop gaze-only work (the scene size then comes from
scene_camera.json / info.json, a `SourceWarning` is issued once); asking for its frames raises its InputError.

A Pupil Cloud *enrichment* download (Marker Mapper, Reference Image Mapper, ...: gaze mapped onto a surface or image,
`enrichment_info.txt`, `sections.csv`, no world_timestamps.csv) is not a recording: it is named as such, with the
download to choose instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from gazeqwen_edge.device._io import (
    BOOL,
    FLOAT,
    INT,
    STR,
    RandomAccessVideo,
    check_sorted,
    info_gaze_offset,
    iter_video_frames,
    probe_video,
    read_csv_columns,
    read_json,
    read_text,
)
from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import (
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
from gazeqwen_edge.errors import InputError

TS = "timestamp [ns]"
GAZE_COLUMNS = [
    "section id",
    "recording id",
    TS,
    "gaze x [px]",
    "gaze y [px]",
    "worn",
    "fixation id",
    "blink id",
    "azimuth [deg]",
    "elevation [deg]",
]
FIXATION_COLUMNS = [
    "section id",
    "recording id",
    "fixation id",
    "start timestamp [ns]",
    "end timestamp [ns]",
    "duration [ms]",
    "fixation x [px]",
    "fixation y [px]",
    "azimuth [deg]",
    "elevation [deg]",
]
BLINK_COLUMNS = [
    "section id",
    "recording id",
    "blink id",
    "start timestamp [ns]",
    "end timestamp [ns]",
    "duration [ms]",
]
EVENT_COLUMNS = ["recording id", TS, "name", "type"]
GYRO_COLUMNS = ["gyro x [deg/s]", "gyro y [deg/s]", "gyro z [deg/s]"]
ACCEL_COLUMNS = ["acceleration x [g]", "acceleration y [g]", "acceleration z [g]"]
QUATERNION_COLUMNS = ["quaternion w", "quaternion x", "quaternion y", "quaternion z"]
IMU_COLUMNS = [
    "section id",
    "recording id",
    TS,
    *GYRO_COLUMNS,
    *ACCEL_COLUMNS,
    "roll [deg]",
    "pitch [deg]",
    "yaw [deg]",
    *QUATERNION_COLUMNS,
]
WORLD_COLUMNS = ["section id", "recording id", TS]
NEON_SCENE_SIZE = (1600, 1200)  # the Neon scene camera (REFERENCE.md section 4)

# What Pupil Cloud enrichment downloads hold instead of a recording (Pupil Labs' export-format documentation: every
# enrichment export has enrichment_info.txt and sections.csv; mapped gaze has columns such as
# "gaze position on surface x [normalized]" (Marker Mapper) or "gaze position in reference image x [px]")
ENRICHMENT_FILES = ("enrichment_info.txt", "sections.csv", "surface_positions.csv", "aoi_fixations.csv")
ENRICHMENT_IMAGE_PREFIX = "reference_image"
ENRICHMENT_GAZE_COLUMN_MARKS = ("on surface", "in reference image", "[normalized]")
TIMESERIES_HINT = (
    "in Pupil Cloud, download the recording itself: Downloads > 'Timeseries Data + Scene Video' (gaze.csv, "
    "world_timestamps.csv, the scene video, ...), or use the Neon's native recording folder"
)


def enrichment_kind(path: Path, names: set[str]) -> str | None:
    """The enrichment a Pupil Cloud download folder holds (e.g. 'Marker Mapper'), 'enrichment' when it is one of
    unknown type, None when it does not look like an enrichment download."""
    header = ""
    if "gaze.csv" in names:
        try:
            with open(path / "gaze.csv", encoding="utf-8-sig", errors="replace") as f:
                header = f.readline().lower()
        except OSError:
            header = ""
    mapped_gaze = any(m in header for m in ENRICHMENT_GAZE_COLUMN_MARKS)
    files = [n for n in names if n in ENRICHMENT_FILES or n.startswith(ENRICHMENT_IMAGE_PREFIX)]
    if not mapped_gaze and not files:
        return None
    if "enrichment_info.txt" in names:
        try:
            first = read_text(path / "enrichment_info.txt").strip().splitlines()
            if first and first[0].strip():
                return first[0].strip()[:60]
        except InputError:
            pass
    if "on surface" in header or "surface_positions.csv" in names:
        return "Marker Mapper"
    if "in reference image" in header or any(n.startswith(ENRICHMENT_IMAGE_PREFIX) for n in names):
        return "Reference Image Mapper"
    return "enrichment"


def not_an_export_error(path: Path, names: set[str]) -> InputError:
    """The InputError for a folder with gaze.csv that is not a complete Timeseries export: an enrichment download is
    named as such, anything else is told which required file is missing."""
    kind = enrichment_kind(path, names)
    if kind is not None:
        what = kind if kind == "enrichment" else f"'{kind}' enrichment"
        return InputError(
            path,
            f"is a Pupil Cloud {what} download (gaze mapped onto a surface or image), not a recording: it has no scene "
            "camera gaze or world_timestamps.csv",
            hint=TIMESERIES_HINT,
        )
    missing = [n for n in ("gaze.csv", "world_timestamps.csv") if n not in names]
    return InputError(
        path / missing[0],
        "file is missing: not a complete Pupil Cloud export (Timeseries Data + Scene Video)",
        hint=TIMESERIES_HINT,
    )


class CloudExportSource(RecordedSource):
    """A Pupil Cloud Timeseries + Scene Video export directory (also reads our own session directories)."""

    name = "cloud-export"
    tolerant = False  # accept a partly written last line / a video shorter than its timestamps (killed recorder)
    reorder_level = "warning"  # level of the Notice for re-sorted timestamps (source.py time-order policy)

    def __init__(self, path: str | Path, **_ignored):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "is not a directory (expected a Pupil Cloud export folder)")
        try:
            self._names = {p.name for p in self.path.iterdir()}
        except OSError as e:
            raise InputError(self.path, f"directory cannot be read ({e.strerror or e})") from e
        if "gaze.csv" not in self._names or "world_timestamps.csv" not in self._names:
            raise not_an_export_error(self.path, self._names)
        if enrichment_kind(self.path, self._names) is not None:  # e.g. an enrichment folder with a copied csv
            raise not_an_export_error(self.path, self._names)
        self.info = read_json(self.path / "info.json") if "info.json" in self._names else {}
        self._notices: list[Notice] = []
        self._ra = None
        self._gaze  # noqa: B018  read and check gaze now so a bad file fails at open

    # ------------------------------------------------------------------ files
    def _csv(self, name: str, required: dict, optional: dict | None = None, allow_empty=frozenset()):
        def dropped(line: int, text: str) -> None:
            self._notices.append(
                Notice(
                    self._first_ns_hint(),
                    "truncated",
                    f"{name}: the last line ({line}) was cut (its writer was stopped mid-line): {text[:60]!r} dropped",
                    "warning",
                )
            )

        return read_csv_columns(self.path / name, required, optional, self.tolerant, allow_empty, dropped)

    def _first_ns_hint(self) -> int:
        """A time to stamp reading notices with before the data is known: info.json's start, else 0."""
        t = self.info.get("start_time")
        return int(t) if isinstance(t, int) and not isinstance(t, bool) and t > 0 else 0

    @cached_property
    def gaze_offset(self) -> tuple[float, float]:
        return info_gaze_offset(self.info, self.path / "info.json")

    @cached_property
    def _gaze(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        c = self._csv(
            "gaze.csv", {TS: INT, "gaze x [px]": FLOAT, "gaze y [px]": FLOAT}, {"worn": BOOL}, allow_empty={"worn"}
        )
        ts = c[TS]
        dx, dy = self.gaze_offset
        x, y = c["gaze x [px]"] - dx, c["gaze y [px]"] - dy
        worn = c.get("worn", np.ones(len(ts), bool))
        self._gaze_rows = len(ts)
        return self._checked_gaze(ts, x, y, worn, "gaze.csv", self._first_ns_hint(), self.reorder_level)

    @cached_property
    def fixations(self) -> list[Fixation]:
        if "fixations.csv" not in self._names:
            return []
        c = self._csv(
            "fixations.csv",
            {
                "start timestamp [ns]": INT,
                "end timestamp [ns]": INT,
                "fixation x [px]": FLOAT,
                "fixation y [px]": FLOAT,
            },
            {"source": STR},
        )
        dx, dy = self.gaze_offset
        src = c.get("source")
        s, e = c["start timestamp [ns]"], c["end timestamp [ns]"]
        x, y = c["fixation x [px]"] - dx, c["fixation y [px]"] - dy
        keep = self._checked_intervals(s, e, x, y, "fixations.csv", "fixations", self.reorder_level)
        return [
            Fixation(
                int(s[i]), int(e[i]), float(x[i]), float(y[i]), str(src[i]) if src is not None and src[i] else "device"
            )
            for i in keep
        ]

    @cached_property
    def blinks(self) -> list[Blink]:
        if "blinks.csv" not in self._names:
            return []
        c = self._csv("blinks.csv", {"start timestamp [ns]": INT, "end timestamp [ns]": INT})
        s, e = c["start timestamp [ns]"], c["end timestamp [ns]"]
        return [
            Blink(int(s[i]), int(e[i]))
            for i in self._checked_intervals(s, e, None, None, "blinks.csv", "blinks", self.reorder_level)
        ]

    @cached_property
    def _imu(self) -> ImuArrays | None:
        """imu.csv as arrays (None without one); raises InputError when it cannot be read."""
        if "imu.csv" not in self._names:
            return None
        optional = dict.fromkeys(ACCEL_COLUMNS + QUATERNION_COLUMNS, FLOAT)
        c = self._csv("imu.csv", {TS: INT, **dict.fromkeys(GYRO_COLUMNS, FLOAT)}, optional, allow_empty=set(optional))

        def block(cols: list[str]) -> np.ndarray | None:
            return np.stack([c[k] for k in cols], 1) if all(k in c for k in cols) else None

        accel, quat = block(ACCEL_COLUMNS), block(QUATERNION_COLUMNS)
        return self._checked_imu(c[TS], block(GYRO_COLUMNS), accel, quat, "imu.csv", self.reorder_level)

    @cached_property
    def events(self) -> list[Record]:
        """Events (and, in our sessions, notices: type 'notice.<level>', name 'notice.<kind>'), sorted by time without
        a notice (events are written in arrival order; see source.py)."""
        if "events.csv" not in self._names:
            return []
        c = self._csv("events.csv", {TS: INT, "name": STR}, {"type": STR, "data": STR})
        out: list[Record] = []
        types = c.get("type")
        data = c.get("data")
        for i, (t, n) in enumerate(zip(c[TS], c["name"], strict=True)):
            typ = str(types[i]) if types is not None else ""
            d = str(data[i]) if data is not None else ""
            if typ.startswith("notice.") and str(n).startswith("notice."):
                out.append(Notice(int(t), str(n)[7:], d, typ[7:] or "warning"))
            else:
                out.append(Event(int(t), str(n), d))
        out.sort(key=lambda r: r.ts_ns)
        return out

    @cached_property
    def video_path(self) -> Path | None:
        mp4s = sorted(n for n in self._names if n.lower().endswith(".mp4"))
        if len(mp4s) > 1:
            raise InputError(self.path, f"has several scene videos ({', '.join(mp4s)}); expected one .mp4")
        return self.path / mp4s[0] if mp4s else None

    @cached_property
    def world_ts_ns(self) -> np.ndarray:
        """world_timestamps.csv: the time of every recorded scene frame (refused when it goes backwards: frames are
        decoded in file order, so re-sorting would stamp frames with other frames' times)."""
        ts = self._csv("world_timestamps.csv", {TS: INT})[TS]
        check_sorted(self.path / "world_timestamps.csv", ts)
        if self.video_path is None and len(ts):
            raise InputError(
                self.path / "world_timestamps.csv", f"lists {len(ts)} scene frames but there is no .mp4 beside it"
            )
        return ts

    @cached_property
    def scene_video_problem(self) -> InputError | None:
        """Why the scene video cannot be read (None when it can, or when there is none)."""
        if self.video_path is None:
            return None
        try:
            info = self._video_info
            self.world_ts_ns  # noqa: B018  (a frame time file that cannot be used is a problem of the video)
        except InputError as e:
            return e
        if info.n_frames == 0 and len(self.world_ts_ns):
            return InputError(self.video_path, "has no video frames")
        return None

    def _video_fallback(self, warn: bool) -> None:
        try:
            size, where = (self._video_info.width, self._video_info.height), "the video's header"
        except InputError:
            size, where = self._size_without_video(), "the export's metadata"
        how = f"scene size {size[0]}x{size[1]} from {where}" if size else "no scene size known"
        self._tell_video_unreadable(self.scene_video_problem, how, self._first_ns_hint(), warn)

    @cached_property
    def frame_ts_ns(self) -> np.ndarray:
        """Timestamps of the frames that can be delivered (world_timestamps.csv matched with the video; none when the
        video is unreadable)."""
        if self.video_path is None:
            return self.world_ts_ns
        if self.scene_video_problem is not None:
            self._video_fallback(warn=False)
            return np.zeros(0, np.int64)
        ts = self.world_ts_ns
        n = self._video_info.n_frames
        if n != len(ts):
            if not self.tolerant and abs(n - len(ts)) > 1:
                raise InputError(
                    self.video_path,
                    f"has {n} frames but world_timestamps.csv lists {len(ts)}",
                )
            self._notices.append(
                Notice(
                    int(ts[0]) if len(ts) else self._first_ns_hint(),
                    "truncated",
                    f"{self.video_path.name} has {n} frames, world_timestamps.csv {len(ts)}: using the first "
                    f"{min(n, len(ts))}",
                    "info",
                )
            )
        return ts[: min(n, len(ts))]

    @cached_property
    def _video_info(self):
        return probe_video(self.video_path)

    @property
    def has_scene_video(self) -> bool:
        return self.video_path is not None and len(self.frame_ts_ns) > 0

    def _size_without_video(self) -> tuple[int, int] | None:
        """The scene size the export's metadata states: scene_camera.json `width`/`height` (our sessions write them),
        info.json `scene_camera` (ours), else the Neon scene camera's when info.json is a Neon recording's."""
        if "scene_camera.json" in self._names:
            j = read_json(self.path / "scene_camera.json")
            if _is_size(j.get("width"), j.get("height")):
                return (int(j["width"]), int(j["height"]))
        sc = self.info.get("scene_camera")
        if isinstance(sc, dict) and _is_size(sc.get("width"), sc.get("height")):
            return (int(sc["width"]), int(sc["height"]))
        if "module_serial_number" in self.info or "data_format_version" in self.info:  # a Neon recording's info.json
            return NEON_SCENE_SIZE
        return None

    @cached_property
    def scene_size(self) -> tuple[int, int] | None:
        """(width, height) px of the scene video, or from the metadata when the video is unreadable (gaze-only)."""
        if self.video_path is None:
            return None
        if self.scene_video_problem is not None:
            self._video_fallback(warn=True)
            try:  # a readable video whose frame times are unusable still knows its size
                return (self._video_info.width, self._video_info.height)
            except InputError:
                return self._size_without_video()
        return (self._video_info.width, self._video_info.height)

    @cached_property
    def intrinsics(self) -> CameraIntrinsics | None:
        if "scene_camera.json" not in self._names:
            return None
        p = self.path / "scene_camera.json"
        j = read_json(p)
        try:
            k = np.array(j["camera_matrix"], dtype=np.float64).reshape(3, 3)
            # Pupil Cloud documents `dist_coefs`; other exports/versions write `distortion_coefficients`
            key = "dist_coefs" if "dist_coefs" in j else "distortion_coefficients"
            d = np.array(j[key], dtype=np.float64).reshape(-1)
        except KeyError as e:
            raise InputError(p, f"has no {e.args[0]!r} (nor 'dist_coefs')") from None
        except (ValueError, TypeError) as e:
            raise InputError(
                p, f"camera_matrix must be 3x3 numbers and distortion_coefficients a list of numbers ({e})"
            ) from None
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(d))):
            raise InputError(p, "camera_matrix / distortion coefficients hold NaN or infinite values")
        size = self.scene_size or self._size_without_video() or NEON_SCENE_SIZE
        extra = {k2: v for k2, v in j.items() if k2 not in ("camera_matrix", "distortion_coefficients", "dist_coefs")}
        return CameraIntrinsics(k, d, size[0], size[1], extra)

    def _data_span(self) -> tuple[int | None, int | None]:
        """(first, last) unix ns over everything recorded: gaze, deliverable frames, fixations, blinks, events, IMU."""
        times: list[int] = []
        ts = self._gaze[0]
        if len(ts):
            times += [int(ts[0]), int(ts[-1])]
        if self.video_path is not None and len(self.frame_ts_ns):
            times += [int(self.frame_ts_ns[0]), int(self.frame_ts_ns[-1])]
        for r in (*self.fixations, *self.blinks):
            times += [r.start_ns, r.end_ns]
        times += [e.ts_ns for e in self.events if isinstance(e, Event)]
        try:
            imu = self._imu
        except InputError:  # unreadable: records() tells (source.py IMU policy); it adds no time here
            imu = None
        if imu is not None and len(imu.ts_ns):
            times += [int(imu.ts_ns[0]), int(imu.ts_ns[-1])]
        return (min(times), max(times)) if times else (None, None)

    @property
    def start_ns(self) -> int | None:
        """info.json's start_time, else the first time in the data."""
        if isinstance(self.info.get("start_time"), int) and self.info["start_time"] > 0:
            return int(self.info["start_time"])
        return self._data_span()[0]

    @property
    def end_ns(self) -> int | None:
        """info.json's start_time + duration, else the last time in the data."""
        if (
            isinstance(self.info.get("start_time"), int)
            and self.info["start_time"] > 0
            and isinstance(self.info.get("duration"), int)
        ):
            return int(self.info["start_time"]) + int(self.info["duration"])
        return self._data_span()[1]

    # ------------------------------------------------------------------ records
    def _extra_streams(self, wanted) -> list[Iterator[Record]]:
        return []

    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)

        def wanted(t: type) -> bool:
            return want is None or t in want

        if want is not None and SceneFrame in want and self.video_path is None:
            raise InputError(self.path, "has no scene video (.mp4): scene frames cannot be delivered")
        if wanted(SceneFrame) and self.scene_video_problem is not None and not self._video_loss_expected():
            raise self.scene_video_problem
        streams: list[Iterator[Record]] = []
        if wanted(Event) or wanted(Notice):
            evs = [r for r in self.events if wanted(type(r))]
            streams.append(iter(evs))
        if wanted(GazeSample):
            streams.append(self._gaze_records())
        if wanted(SceneFrame) and self.has_scene_video:
            streams.append(self._frame_records())
        if wanted(Fixation):
            streams.append(iter(self.fixations))
        if wanted(Blink):
            streams.append(iter(self.blinks))
        if wanted(ImuSample):
            imu = self._imu_stream(explicit=want is not None and ImuSample in want)
            if imu is not None:
                streams.append(imu)
        streams += self._extra_streams(wanted)
        if wanted(Notice):
            for name in ("fixations", "blinks", "frame_ts_ns"):  # reading them may add notices
                getattr(self, name)
            notes = self._notices + gap_notices(self.gaps)
            streams.insert(0, iter(sorted(notes, key=lambda n: n.ts_ns)))
        return merge_by_time(streams)

    def _video_loss_expected(self) -> bool:
        """True when an unreadable video is an expected part of this folder (a session whose writer was killed)."""
        return False

    # ------------------------------------------------------------------ random access by time
    def fixations_between(self, start_ns: int, end_ns: int) -> list[Fixation]:
        """Fixations that overlap [start_ns, end_ns]."""
        return [f for f in self.fixations if f.end_ns >= start_ns and f.start_ns <= end_ns]

    def frame_index_at(self, ts_ns: int) -> int | None:
        """Index of the scene frame shown at ts_ns (the last one at or before it), None before the first frame."""
        ts = self.frame_ts_ns
        k = int(np.searchsorted(ts, ts_ns, side="right")) - 1
        return k if k >= 0 else None

    def frame_at(self, ts_ns: int) -> SceneFrame | None:
        """The scene frame shown at ts_ns, decoded on its own (seek + decode from the previous keyframe)."""
        k = self.frame_index_at(ts_ns)
        if k is None:
            return None
        if self._ra is None:
            self._ra = RandomAccessVideo(self.video_path)
        rgb = self._ra.rgb(k)
        w, h = self.scene_size
        return SceneFrame(int(self.frame_ts_ns[k]), rgb[:h, :w], k)

    def close(self) -> None:
        if self._ra is not None:
            self._ra.close()
            self._ra = None

    def _frame_records(self) -> Iterator[SceneFrame]:
        ts = self.frame_ts_ns.tolist()
        if not ts:
            return
        w, h = self.scene_size
        for i, rgb in enumerate(iter_video_frames(self.video_path, max_frames=len(ts))):
            if rgb.shape[0] != h or rgb.shape[1] != w:
                rgb = rgb[:h, :w]
            yield SceneFrame(ts[i], rgb, i)


def _is_size(w, h) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16384 for v in (w, h))
