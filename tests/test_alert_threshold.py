"""benchmarks/alert_threshold.py: a threshold chosen on one eval-alerts run by rescoring its recorded scores, then
reported on another; made-up runs whose best threshold is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_benchmark

HEADER = {"format": "gazeqwen-edge-alerts", "version": 1, "model": "m", "fps": 2.0, "threshold": 0.5, "hold_s": 0.0,
          "rearm_s": 3.0, "delay_s": 1.5, "truth": "generator", "fixations": "detector"}  # fmt: skip


@pytest.fixture(scope="module")
def script():
    return load_benchmark("alert_threshold")


def _run(path: Path, watches: list[tuple[list[tuple[float, float]], float | None]]) -> Path:
    """A finished eval-alerts run (results.json): one video per watch (checks [(s, score)], first gaze s or None for
    a control)."""
    path.mkdir()
    videos = []
    for k, (checks, first) in enumerate(watches):
        w = {"case": f"v{k}/1.1", "target": "red circle", "asked_s": 0.0, "first_appearance_s": None,
             "first_gaze_s": first, "control": first is None, "alerts_s": [], "checks": checks,
             "decisions": [] if first is None else [(first + 0.5, True, False, None)], "outcome": "?", "delay_s": None}  # fmt: skip
        videos.append({"video": f"v{k}.mp4", "watches": [w], "wall_s": 1.0})
    (path / "results.json").write_text(json.dumps({**HEADER, "videos": videos}))
    return path


def test_the_threshold_is_chosen_on_val_and_reported_on_test(script, tmp_path, capsys):
    # val: target watches score 0.35 once looked at (2 s); a control reaches 0.25. Best: 0.3 (both on time, silent)
    val = _run(tmp_path / "val", [([(1.4, 0.1), (2.4, 0.35)], 2.0), ([(1.4, 0.1), (2.4, 0.35)], 2.0),
                                  ([(1.4, 0.25), (2.4, 0.2)], None)])  # fmt: skip
    test = _run(tmp_path / "test", [([(1.4, 0.1), (2.4, 0.32)], 2.0), ([(1.4, 0.28), (2.4, 0.1)], None)])
    assert script.main(["--val", str(val), "--test", str(test), "--thresholds", "0.2,0.3,0.5"]) == 0
    out = capsys.readouterr().out
    assert "chosen on " + str(val) + ": threshold 0.3 (the run's own: 0.5)" in out, out
    rows = {line.split()[0]: line.split() for line in out.split("held out")[1].splitlines()[2:] if line.strip()}
    # on test at 0.3: the target on time, the control silent; at the run's own 0.5: missed
    assert rows["0.3"][1:7] == ["1", "0", "0", "0", "0", "1"] and rows["0.3"][-1] == "(chosen)", out
    assert rows["0.5"][1:7] == ["0", "0", "0", "1", "0", "1"] and rows["0.5"][-1] == "(own)", out


def test_a_directory_that_is_no_run_is_one_error_line(script, tmp_path, capsys):
    """Before: a run's videos.jsonl was read, so a log a killed run cut off was refused, a smaller --limit's rerun
    counted every video ever replayed, and a record of the wrong shape was a traceback."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        script.main(["--val", str(tmp_path / "empty")])
    assert str(e.value).startswith("error: ") and "cannot be read" in str(e.value)
    (tmp_path / "eval").mkdir()  # another command's results
    (tmp_path / "eval" / "results.json").write_text(json.dumps({"schema": 1, "items": []}))
    with pytest.raises(SystemExit) as e:
        script.main(["--val", str(tmp_path / "eval")])
    assert "is no eval-alerts result" in str(e.value)
    bad = _run(tmp_path / "bad", [([(1.4, 0.1)], 2.0)])
    doc = json.loads((bad / "results.json").read_text())
    doc["videos"][0]["watches"] = 7
    (bad / "results.json").write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as e:
        script.main(["--val", str(bad)])
    assert str(e.value).startswith("error: ") and "cannot be rescored" in str(e.value)
    good = _run(tmp_path / "good", [([(1.4, 0.1)], 2.0)])
    with pytest.raises(SystemExit) as e:  # a bad --test is told before the sweep is printed
        script.main(["--val", str(good), "--test", str(tmp_path / "empty")])
    assert "cannot be read" in str(e.value) and "threshold" not in capsys.readouterr().out
    for bad_hold in ("nan", "-1", "61"):
        with pytest.raises(SystemExit) as e:
            script.main(["--val", str(good), "--hold", bad_hold])
        assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        script.main(["--val", str(tmp_path / "empty"), "--thresholds", "0.5,1.2"])
    assert e.value.code == 2 and "(0, 1)" in capsys.readouterr().err
