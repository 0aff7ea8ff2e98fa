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
from gazeqwen_edge.device.record import record as record_source
from gazeqwen_edge.device.session import Recorder, SessionSource
from gazeqwen_edge.device.source import SourceWarning
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
import json, sys
from gazeqwen_edge.device import AudioChunk, Blink, Fixation, GazeSample, SceneFrame, SyntheticScene, paced
from gazeqwen_edge.device.session import Recorder
src = SyntheticScene(seed=4, duration_s=30.0, width=128, height=96, audio_rate=8000)
rec = Recorder.for_source(sys.argv[1], src, spec="synthetic:4")
kinds = {GazeSample: "gaze", SceneFrame: "frames", Fixation: "fixations", AudioChunk: "audio"}
handed = dict.fromkeys(["gaze", "frames", "fixations", "audio", "events", "blinks", "timings"], 0)
next_q = src.start_ns
for r in paced(src.records(), speed=1.0):
    rec.write(r)
    handed[kinds[type(r)]] += 1
    if r.ts_ns >= next_q:  # every 0.25 s: a user's question, a blink and a stage timing
        n = handed["events"]
        rec.event("query", f"question {n}, about the red one", ts_ns=r.ts_ns)
        rec.write(Blink(r.ts_ns - 50_000_000, r.ts_ns))
        rec.write_timing("prefill", 0.001 * n, ts_ns=r.ts_ns)
        handed["events"] += 1
        handed["blinks"] += 1
        handed["timings"] += 1
        next_q += 250_000_000
    if isinstance(r, GazeSample) and handed["gaze"] % 10 == 0:
        print(json.dumps(handed), flush=True)  # what the recorder has been handed so far
