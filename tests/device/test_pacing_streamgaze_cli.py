"""Replay pacing, StreamGaze items, and the record/inspect commands."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gazeqwen_edge.cli import main
from gazeqwen_edge.device import Fixation, GazeSample, ReplayClock, SceneFrame, SyntheticScene, open_source, paced
from gazeqwen_edge.device._io import Mp4Writer
from gazeqwen_edge.device.streamgaze import StreamGazeSource
from gazeqwen_edge.errors import InputError


class FakeClock:
    def __init__(self):
        self.t = 100.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def _gaze(ts):
    return [GazeSample(t, 0.0, 0.0) for t in ts]


@pytest.mark.parametrize("speed", [1.0, 2.0, 0.5])
def test_paced_maps_recording_time_to_wall_clock(speed):
    clk = FakeClock()
    ts = [10**18 + k * 250_000_000 for k in range(5)]  # every 0.25 s
    delivered = []
    for r in paced(_gaze(ts), speed=speed, clock=clk, sleep=clk.sleep):
        delivered.append((r.ts_ns, clk.t))
    for ts_ns, wall in delivered:
        assert wall == pytest.approx(100.0 + (ts_ns - ts[0]) / 1e9 / speed)


def test_paced_as_fast_as_possible_and_slow_consumer():
    clk = FakeClock()
    out = list(paced(_gaze([0, 10**9, 2 * 10**9]), speed=None, clock=clk, sleep=clk.sleep))
    assert len(out) == 3 and clk.sleeps == []
    assert list(paced(_gaze([0, 10**9]), speed=0, clock=clk, sleep=clk.sleep)) and clk.sleeps == []
    # a consumer that falls behind is not made to wait more: no sleep once the wall clock is past a record's time
    clk = FakeClock()
    it = paced(_gaze([0, 10**9, 2 * 10**9]), speed=1.0, clock=clk, sleep=clk.sleep)
    next(it)
    clk.t += 5.0  # the consumer took 5 s
    next(it)
    next(it)
    assert clk.sleeps == []
    rc = ReplayClock(2.0, clock=clk)
    rc.start(1000)
    assert rc.recording_time(clk.t + 1.0) == 1000 + 2 * 10**9
    with pytest.raises(ValueError):
        ReplayClock(-1)


def test_paced_real_time_on_a_real_source():
    recs = list(SyntheticScene(seed=0, duration_s=0.4, width=64, height=48).records({GazeSample}))
    for speed in (1.0, 4.0):
        t0 = time.monotonic()
        late = []
        for r in paced(recs, speed=speed):
            due = (r.ts_ns - recs[0].ts_ns) / 1e9 / speed
            late.append(time.monotonic() - t0 - due)
        assert min(late) > -0.002  # never early (sleep granularity aside)
        # on time: the median record within 20 ms of its due time (robust to a busy machine's occasional stall)
        assert float(np.median(late)) < 0.02, (speed, float(np.median(late)))


# ----------------------------------------------------------------------------------------------------- StreamGaze
HEADER = (
    "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,duration_seconds"
)


def _item(d, n_frames=60, fps=30):
    d.mkdir()
    w = Mp4Writer(d / "P01_clip.mp4", 128, 96, fps)
    for _ in range(n_frames):
        w.write(np.zeros((96, 128, 3), np.uint8))
    w.close()
    rows = [HEADER]
    for k in range(4):
        s = 0.4 * k
        rows.append(f"00:00,00:01,{0.2 + 0.1 * k},{0.5},{0.3},{s},{s + 0.3},{k},{0.3}")
    (d / "P01_clip_fixation.csv").write_text("\n".join(rows) + "\n")
    return d


def test_streamgaze_item_and_window(tmp_path):
    d = _item(tmp_path / "sg")
    s = open_source(d / "P01_clip.mp4", start_ns=0)
    assert isinstance(s, StreamGazeSource) and s.fixation_csv.name == "P01_clip_fixation.csv"
    fix = list(s.records({Fixation}))
    assert [(f.start_ns, f.end_ns) for f in fix] == [
        (int(round(0.4 * k * 1e9)), int(round((0.4 * k + 0.3) * 1e9))) for k in range(4)
    ]
    assert fix[1].x == pytest.approx(0.3 * 128) and fix[1].y == pytest.approx(0.5 * 96)
    frames = list(s.records({SceneFrame}))
    assert len(frames) == 60 and frames[30].ts_ns == pytest.approx(1e9, abs=1e6)
    w = open_source(d, window=(0.5, 1.0), start_ns=0, gaze_hz=100)
    recs = list(w.records())
    fr = [r for r in recs if isinstance(r, SceneFrame)]
    assert fr[0].ts_ns >= 0.5e9 - 1e6 and fr[-1].ts_ns <= 1.0e9 + 1e6 and len(fr) == 16
    fx = [r for r in recs if isinstance(r, Fixation)]
    assert [round(f.end_ns / 1e9, 3) for f in fx] == [0.7]  # only the fixation that ends inside the window
    g = [r for r in recs if isinstance(r, GazeSample)]
    assert len(g) == 31 and all(r.x == fx[0].x for r in g)


def test_streamgaze_bad_inputs(tmp_path):
    d = _item(tmp_path / "sg")
    (d / "P01_clip_fixation.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="no fixation CSV"):
        open_source(d / "P01_clip.mp4")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n00,00,0.5,0.5,1,2.0,1.0,0,1\n")
    with pytest.raises(InputError, match="ends before it starts") as e:
        StreamGazeSource(d / "P01_clip.mp4", fixations=bad)
    assert e.value.path == str(bad)
    with pytest.raises(InputError, match="window"):
        StreamGazeSource(d / "P01_clip.mp4", fixations=bad, window=(3, 1))


# ----------------------------------------------------------------------------------------------------- CLI
def test_cli_record_and_inspect(tmp_path, capsys):
    out = tmp_path / "sess"
    rc = main(["record", "synthetic:5", str(out), "--synthetic-duration", "2", "--size", "96x64", "--duration", "1.5"])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    s = open_source(out)
    ts, _, _ = s.gaze_arrays()
    ref = SyntheticScene(seed=5, duration_s=2, width=96, height=64)
    assert ts.tolist() == ref.gaze_ts_ns[ref.gaze_ts_ns - ref.start_ns <= 1.5e9].tolist()
    rc = main(["inspect", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "SessionSource" and summary["streams"]["gaze"]["count"] == len(ts)
    assert summary["streams"]["gaze"]["rate_hz"] == pytest.approx(200, rel=1e-3)
    assert summary["scene_size"] == [96, 64]
    assert summary["objects"] is None  # a recording knows no objects
    assert main(["inspect", "synthetic:1"]) == 0
    assert "200.0 Hz" in capsys.readouterr().out


def test_the_cli_opens_a_synthetic_scene_as_the_benchmark_draws_it_and_inspect_names_its_objects(
    capsys, monkeypatch, tmp_path
):
    """Before: `replay synthetic:3` drew the objects at the device layer's default size, 1/2.5 of what the demo model
    was trained on (a new user's watch on one never fired), and `inspect` did not say which objects a scene holds."""
    import gazeqwen_edge.device as device
    from gazeqwen_edge.device.synthetic import BENCHMARK_OBJECT_SCALE

    assert main(["inspect", "synthetic:3", "--json"]) == 0
    objects = json.loads(capsys.readouterr().out)["objects"]
    scene = SyntheticScene(seed=3, object_scale=BENCHMARK_OBJECT_SCALE)
    first: dict[str, int] = {}
    for start_ns, _, name in scene.looked_at:
        first[name] = min(first.get(name, start_ns), start_ns)
    assert [o["name"] for o in objects] == [o.name for o in scene.objects]
    want = [None if o.name not in first else round((first[o.name] - scene.start_ns) / 1e9, 3) for o in scene.objects]
    assert [o["first_looked_at_s"] for o in objects] == want
    assert SyntheticScene(seed=3).looked_at != scene.looked_at  # the size matters: the check tells the two apart
    assert main(["inspect", "synthetic:3"]) == 0
    o = scene.objects[0].name
    assert f"objects: {o} (first looked at {want[0]:.1f} s)" in capsys.readouterr().out

    opened: list[dict] = []
    real = device.open_source
    monkeypatch.setattr(device, "open_source", lambda spec, **kw: opened.append(kw) or real(spec, **kw))
    (tmp_path / "q.jsonl").write_text("not json\n")  # refused after the source is open, before the model loads
    rc = main(["replay", "synthetic:3", "--questions", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "r")])
    assert rc == 2 and opened == [{"object_scale": BENCHMARK_OBJECT_SCALE}]


