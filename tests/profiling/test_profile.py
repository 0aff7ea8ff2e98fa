"""`gazeqwen-edge profile` end to end on the tiny model: the report's numbers against each other and against the
session's own records, the HTML page, compare, and bad input."""

from __future__ import annotations

import json
import re

import pytest

from gazeqwen_edge.profiling import report as rp
from tests.cli.helpers import cli

pytest.importorskip("cv2")

MAX_NEW = 4  # --max-new-tokens of the profiles


@pytest.fixture(scope="module")
def two_profiles(tmp_path_factory):
    """The demo scene (6 s) profiled twice in lockstep from the CLI: fused injection, then hooks."""
    import _pytest.capture  # noqa: F401  (capsys is function-scoped: run main() directly)

    from gazeqwen_edge.cli import main

    d = tmp_path_factory.mktemp("profiles")
    common = ["profile", "--duration", "6", "--every", "1.5", "--speed", "max", "--max-new-tokens", str(MAX_NEW)]
    assert main([*common, "--out", str(d / "fused")]) == 0
    assert main([*common, "--injection", "hooks", "--out", str(d / "hooks")]) == 0
    return d


def test_the_report_adds_up(two_profiles):
    doc = json.loads((two_profiles / "fused" / "profile.json").read_text())
    assert doc["format"] == "gazeqwen-edge-profile" and doc["version"] == 1
    answers = [json.loads(x) for x in (two_profiles / "fused" / "session" / "answers.jsonl").read_text().splitlines()]
    assert len(doc["questions"]) == len(answers) == doc["session"]["answered"] == 3  # at 2, 3.5 and 5 s
    for row, rec in zip(doc["questions"], answers, strict=True):
        assert row["ttft_ms"] == rec["ttft_ms"]
        # time to first token counts from the arrival: the wait and the question's own prefill are inside it
        assert rec["ttft_ms"] >= rec["queued_ms"] + rec["stages_ms"]["prefill_question"]
        # only the model's work is on a question's path (the chunks, or the answer before it when the question came
        # during that one), not the ingest thread's, which runs beside it; each instant of the wait counted once
        assert set(rec["queue_stages_ms"]) <= set(rp.STAGES) - {"fixation_detection", "vad", "speech_recognition"}
        assert sum(rec["queue_stages_ms"].values()) <= rec["queued_ms"] + 0.01  # rounded to the microsecond
        assert row["path_ms"]["waiting: other"] == pytest.approx(
            max(0.0, rec["queued_ms"] - sum(rec["queue_stages_ms"].values())), abs=1e-6
        )
        assert sum(row["path_ms"].values()) <= rec["ttft_ms"] * 1.02
    path = doc["question_path"]
    assert 0.5 < path["coverage"] <= 1.02
    stages = doc["stages"]
    for name in ("fixation_detection", "preprocess", "qwen_vision", "vjepa", "resampler", "prefill_chunk",
                 "prefill_question", "decode"):  # fmt: skip
        assert stages[name]["count"] >= 1 and stages[name]["p95"] <= stages[name]["max"]
    # one decode step per token fed back: every chosen token but the last when the answer ran to max_new_tokens, every
    # one when it ended with the end-of-turn token (chosen, not counted in n_tokens)
    ended = [r["n_tokens"] < MAX_NEW for r in doc["questions"]]
    assert stages["decode"]["count"] == sum(
        r["n_tokens"] if e else r["n_tokens"] - 1 for r, e in zip(doc["questions"], ended, strict=True) if r["n_tokens"]
    )
    bw = doc["bandwidth"]
    assert bw["tokens_per_s"] == pytest.approx(1e3 / stages["decode"]["mean"])
    assert bw["achieved_gbs"] == pytest.approx(bw["bytes_per_token"]["total"] / bw["seconds_per_token"] / 1e9)
    assert bw["preset"] == "cpu" and bw["bandwidth_gbs"] > 0
    assert doc["memory"]["peak_rss_mib"] > 100 and doc["session"]["chunks_skipped"] == 0
    timings = (two_profiles / "fused" / "session" / "timings.csv").read_text()
    assert "prefill_chunk" in timings and "fixation_detection" not in timings  # the session log: model work only
    events = (two_profiles / "fused" / "session" / "events.csv").read_text()
    assert events.count(",question,") == events.count(",answer,") == 3
    assert "speech_recognition" in doc["not_measured"] and "device_to_buffer_gaze" in doc["not_measured"]


