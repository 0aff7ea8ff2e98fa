"""Pupil Cloud "Timeseries + Scene Video" exports (REFERENCE.md section 4): gaze.csv, world_timestamps.csv, the scene
mp4, and when present fixations.csv, blinks.csv, events.csv, scene_camera.json, info.json.

Gaze offset: Pupil Cloud exports gaze and fixations with the wearer offset applied (as the Companion app stores them).
When the export carries info.json with `gaze_offset`, this reader removes it so records follow the package convention
(raw gaze, `Source.gaze_offset` to be ADDED); without info.json the offset is unknown and reported as (0, 0).

Extra columns are ignored, so files written by other tools (and by our `Recorder`, which adds a `data` column to
events.csv and a `source` column to fixations.csv) read the same.
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
)
from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import (
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
WORLD_COLUMNS = ["section id", "recording id", TS]


class CloudExportSource(RecordedSource):
    """A Pupil Cloud Timeseries + Scene Video export directory (also reads our own session directories)."""

    name = "cloud-export"
    tolerant = False  # accept a partly written last line / a video shorter than its timestamps (killed recorder)

    def __init__(self, path: str | Path, **_ignored):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "is not a directory (expected a Pupil Cloud export folder)")
        try:
            self._names = {p.name for p in self.path.iterdir()}
        except OSError as e:
            raise InputError(self.path, f"directory cannot be read ({e.strerror or e})") from e
        for req in ("gaze.csv", "world_timestamps.csv"):
            if req not in self._names:
                raise InputError(self.path / req, "file is missing (required in a Pupil Cloud export)")
        self.info = read_json(self.path / "info.json") if "info.json" in self._names else {}
        self._notices: list[Notice] = []
        self._ra = None
        self._gaze  # noqa: B018  read and check gaze now so a bad file fails at open

    # ------------------------------------------------------------------ files
    def _csv(self, name: str, required: dict, optional: dict | None = None, allow_empty=frozenset()):
        return read_csv_columns(self.path / name, required, optional, self.tolerant, allow_empty)

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
        if self.tolerant and len(ts) > 1 and np.any(np.diff(ts) < 0):
            o = np.argsort(ts, kind="stable")  # a live source may deliver a late sample: keep records in time order
            ts, x, y, worn = ts[o], x[o], y[o], worn[o]
        check_sorted(self.path / "gaze.csv", ts)
        return ts, x, y, worn

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
        out = [
            Fixation(
                int(s), int(e), float(x) - dx, float(y) - dy, str(src[i]) if src is not None and src[i] else "device"
            )
            for i, (s, e, x, y) in enumerate(
                zip(
                    c["start timestamp [ns]"],
                    c["end timestamp [ns]"],
                    c["fixation x [px]"],
                    c["fixation y [px]"],
                    strict=True,
                )
            )
        ]
        out.sort(key=lambda f: f.end_ns)
        return out

    @cached_property
    def blinks(self) -> list[Blink]:
        if "blinks.csv" not in self._names:
            return []
        c = self._csv("blinks.csv", {"start timestamp [ns]": INT, "end timestamp [ns]": INT})
        out = [Blink(int(s), int(e)) for s, e in zip(c["start timestamp [ns]"], c["end timestamp [ns]"], strict=True)]
        out.sort(key=lambda b: b.end_ns)
        return out

    @cached_property
    def events(self) -> list[Record]:
        """Events (and, in our sessions, notices: type 'notice.<level>', name 'notice.<kind>')."""
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
    def frame_ts_ns(self) -> np.ndarray:
        """Timestamps of the frames that can be delivered (world_timestamps.csv matched with the video)."""
        ts = self._csv("world_timestamps.csv", {TS: INT})[TS]
        check_sorted(self.path / "world_timestamps.csv", ts)
        if self.video_path is None:
            if len(ts):
                raise InputError(
                    self.path / "world_timestamps.csv", f"lists {len(ts)} scene frames but there is no .mp4 beside it"
                )
            return ts
        n = self._video_info.n_frames
        if n == 0 and len(ts):
            raise InputError(self.video_path, "has no video frames")
        if n != len(ts):
            if not self.tolerant and abs(n - len(ts)) > 1:
                raise InputError(
                    self.video_path,
                    f"has {n} frames but world_timestamps.csv lists {len(ts)}",
                )
            self._notices.append(
                Notice(
                    int(ts[0]) if len(ts) else (self.start_ns or 0),
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

    @cached_property
    def scene_size(self) -> tuple[int, int] | None:
        if self.video_path is not None:
            return (self._video_info.width, self._video_info.height)
        return None

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
        size = self.scene_size or (int(j.get("width", 1600)), int(j.get("height", 1200)))
        extra = {k2: v for k2, v in j.items() if k2 not in ("camera_matrix", "distortion_coefficients", "dist_coefs")}
        return CameraIntrinsics(k, d, size[0], size[1], extra)

    @property
    def start_ns(self) -> int | None:
        if isinstance(self.info.get("start_time"), int) and self.info["start_time"] > 0:
            return int(self.info["start_time"])
        cands = [int(self._gaze[0][0])] if len(self._gaze[0]) else []
        if self.has_scene_video:
            cands.append(int(self.frame_ts_ns[0]))
        return min(cands) if cands else None

    @property
    def end_ns(self) -> int | None:
        if (
            isinstance(self.info.get("start_time"), int)
            and self.info["start_time"] > 0
            and isinstance(self.info.get("duration"), int)
        ):
            return int(self.info["start_time"]) + int(self.info["duration"])
        cands = [int(self._gaze[0][-1])] if len(self._gaze[0]) else []
        if self.has_scene_video:
            cands.append(int(self.frame_ts_ns[-1]))
        return max(cands) if cands else None

    # ------------------------------------------------------------------ records
    def _extra_streams(self, wanted) -> list[Iterator[Record]]:
        return []

    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)

        def wanted(t: type) -> bool:
            return want is None or t in want

        if want is not None and SceneFrame in want and self.video_path is None:
            raise InputError(self.path, "has no scene video (.mp4): scene frames cannot be delivered")
        streams: list[Iterator[Record]] = []
        if wanted(Event) or wanted(Notice):
            evs = [r for r in self.events if wanted(type(r))]
            streams.append(iter(evs))
        if wanted(GazeSample):
            streams.append(self._gaze_records())
        if wanted(SceneFrame) and self.video_path is not None:
            streams.append(self._frame_records())
        if wanted(Fixation):
            streams.append(iter(self.fixations))
        if wanted(Blink):
            streams.append(iter(self.blinks))
        streams += self._extra_streams(wanted)
        if wanted(Notice):
            if self.video_path is not None:
                self.frame_ts_ns  # noqa: B018  (may add a notice)
            streams.insert(0, iter(sorted(self._notices, key=lambda n: n.ts_ns)))
        return merge_by_time(streams)

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