def test_cli_inspect_neon(neon_recording_dir, capsys):
    assert main(["inspect", str(neon_recording_dir)]) == 0
    out = capsys.readouterr().out
    assert "1788" in out and "27.24" in out and "gaze-only" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["inspect", "{tmp}/missing"], "does not exist"),
        (["inspect", "bogus://x"], "unknown source"),
        (["record", "synthetic", "{tmp}/notempty"], "not empty"),
        (["record", "synthetic", "{tmp}/o", "--streams", "gaze,smell"], "unknown stream 'smell'"),
        (["inspect", "{tmp}/trunc"], "has 2000 timestamps but gaze ps1.raw has 1 samples"),
        # column names in brackets reach the user (not eaten as rich markup)
        (["inspect", "{tmp}/cloud"], "missing column(s) 'timestamp [ns]', 'gaze x [px]', 'gaze y [px]'"),
        (["record", "synthetic", "{tmp}/o", "--speed", "-1"], "--speed"),
        (["record", "synthetic", "{tmp}/o", "--duration", "-1"], "--duration must be a positive"),
        (["run", "--address", "127.0.0.1", "--port", "99999"], "--port"),
        (["run", "--device", "neon://127.0.0.1:70000"], "not between 1 and 65535"),
        (["run", "--address", "127.0.0.1", "--streams", ","], "no Neon stream chosen"),
        (["inspect", "synthetic", "--seconds", "-1"], "--seconds"),
        (["simulate", "synthetic", "--stall", "gaze:x:1"], "--stall 'gaze:x:1'"),
    ],
)
def test_cli_errors_exit_non_zero_without_traceback(tmp_path, capsys, argv, match):
    (tmp_path / "notempty").mkdir()
    (tmp_path / "notempty" / "f").write_text("x")
    t = tmp_path / "trunc"
    t.mkdir()
    (t / "info.json").write_text(json.dumps({"start_time": 1, "duration": 2}))
    (t / "gaze ps1.raw").write_bytes(b"\0" * 13)
    (t / "gaze ps1.time").write_bytes(b"\0" * 8 * 2000)  # far more than a crash's cut: a mismatch
    c = tmp_path / "cloud"
    c.mkdir()
    (c / "gaze.csv").write_text("ts,x,y\n1,2,3\n")
    (c / "world_timestamps.csv").write_text("section id,recording id,timestamp [ns]\na,b,1\n")
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0
    assert match in " ".join(err.split())  # rich wraps long lines
    assert "Traceback" not in err


