"""benchmarks/watch_scenes.py: watches on the CLI's synthetic scenes, judged against the scene's own truth."""

from __future__ import annotations

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def script():
    return load_benchmark("watch_scenes")


def test_seeds(script):
    assert script.parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert script.parse_seeds(" 5 ") == [5]
    for bad in ("", "3-1", "-1", "a", "1-", "1,,2", "0-5000", "99999999999"):
        with pytest.raises(ValueError):
            script.parse_seeds(bad)


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--out", "/proc/no/such"], "--out /proc/no/such cannot be written"),
        (["--out="], "--out is empty"),
        (["--seeds="], "--seeds: not a seed"),
        (["--seeds", "99999999999"], "a scene seed is at most 4294967295"),
    ],
)
def test_bad_arguments_are_refused_before_any_scene_runs(script, capsys, argv, said):
    """Before: an unwritable --out failed with a traceback after the whole run, an empty one wrote into the current
    directory, an empty --seeds ran the default seeds, a seed out of range was a traceback."""
    with pytest.raises(SystemExit) as exited:
        script.main(argv)
    assert exited.value.code == 2 and said in capsys.readouterr().err


def test_each_object_is_a_watch_judged_from_its_first_fixation_and_one_never_fixated_is_a_control(script):
    from gazeqwen_edge.device.synthetic import BENCHMARK_OBJECT_SCALE, SyntheticScene

    scene = SyntheticScene(seed=1, object_scale=BENCHMARK_OBJECT_SCALE)  # its yellow circle is never fixated
    vc = script.scene_cases(scene, "synthetic:1")
    assert vc.video.name == "synthetic:1" and [c.target for c in vc.cases] == [o.name for o in scene.objects]
    first = {}
    for start_ns, _, name in scene.looked_at:  # the reference: the scene's own record of what was looked at
        first[name] = min(first.get(name, start_ns), start_ns)
    controls = [c.target for c in vc.cases if c.control]
    assert controls == [o.name for o in scene.objects if o.name not in first] == ["yellow circle"]
    for c in vc.cases:
        assert c.asked_s == 0.0
        if c.control:
            assert c.first_gaze_s is None and c.points == []
        else:
            assert c.first_gaze_s == pytest.approx((first[c.target] - scene.start_ns) / 1e9)
            assert c.points == [(c.first_gaze_s, True)]
    assert len(vc.fixations) == len(scene.true_fixations)
    assert sum(1 for f in vc.fixations if f[2] is None) == scene.fixation_targets.count(None)


def test_a_short_run_replays_the_scene_itself_through_the_watch_path(script, capsys, tmp_path):
    """The scene is the session's source (replay_video(source=)): without it the video's StreamGazeSource is opened,
    and a scene has no file. --out writes what benchmarks/alert_threshold.py rescores."""
    assert script.main(["--seeds", "1", "--duration", "2", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synthetic:1: blue star ") and "yellow circle " in out
    assert "1 scene of 2 s, model demo, threshold 0.2, fixations detector, checks both, " in out
    checks = [line for line in out.splitlines() if line.startswith("  ") and "checks, yes" in line]
    assert [line.split()[0] for line in checks] == ["target", "other", "background", "none"]
    # 4 watches checked after each of the 2 s scene's chunks
    assert sum(int(line.split()[1]) for line in checks) >= 4

    threshold = load_benchmark("alert_threshold")
    header, records = threshold.read_run(tmp_path / "r")
    assert header["threshold"] == 0.2 and [w["target"] for w in records[0]["watches"]][0] == "blue star"
    assert "| watches | on time (<= 1.5 s) |" in (tmp_path / "r" / "results.md").read_text()