def test_the_html_page_is_self_contained(two_profiles):
    page = (two_profiles / "fused" / "profile.html").read_text()
    assert page.count("<svg") == 3  # stage bars, TTFT against context, one question's timeline
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing loaded from anywhere
    assert "arrival to first token" in page


def test_compare_hooks_and_fused(two_profiles, capsys):
    rc, out, err = cli(capsys, "profile", "compare", two_profiles / "fused", two_profiles / "hooks" / "profile.json")
    assert rc == 0, err
    assert "injection: fused -> hooks" in out
    line = next(x for x in out.splitlines() if "decode mean (ms)" in x)
    assert re.search(r"\d+\.\d+x", line)


def test_bad_input(tmp_path, capsys):
    def one_error(argv, *needles, code=2):
        rc, out, err = cli(capsys, *argv)
        assert rc == code, err
        assert err.count("error:") == 1 and "Traceback" not in err
        for n in needles:
            assert n in err, err

    one_error(["profile", "--preset", "orin-agx", "--out", tmp_path / "a"], "unknown preset", "agx-orin")
    one_error(["profile", "--bundle", tmp_path / "nobundle", "--out", tmp_path / "b"], "nobundle")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    one_error(["profile", "--questions", empty, "--out", tmp_path / "c"], "holds no usable question")
    late = tmp_path / "late.jsonl"
    late.write_text('{"t": 50, "question": "What am I looking at?"}\n')
    one_error(["profile", "--questions", late, "--duration", "5", "--out", tmp_path / "d"], "ends at 5.0 s")
    one_error(["profile", "--duration", "1", "--out", tmp_path / "e"], "too short")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    one_error(["profile", "compare", tmp_path / "x.json", tmp_path / "x.json"], "not a gazeqwen-edge profile")
    one_error(["profile", "compare", tmp_path / "missing.json", tmp_path / "x.json"], "does not exist")
    assert not any((tmp_path / n).exists() for n in "abcde")  # nothing written for a refused run


def test_the_page_without_matplotlib(two_profiles, monkeypatch):
    import sys

    from gazeqwen_edge.profiling.html import render_html
    from gazeqwen_edge.profiling.report import load_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    page = render_html(load_report(two_profiles / "fused"))
    assert "<svg" not in page and "pip install 'gazeqwen-edge[profile]'" in page
    assert "arrival to first token" in page  # the tables are still there


def test_a_profile_whose_model_fell_behind_says_its_figures_are_not_representative(two_profiles, capsys, tmp_path):
    """A profile at real time on a loaded machine skipped 10 of 20 chunks and printed its figures as any other."""
    from gazeqwen_edge.cli.profile import print_profile

    doc = json.loads((two_profiles / "fused" / "profile.json").read_text())
    capsys.readouterr()
    print_profile(doc, tmp_path)
    out = capsys.readouterr()
    assert "fell behind" not in out.err  # none skipped: no warning
    # (these profiles ran at --speed max: their time to first token says it holds the wait behind queued chunks)
    assert doc["settings"]["speed"] == "max" and "--speed max: the source runs ahead" in " ".join(out.out.split())
    doc["session"] = {**doc["session"], "chunks_prefilled": 10, "chunks_skipped": 10}
    print_profile(doc, tmp_path)
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: the model fell behind real time: 10 of 20 chunks were skipped" in err, err
