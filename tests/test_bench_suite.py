"""benchmarks/suite.py: the table, the marks, the exit status and the JSON, with fake benchmarks (nothing is timed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("bench_suite_under_test", SUITE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    path = list(sys.path)
    try:
        spec.loader.exec_module(mod)  # puts benchmarks/ on sys.path: taken off again below
        yield mod
    finally:
        del sys.modules[spec.name]
        sys.path[:] = path


def _row(figure, value, ok, target=">= 20x"):
    return {"figure": figure, "value": value, "unit": "x", "shown": f"{value}x", "target": target, "ok": ok}


def _fine(quick, device):
    return [_row("speed", 31.0, True), _row("context only", 2.5, None, target="")]


def _short(quick, device):
    return [_row("slow one", 3.0, False)]


def _raises(quick, device):
    raise ModuleNotFoundError("No module named 'onnxruntime'")


def _lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


def test_short_rows_are_reported_and_exit_zero(suite, capsys, tmp_path):
    prods = [suite.Producer("fast group", _fine), suite.Producer("slow group", _short)]
    assert suite.main(["--device", "cpu", "--json", str(tmp_path / "r.json")], producers=prods) == 0
    out = capsys.readouterr().out
    slow = next(ln for ln in _lines(out) if "slow one" in ln)
    assert slow.split()[-1] == "SHORT" and ">= 20x" in slow
    speed = next(ln for ln in _lines(out) if "speed" in ln and "31.0x" in ln)
    assert speed.split()[-1] == "pass" and speed.startswith("fast group")
    ctx = next(ln for ln in _lines(out) if "context only" in ln)
    assert ctx.rstrip().endswith("2.5x") and not ctx.startswith("fast group")  # no target: no mark; group once
    assert "not measured:" not in out


def test_a_failing_benchmark_is_an_na_row_after_which_the_suite_goes_on_and_exits_one(suite, capsys, tmp_path):
    calls = []

    def after(quick, device):
        calls.append((quick, device))
        return _fine(quick, device)

    prods = [suite.Producer("onnxruntime vs PyTorch", _raises), suite.Producer("later", after)]
    path = tmp_path / "r.json"
    assert suite.main(["--quick", "--device", "cpu", "--json", str(path)], producers=prods) == 1
    assert calls == [(True, "cpu")]
    out = capsys.readouterr().out
    na = next(ln for ln in _lines(out) if ln.startswith("onnxruntime vs PyTorch"))
    assert na.split()[-1] == "n/a"
    assert "No module named 'onnxruntime'" in out.split("not measured:")[1]
    assert any(ln.startswith("later") for ln in _lines(out))  # printed after the failure: the whole table
    rows = json.loads(path.read_text())["rows"]
    assert rows[0]["value"] is None and rows[0]["mark"] == "n/a" and "onnxruntime" in rows[0]["reason"]


def test_a_row_without_a_value_is_not_measured(suite):
    def partial(quick, device):
        return [_row("measured", 25.0, True), {**_row("lost", None, None), "reason": "no frame delivered"}]

    def nan(quick, device):
        return [_row("nan", float("nan"), True)]

    rows = suite.run([suite.Producer("g", partial), suite.Producer("h", nan)], True, "cpu")
    assert [suite.mark(r) for r in rows] == ["pass", "n/a", "n/a"]
    assert rows[1]["reason"] == "no frame delivered" and rows[1]["target"] == ">= 20x"
    assert rows[1]["value"] is None and rows[2]["value"] is None  # None, not NaN (which JSON cannot hold)
    assert suite.exit_status(rows) == 1
    assert suite.exit_status(rows[:1]) == 0
    assert suite.exit_status([{**rows[0], "ok": False}]) == 0  # short is not fatal


def test_json_has_the_schema(suite, tmp_path, capsys):
    path = tmp_path / "rows.json"
    prods = [suite.Producer("fast group", _fine), suite.Producer("broken", _raises)]
    suite.main(["--device", "cpu", "--json", str(path)], producers=prods)
    data = json.loads(path.read_text())
    assert set(data["machine"]) >= {"cpu", "cores", "torch", "cuda_device", "device"}
    assert data["machine"]["device"] == "cpu"
    assert [r["figure"] for r in data["rows"]] == ["speed", "context only", "(all figures)"]
    for r in data["rows"]:
        assert set(suite.FIELDS) <= set(r)
        assert r["value"] is None or isinstance(r["value"], float)
        assert r["ok"] in (True, False, None) and isinstance(r["target"], str) and isinstance(r["shown"], str)
    assert data["rows"][0]["group"] == "fast group" and data["rows"][0]["ok"] is True
    assert [r["mark"] for r in data["rows"]] == ["pass", "", "n/a"]


def test_table_lines_fit_and_columns_align(suite):
    long = "x" * 300
    rows = suite.run(
        [
            suite.Producer("a group with a rather long name indeed", lambda q, d: [_row(long, 1.0, False, long)]),
            suite.Producer("b", lambda q, d: [_row("short", 40.0, True)]),
            suite.Producer("c", lambda q, d: (_ for _ in ()).throw(RuntimeError(long))),
        ],
        False,
        "cpu",
    )
    text = suite.format_table(rows)
    assert max(len(ln) for ln in text.splitlines()) <= suite.WIDTH
    assert "\x1b" not in text  # no colour
    table = [ln for ln in text.split("\n\n")[0].splitlines() if not ln.startswith("-")]
    assert [ln.split()[-1] for ln in table] == ["mark", "SHORT", "pass", "n/a"]
    assert len({ln.rindex(ln.split()[-1]) for ln in table}) == 1  # the mark column starts at one place on every line
    assert text.count("..") >= 2  # long cells cut


def test_bad_options(suite, tmp_path, capsys):
    assert suite.main(["--json", str(tmp_path / "no" / "dir.json")], producers=[]) == 2
    with pytest.raises(SystemExit):
        suite.main(["--device", "tpu"], producers=[])


def test_every_benchmark_exposes_rows_and_the_soak_stays_out(suite):
    names = {p.rows.__closure__[0].cell_contents for p in suite.PRODUCERS}
    assert names == {"export", "streaming", "export_onnx", "replay_speed", "fixation_detector", "neon_latency",
                     "voice_latency"}  # fmt: skip
    for name in names:
        src = (SUITE.parent / f"{name}.py").read_text()
        assert "\ndef rows(quick: bool, device: str" in src