def test_summarize_live_source_samples_a_few_seconds():
    from gazeqwen_edge.device import Source
    from gazeqwen_edge.device.inspect import summarize

    class Endless(Source):
        def records(self, kinds=None):
            k = 0
            while True:
                yield GazeSample(10**18 + k * 5_000_000, 1.0, 2.0)
                k += 1

    s = summarize(Endless(), max_seconds=2.0)
    assert s["streams"]["gaze"]["count"] == 401 and s["streams"]["gaze"]["rate_hz"] == pytest.approx(200)
    assert s["sampled_s"] == 2.0 and s["duration_s"] is None


def test_every_source_has_a_description_for_inspect():
    """inspect printed the class name ("calibration-target: TargetScene"); each source kind now has words."""
    import importlib

    from gazeqwen_edge.device.inspect import KIND_DESCRIPTIONS
    from gazeqwen_edge.device.source import RecordedSource, Source

    for m in ("device.synthetic", "device.cloud_export", "device.neon_native", "device.neon", "device.session",
              "device.streamgaze", "calibration.target_scene"):  # fmt: skip
        importlib.import_module(f"gazeqwen_edge.{m}")
    seen, todo = set(), [Source]
    while todo:
        for c in todo.pop().__subclasses__():
            if c.__module__.startswith("gazeqwen_edge.") and c not in seen:
                seen.add(c)
                todo.append(c)
    names = {c.__name__ for c in seen} - {RecordedSource.__name__}  # (a base, never opened itself)
    assert names - set(KIND_DESCRIPTIONS) == set()