"""


def test_sigkilled_recorder_keeps_everything_older_than_one_flush_interval(tmp_path):
    """SIGKILL a recording process and check EVERY file it writes: all it was handed more than one flush interval
    (FLUSH_INTERVAL_S, + slack for a busy machine) before the kill is on disk and reads back exactly; the scene video
    additionally loses at most its last fragment (MP4_FRAGMENT_S). The recorder writes through large buffers, so
    this fails when the periodic flush is missing (before: Python's 8 KiB buffers pushed rows out anyway, and
    events, blinks, audio and timings were never checked)."""
    import threading

    from gazeqwen_edge.device._io import MP4_FRAGMENT_S
    from gazeqwen_edge.device.session import FLUSH_INTERVAL_S

    slack_s = 0.5  # scheduling of the flush thread on a loaded 2-core machine
    d = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(d)], stdout=subprocess.PIPE, text=True)
    history: list[tuple[float, dict]] = []  # (when the parent saw it, counts handed to the recorder by then)

    def follow():
        for line in p.stdout:
            history.append((time.monotonic(), json.loads(line)))

    th = threading.Thread(target=follow, daemon=True)
    th.start()
    deadline = time.monotonic() + 40
    while (not history or history[-1][1]["gaze"] < 700) and time.monotonic() < deadline:  # >= 3.5 s recorded
        time.sleep(0.05)
    t_kill = time.monotonic()
    p.send_signal(signal.SIGKILL)
    p.wait()
    th.join(5)
    assert history and history[-1][1]["gaze"] >= 700

    def handed_before(seconds: float) -> dict:
        """Counts handed at least `seconds` before the kill (a lower bound: lines reach us after they are written)."""
        old = [c for t, c in history if t <= t_kill - seconds]
        return old[-1] if old else dict.fromkeys(history[0][1], 0)

    must = handed_before(FLUSH_INTERVAL_S + slack_s)
    must_frames = handed_before(FLUSH_INTERVAL_S + MP4_FRAGMENT_S + slack_s)["frames"]
    assert must["gaze"] >= 300 and must["events"] >= 4  # the check below is not empty

    m = json.loads((d / "session.json").read_text())
    assert m["state"] == "recording" and m["format"] == "gazeqwen-edge session"
    assert json.loads((d / "info.json").read_text())["recording_id"] == m["recording_id"]
    s = open_source(d)
    back = list(s.records())
    ref = SyntheticScene(seed=4, duration_s=30.0, width=128, height=96, audio_rate=8000)
    gaze = _by_type(back, GazeSample)
    ts, x, _ = ref.gaze_arrays()
    assert len(gaze) >= must["gaze"], (len(gaze), must)
    assert [g.ts_ns for g in gaze] == ts[: len(gaze)].tolist() and [g.x for g in gaze] == x[: len(gaze)].tolist()
    queries = [e for e in _by_type(back, Event) if e.name == "query"]
    assert len(queries) >= must["events"], (len(queries), must)
    assert [q.data for q in queries] == [f"question {n}, about the red one" for n in range(len(queries))]
    assert len(_by_type(back, Blink)) >= must["blinks"]
    assert len(s.timings) >= must["timings"] and [t[1] for t in s.timings] == ["prefill"] * len(s.timings)
    fix = _by_type(back, Fixation)
    assert len(fix) >= must["fixations"] and fix == ref.fixations[: len(fix)]
    audio = _by_type(back, AudioChunk)
    assert len(audio) >= must["audio"], (len(audio), must)
    ref_audio = [a for a in ref.records({AudioChunk})][: len(audio)]
    np.testing.assert_allclose(audio[-1].pcm, ref_audio[-1].pcm, atol=1 / 32767)
    frames = _by_type(back, SceneFrame)
    assert len(frames) >= must_frames, (len(frames), must_frames)
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


def test_backwards_time_is_resorted_with_a_notice_in_every_reader(tmp_path, neon_recording_dir):
    """One policy for timestamps that go backwards (source.py): re-sorted, and a Notice says so. Before: the Neon
    reader re-sorted without a word and the Cloud reader refused the same data ('go backwards')."""
    import shutil

    with Recorder(tmp_path / "s") as r:
        for t in (10, 20, 15, 30):
            r.write(GazeSample(t, float(t), 0.0))
    for reader, level in ((SessionSource, "info"), (CloudExportSource, "warning")):
        s = reader(tmp_path / "s")
        assert [g.ts_ns for g in s.records({GazeSample})] == [10, 15, 20, 30]
        notes = [n for n in s.records({Notice}) if n.kind == "reordered"]
        assert len(notes) == 1 and "1 timestamp(s) go backwards" in notes[0].message and notes[0].level == level
    d = tmp_path / "neon"
    shutil.copytree(neon_recording_dir, d)
    (d / "gaze_200hz.time").chmod(0o644)
    t = np.fromfile(d / "gaze_200hz.time", "<i8")
    t[[100, 101]] = t[[101, 100]]
    t.tofile(d / "gaze_200hz.time")
    with open_source(d) as s:
        ts, _, _ = s.gaze_arrays()
        assert np.all(np.diff(ts) >= 0) and len(ts) == 1788
        notes = [n for n in s.records({Notice}) if n.kind == "reordered"]
    assert len(notes) == 1 and "gaze_200hz.raw: 1 timestamp(s) go backwards" in notes[0].message


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


# ----------------------------------------------------------------------------------------------------- overwrite
def _snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_overwrite_refuses_the_session_being_read(tmp_path, capsys):
    """`record S S --overwrite` (also through a symlink) must not wipe S. Before: gaze.csv emptied, scene.mp4
    deleted, then the (now empty) source recorded into itself."""
    from gazeqwen_edge.cli import main

    s = tmp_path / "s"
    record_source(SyntheticScene(seed=3, duration_s=1.0, width=64, height=48), s)
    before = _snapshot(s)
    (tmp_path / "link").symlink_to(s)
    for src, out in ((s, s), (tmp_path / "link", s), (s, tmp_path / "link")):
        assert main(["record", str(src), str(out), "--overwrite"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "is being read as the source" in err and "Traceback" not in err
        assert _snapshot(s) == before


def test_overwrite_refuses_what_is_not_our_session(tmp_path, neon_recording_dir, capsys):
    """`--overwrite` replaces only a session of ours. Before: a Neon recording given as OUT lost its info.json
    (replaced by ours) and a folder with session.json of another format was overwritten too."""
    import shutil

    from gazeqwen_edge.cli import main

    neon = tmp_path / "neon"
    shutil.copytree(neon_recording_dir, neon)
    before = _snapshot(neon)
    assert main(["record", "synthetic:1", str(neon), "--overwrite", "--synthetic-duration", "0.5"]) == 2
    assert "not a session written by gazeqwen-edge" in " ".join(capsys.readouterr().err.split())
    assert _snapshot(neon) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "session.json").write_text('{"format": "someone else"}')
    with pytest.raises(InputError, match="not a session written by gazeqwen-edge"):
        Recorder(other, overwrite=True)


def test_overwrite_replaces_our_own_session(tmp_path):
    s = tmp_path / "s"
    record_source(SyntheticScene(seed=3, duration_s=1.0, width=64, height=48), s)
    (s / "notes.txt").write_text("mine")  # not a session file: kept
    # what a streaming session adds (run, replay): the questions and alerts of the old recording, not the new one
    (s / "answers.jsonl").write_text('{"id": 1}\n')
    (s / "alerts.jsonl").write_text('{"watch_id": 1}\n')
    record_source(SyntheticScene(seed=5, duration_s=0.5, width=64, height=48), s, kinds={GazeSample}, overwrite=True)
    back = SessionSource(s)
    assert back.closed and len(back.gaze_arrays()[0]) == 100 and not (s / "scene.mp4").exists()
    assert (s / "notes.txt").read_text() == "mine"
    assert not (s / "answers.jsonl").exists() and not (s / "alerts.jsonl").exists()


class _Failing(SyntheticScene):
    """A synthetic scene whose records() raises after `after` records (0: at once)."""

    def __init__(self, after: int, **kw):
        super().__init__(**kw)
        self.after = after

    def records(self, kinds=None):
        for i, r in enumerate(super().records(kinds)):
            if i >= self.after:
                raise InputError(None, "the source failed", hint="check the\nsource")
            yield r


def test_failed_record_leaves_no_empty_closed_session(tmp_path):
    """A recording whose source fails at once leaves nothing (and an old session that --overwrite would replace is
    intact); one that fails later keeps what it recorded, marked failed. Before: an empty session marked 'closed'
    (and with --overwrite the old session already deleted)."""
    kw = dict(duration_s=1.0, width=64, height=48)
    with pytest.raises(InputError, match="the source failed"):
        record_source(_Failing(0, **kw), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    record_source(SyntheticScene(seed=2, **kw), old)
    before = _snapshot(old)
    with pytest.raises(InputError):
        record_source(_Failing(0, **kw), old, overwrite=True)
    assert _snapshot(old) == before
    with pytest.raises(InputError):
        record_source(_Failing(50, **kw), tmp_path / "late")
    m = json.loads((tmp_path / "late" / "session.json").read_text())
    # the error's message on one line, not its hint (a "hint:" line inside inspect's notice, before)
    assert m["state"] == "failed" and m["error"] == "InputError: the source failed", m["error"]
    back = SessionSource(tmp_path / "late")
    assert len(back.gaze_arrays()[0]) > 30
    assert [n.kind for n in back.records({Notice})] == ["failed"]


def test_cli_record_of_a_failing_source_leaves_no_session(tmp_path, capsys):
    """The same through `record`: a Cloud export whose video is broken fails at once (frames asked for)."""
    from gazeqwen_edge.cli import main

    _write_cloud_export(tmp_path / "export")
    (tmp_path / "export" / "2025-01-01_rec-1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    old = tmp_path / "old"
    record_source(SyntheticScene(seed=2, duration_s=0.5, width=64, height=48), old)
    before = _snapshot(old)
    with pytest.warns(SourceWarning, match="not a readable video"):  # the scene size is taken without the video
        assert main(["record", str(tmp_path / "export"), str(tmp_path / "out")]) == 2
        assert main(["record", str(tmp_path / "export"), str(old), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "not a readable video" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and _snapshot(old) == before
