"""Recorder -> session directory -> SessionSource / CloudExportSource round trips, killed writers, Cloud exports."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device import (
    AudioChunk,
    Blink,
    CameraIntrinsics,
    Event,
    Fixation,
    GazeSample,
    Notice,
    SceneFrame,
    SyntheticScene,
    open_source,
)
from gazeqwen_edge.device._io import Mp4Writer
from gazeqwen_edge.device.cloud_export import CloudExportSource
from gazeqwen_edge.device.session import Recorder, SessionSource, record_source
from gazeqwen_edge.errors import InputError


def _by_type(recs, t):
    return [r for r in recs if isinstance(r, t)]


@pytest.fixture(scope="module")
def scene():
    return SyntheticScene(seed=11, duration_s=4.0, width=160, height=120, audio_rate=8000)


@pytest.fixture(scope="module")
def session_dir(scene, tmp_path_factory):
    d = tmp_path_factory.mktemp("s") / "session"
    record_source(scene, d, spec="synthetic:11")
    return d


def test_round_trip_same_samples(scene, session_dir):
    src = list(scene.records())
    with open_source(session_dir) as s:
        assert isinstance(s, SessionSource) and s.closed
        back = list(s.records())
        assert s.scene_size == scene.scene_size and s.start_ns == scene.start_ns
        np.testing.assert_array_equal(s.intrinsics.camera_matrix, scene.intrinsics.camera_matrix)
    assert _by_type(back, GazeSample) == _by_type(src, GazeSample)  # exact: ts, x, y, worn
    assert _by_type(back, Fixation) == _by_type(src, Fixation)
    fa, fb = _by_type(src, SceneFrame), _by_type(back, SceneFrame)
    assert [f.ts_ns for f in fb] == [f.ts_ns for f in fa] and [f.index for f in fb] == list(range(len(fa)))
    err = [np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() for a, b in zip(fa, fb, strict=True)]
    assert max(err) < 6  # H.264 at default quality
    aa, ab = _by_type(src, AudioChunk), _by_type(back, AudioChunk)
    assert [a.ts_ns for a in ab] == [a.ts_ns for a in aa]
    np.testing.assert_allclose(np.concatenate([a.pcm for a in ab]), np.concatenate([a.pcm for a in aa]), atol=1 / 32767)
    assert [r.ts_ns for r in back] == sorted(r.ts_ns for r in back)


def test_cloud_reader_reads_recorder_output(scene, session_dir):
    c = CloudExportSource(session_dir)
    back = list(c.records())
    assert _by_type(back, GazeSample) == _by_type(list(scene.records({GazeSample})), GazeSample)
    assert [(f.start_ns, f.end_ns, f.x, f.y) for f in _by_type(back, Fixation)] == [
        (f.start_ns, f.end_ns, f.x, f.y) for f in scene.fixations
    ]
    assert len(_by_type(back, SceneFrame)) == scene.n_frames
    # and the files follow the Cloud layout exactly (header lines of REFERENCE.md section 4)
    with open(session_dir / "gaze.csv") as f:
        assert next(csv.reader(f)) == [
            "section id",
            "recording id",
            "timestamp [ns]",
            "gaze x [px]",
            "gaze y [px]",
            "worn",
            "fixation id",
            "blink id",
            "azimuth [deg]",
            "elevation [deg]",
        ]
    with open(session_dir / "world_timestamps.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["section id", "recording id", "timestamp [ns]"] and len(rows) == scene.n_frames + 1


def test_offset_written_like_cloud_and_removed_on_read(tmp_path):
    scene = SyntheticScene(seed=2, duration_s=1.0, width=160, height=120, gaze_offset=(5.5, -3.25))
    d = tmp_path / "s"
    record_source(scene, d, kinds={GazeSample, Fixation})
    with open(d / "gaze.csv") as f:
        r = list(csv.DictReader(f))
    ts, x, y = scene.gaze_arrays()
    np.testing.assert_allclose([float(v["gaze x [px]"]) for v in r], x + 5.5)  # Cloud: offset applied
    assert json.loads((d / "info.json").read_text())["gaze_offset"] == [5.5, -3.25]
    for reader in (SessionSource, CloudExportSource):
        s = reader(d)
        assert s.gaze_offset == (5.5, -3.25)
        _, bx, by = s.gaze_arrays()
        np.testing.assert_allclose(bx, x, atol=1e-9)
        np.testing.assert_allclose(by, y, atol=1e-9)


def test_events_queries_notices_blinks_timings(tmp_path):
    d = tmp_path / "s"
    t = 1_700_000_000_000_000_000
    with Recorder(d, scene_size=(64, 48), source="test") as rec:
        rec.write(Event(t, "recording.begin"))
        rec.write(GazeSample(t + 1, 1.5, 2.5, False))
        rec.write(Event(t + 10, "query", 'what is "this", the red one?\nsecond line'))
        rec.write(Notice(t + 11, "stalled", "no gaze for 1.2 s, reconnecting", "warning"))
        rec.write(Blink(t + 5, t + 20))
        rec.event("answer", json.dumps({"text": "a red circle", "tokens": 4}), ts_ns=t + 30)
        rec.write_timing("vision", 0.0123, ts_ns=t + 31)
    s = open_source(d)
    back = list(s.records())
    assert _by_type(back, Event) == [
        Event(t, "recording.begin"),
        Event(t + 10, "query", 'what is "this", the red one?\nsecond line'),
        Event(t + 30, "answer", json.dumps({"text": "a red circle", "tokens": 4})),
    ]
    assert _by_type(back, Notice) == [Notice(t + 11, "stalled", "no gaze for 1.2 s, reconnecting", "warning")]
    assert _by_type(back, Blink) == [Blink(t + 5, t + 20)]
    assert _by_type(back, GazeSample) == [GazeSample(t + 1, 1.5, 2.5, False)]
    assert s.timings == [(t + 31, "vision", pytest.approx(12.3))]
    m = json.loads((d / "session.json").read_text())
    assert m["state"] == "closed" and m["start_ns"] == t and m["end_ns"] == t + 31 - 1
    assert not s.has_scene_video and SceneFrame not in {type(r) for r in back}


KILL_SCRIPT = r"""
import sys
from gazeqwen_edge.device import GazeSample, SyntheticScene, paced
from gazeqwen_edge.device.session import Recorder
src = SyntheticScene(seed=4, duration_s=30.0, width=128, height=96)
rec = Recorder.for_source(sys.argv[1], src, spec="synthetic:4")
n = 0
for r in paced(src.records(), speed=1.0):
    rec.write(r)
    if isinstance(r, GazeSample):
        n += 1
        if n % 20 == 0:
            print(n, flush=True)  # gaze samples handed to the recorder so far
"""


def test_killed_recorder_loses_at_most_last_second(tmp_path):
    import threading

    d = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(d)], stdout=subprocess.PIPE, text=True)
    handed = [0]

    def follow():
        for line in p.stdout:
            handed[0] = int(line)

    th = threading.Thread(target=follow, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while handed[0] < 500 and time.monotonic() < deadline:  # >= 2.5 s of recording written
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    th.join(5)
    assert handed[0] >= 500
    assert json.loads((d / "session.json").read_text())["state"] == "recording"
    s = open_source(d)
    back = list(s.records())
    gaze = _by_type(back, GazeSample)
    ref = SyntheticScene(seed=4, duration_s=30.0, width=128, height=96)
    ts, x, _ = ref.gaze_arrays()
    # what was written is exact, and at most ~1 s (200 samples) short of what the writer had been handed
    assert [g.ts_ns for g in gaze] == ts[: len(gaze)].tolist()
    assert [g.x for g in gaze] == x[: len(gaze)].tolist()
    assert len(gaze) >= handed[0] - 200, (len(gaze), handed[0])
    frames = _by_type(back, SceneFrame)
    assert len(frames) >= 30  # the fragmented mp4 is readable up to about its last frame
    assert [f.ts_ns for f in frames] == ref.frame_ts_ns[: len(frames)].tolist()
    assert any(isinstance(r, Notice) and r.kind == "incomplete" for r in back)


def _write_cloud_export(d: Path, n_frames: int = 20, offset=(10.0, -4.0)) -> dict:
    """A small Cloud export written with the csv module from known arrays."""
    d.mkdir()
    rid, t0 = "rec-1", 1_760_000_000_000_000_000
    gts = t0 + np.arange(100) * 5_000_000
    gx, gy = np.linspace(100, 200, 100), np.linspace(50, 80, 100)
    with open(d / "gaze.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["section id", "recording id", "timestamp [ns]", "gaze x [px]", "gaze y [px]", "worn", "fixation id"]
            + ["blink id", "azimuth [deg]", "elevation [deg]"]
        )
        for i in range(100):
            w.writerow(["s", rid, gts[i], gx[i], gy[i], "True" if i % 10 else "False", "", "", 1.0, 2.0])
    with open(d / "fixations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["section id", "recording id", "fixation id", "start timestamp [ns]", "end timestamp [ns]", "duration [ms]"]
            + ["fixation x [px]", "fixation y [px]", "azimuth [deg]", "elevation [deg]"]
        )
        w.writerow(["s", rid, 1, gts[10], gts[40], 150, 120.5, 60.25, 0, 0])
    with open(d / "blinks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["section id", "recording id", "blink id", "start timestamp [ns]", "end timestamp [ns]", "duration [ms]"]
        )
        w.writerow(["s", rid, 1, gts[50], gts[60], 50])
    with open(d / "events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["recording id", "timestamp [ns]", "name", "type"])
        w.writerow([rid, t0, "recording.begin", "recording"])
        w.writerow([rid, gts[70], "looked at the cup", "cloud"])
    fts = t0 + np.arange(n_frames) * 33_333_333
    with open(d / "world_timestamps.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section id", "recording id", "timestamp [ns]"])
        for t in fts:
            w.writerow(["s", rid, t])
    v = Mp4Writer(d / "2025-01-01_rec-1.mp4", 96, 64, 30)
    for _ in range(n_frames):
        v.write(np.zeros((64, 96, 3), np.uint8))
    v.close()
    k = [[500.0, 0, 48], [0, 500.0, 32], [0, 0, 1]]
    (d / "scene_camera.json").write_text(  # the field names of Pupil Cloud's export documentation
        json.dumps({"camera_matrix": k, "dist_coefs": [[0.1] * 8], "serial_number": "abc123", "version": 1})
    )
    (d / "info.json").write_text(json.dumps({"start_time": t0, "duration": 10**9, "gaze_offset": list(offset)}))
    return {"gts": gts, "gx": gx, "gy": gy, "fts": fts, "k": k, "offset": offset}


def test_cloud_export_reader(tmp_path):
    ref = _write_cloud_export(tmp_path / "export")
    with open_source(tmp_path / "export") as s:
        assert isinstance(s, CloudExportSource)
        recs = list(s.records())
        assert s.scene_size == (96, 64)
        np.testing.assert_array_equal(s.intrinsics.camera_matrix, ref["k"])
        np.testing.assert_array_equal(s.intrinsics.dist_coeffs, [0.1] * 8)
        assert s.intrinsics.extra["serial_number"] == "abc123"
        assert s.gaze_offset == ref["offset"]
    gaze = _by_type(recs, GazeSample)
    np.testing.assert_array_equal([g.ts_ns for g in gaze], ref["gts"])
    np.testing.assert_allclose([g.x for g in gaze], ref["gx"] - 10.0)
    np.testing.assert_allclose([g.y for g in gaze], ref["gy"] + 4.0)
    assert [g.worn for g in gaze] == [bool(i % 10) for i in range(100)]
    assert _by_type(recs, Fixation) == [Fixation(int(ref["gts"][10]), int(ref["gts"][40]), 110.5, 64.25, "device")]
    assert _by_type(recs, Blink) == [Blink(int(ref["gts"][50]), int(ref["gts"][60]))]
    assert [e.name for e in _by_type(recs, Event)] == ["recording.begin", "looked at the cup"]
    np.testing.assert_array_equal([f.ts_ns for f in _by_type(recs, SceneFrame)], ref["fts"])


@pytest.mark.parametrize(
    "name, mutate, match",
    [
        ("gaze.csv", lambda t: t.replace("gaze x [px]", "x"), "wrong CSV header: missing column"),
        ("gaze.csv", lambda t: t.replace("100.0", "abc", 1), "line 2: column 'gaze x \\[px\\]': 'abc' is not a number"),
        ("fixations.csv", lambda t: t.replace("end timestamp [ns]", "end"), "missing column"),
        ("world_timestamps.csv", lambda t: "", "is empty"),
        ("gaze.csv", lambda t: t + "s,rec-1,5\n", "expected 10 fields, found 3"),
        ("world_timestamps.csv", lambda t: t + "s,rec-1,1\n", "go backwards"),
    ],
)
def test_cloud_export_bad_csv(tmp_path, name, mutate, match):
    _write_cloud_export(tmp_path / "export")
    p = tmp_path / "export" / name
    p.write_text(mutate(p.read_text()))
    with pytest.raises(InputError, match=match) as e:
        s = open_source(tmp_path / "export")
        list(s.records())
    assert e.value.path.endswith(name)


def test_cloud_export_bad_video(tmp_path):
    _write_cloud_export(tmp_path / "a")
    (tmp_path / "a" / "2025-01-01_rec-1.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="video file is empty"):
        list(open_source(tmp_path / "a").records())
    _write_cloud_export(tmp_path / "b", n_frames=10)
    ts = tmp_path / "b" / "world_timestamps.csv"
    ts.write_text(ts.read_text() + "".join(f"s,rec-1,{1_760_000_001_000_000_000 + i}\n" for i in range(5)))
    with pytest.raises(InputError, match="has 10 frames but world_timestamps.csv lists 15"):
        list(open_source(tmp_path / "b").records())
    _write_cloud_export(tmp_path / "c")
    (tmp_path / "c" / "2025-01-01_rec-1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(InputError, match="not a readable video"):
        list(open_source(tmp_path / "c").records())
    _write_cloud_export(tmp_path / "d")
    (tmp_path / "d" / "world_timestamps.csv").unlink()
    with pytest.raises(InputError, match="not a complete Pupil Cloud export"):
        open_source(tmp_path / "d")


def test_recorder_refuses_non_empty_dir(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        Recorder(tmp_path / "x")


def test_recorder_carries_intrinsics(tmp_path):
    k = CameraIntrinsics(np.array([[1.0, 0, 2], [0, 3, 4], [0, 0, 1]]), np.arange(8) / 10, 64, 48)
    with Recorder(tmp_path / "s", scene_size=(64, 48), intrinsics=k) as r:
        r.write(GazeSample(1, 2.0, 3.0))
    s = open_source(tmp_path / "s")
    np.testing.assert_array_equal(s.intrinsics.camera_matrix, k.camera_matrix)
    np.testing.assert_array_equal(s.intrinsics.dist_coeffs, k.dist_coeffs)


def test_fixations_and_frames_addressable_by_time(scene, session_dir):
    s = SessionSource(session_dir)
    f = scene.fixations[len(scene.fixations) // 2]
    assert f in s.fixations_between(f.start_ns + 1, f.start_ns + 2)
    assert all(g.end_ns >= f.start_ns and g.start_ns <= f.end_ns for g in s.fixations_between(f.start_ns, f.end_ns))
    mid = (f.start_ns + f.end_ns) // 2
    fr = s.frame_at(mid)
    ref = scene.frame_at(mid)
    assert fr.index == ref.index and fr.ts_ns == ref.ts_ns <= mid
    assert np.abs(fr.rgb.astype(int) - ref.rgb.astype(int)).mean() < 6
    # random access agrees with sequential decoding, also backwards and across keyframes
    seq = {r.index: r.rgb for r in s.records({SceneFrame})}
    for k in (len(seq) - 1, 45, 3, 31, 0):
        np.testing.assert_array_equal(s.frame_at(int(s.frame_ts_ns[k])).rgb, seq[k])
    assert s.frame_at(scene.start_ns - 1) is None
    s.close()


def test_session_with_late_gaze_sample_reads_in_time_order(tmp_path):
    with Recorder(tmp_path / "s") as r:
        for t in (10, 20, 15, 30):
            r.write(GazeSample(t, float(t), 0.0))
    assert [g.ts_ns for g in SessionSource(tmp_path / "s").records({GazeSample})] == [10, 15, 20, 30]
    with pytest.raises(InputError, match="go backwards"):
        CloudExportSource(tmp_path / "s")  # a Cloud export must be in order


def test_events_logged_without_a_time_use_the_source_clock(tmp_path):
    """A live Neon's records are on the phone's clock; a query logged 'now' must be on the same clock."""
    from gazeqwen_edge.device import Source

    class PhoneClockSource(Source):
        def records(self, kinds=None):
            return iter(())

        def now_ns(self) -> int:
            return 42_000_000_000

    with Recorder.for_source(tmp_path / "s", PhoneClockSource()) as rec:
        rec.event("query", "what is this?")
        rec.write_timing("prefill", 0.25)
    s = SessionSource(tmp_path / "s")
    ev = [e for e in s.records({Event}) if e.name == "query"]
    assert [e.ts_ns for e in ev] == [42_000_000_000]
    assert s.timings == [(42_000_000_000, "prefill", 250.0)]
