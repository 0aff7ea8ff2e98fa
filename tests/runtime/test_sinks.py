"""The terminal sink: a streamed answer stays on one line whatever arrives meanwhile."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gazeqwen_edge.runtime.questions import AnswerRecord, Question
from gazeqwen_edge.runtime.sinks import TerminalSink
from gazeqwen_edge.runtime.watches import Alert


def _sink():
    buf = io.StringIO()
    return TerminalSink(Console(file=buf, force_terminal=False, width=200), show_questions=False), buf


def _lines(buf) -> list[str]:
    return [line.rstrip() for line in buf.getvalue().splitlines()]


def test_a_notice_during_a_streamed_answer_comes_after_its_line():
    """Before: 'A wh' / 'notice ...' / 'A ite': one answer on two lines, both starting 'A'."""
    sink, buf = _sink()
    q = Question("What is it?", 0)
    sink.piece(q, "wh")
    sink.notice("chunks_skipped", "the model is behind real time", 3.4)
    sink.piece(q, "ite")
    sink.answered(AnswerRecord(1, q.text, 0.0, 0, "typed", answer="white", ttft_ms=12.0))
    sink.notice("later", "after the answer", 5.0)
    lines = _lines(buf)
    assert lines[0] == "A white  (ttft 12 ms)"
    assert lines[1].startswith("notice") and "chunks_skipped" in lines[1] and "later" in lines[2] and len(lines) == 3


def test_an_alert_cuts_an_answer_at_once_and_the_answer_goes_on_marked():
    sink, buf = _sink()
    q = Question("What is it?", 0)
    sink.piece(q, "wh")
    sink.alert(Alert(0, "the stove", 3.5, 0, 0.9))
    sink.notice("held", "while the cut answer is unfinished", 3.6)
    sink.piece(q, "ite")
    sink.answered(AnswerRecord(1, q.text, 0.0, 0, "typed", answer="white", ttft_ms=12.0))
    lines = _lines(buf)
    assert lines[0] == "A wh" and lines[1].startswith("alert") and "the stove" in lines[1]
    assert lines[2] == "A …ite  (ttft 12 ms)" and lines[3].startswith("notice") and len(lines) == 4


def test_notices_held_by_an_unfinished_answer_are_printed_when_the_session_closes():
    sink, buf = _sink()
    q = Question("What is it?", 0)
    sink.piece(q, "wh")
    sink.notice("stopped", "the session stops", 3.4)
    sink.close()
    assert _lines(buf) == ["A wh", "notice     3.4 s stopped: the session stops"]


def test_a_multiple_choice_line_shows_the_letters_the_model_saw_and_the_chosen_option():
    """Before: a file's options without letters printed as '[red circle | blue square]', then the answer 'B' alone,
    which a reader could not map back."""
    buf = io.StringIO()
    sink = TerminalSink(Console(file=buf, force_terminal=False, width=200), show_timing=False)
    options = ["red circle", "blue square", "C) green star"]
    q = Question("Which?", 0, options=options)
    sink.question(q, 3.0)
    sink.answered(AnswerRecord(1, q.text, 3.0, 0, "file", answer="B", options=options, meta={"answer": "C"}))
    sink.answered(AnswerRecord(2, q.text, 3.0, 0, "file", answer="C", options=options))
    lines = _lines(buf)
    assert lines[0].endswith("Which?  [A. red circle | B. blue square | C) green star]")
    assert lines[1] == "A B. blue square  (truth C: wrong)" and lines[2] == "A C) green star"


def test_control_characters_in_an_answer_never_reach_the_terminal():
    """A model's byte tokens can decode to ESC sequences or C1 controls (U+009B is a one-character CSI): each is
    shown as U+FFFD; newlines and tabs of the answer stay."""
    sink, buf = _sink()
    q = Question("What is it?", 0)
    sink.piece(q, "a \x1b[2J red\x9b2J cup\x00\x7f\x85")
    sink.answered(AnswerRecord(1, q.text, 0.0, 0, "typed", answer="x", ttft_ms=1.0))
    out = buf.getvalue()
    assert "red" in out and "cup" in out
    assert not any(ord(c) < 32 and c not in "\n\t" or 127 <= ord(c) < 160 for c in out), ascii(out)
    assert out.count("\ufffd") == 5


def test_a_question_error_or_notice_is_one_line_whatever_its_text_holds():
    """A questions file's "\\n" printed the Q line across two lines; a question's text, its options, an error and a
    notice each stay on their one line (a line break or a carriage return shown as U+FFFD), while an answer keeps
    its own line breaks."""
    buf = io.StringIO()
    sink = TerminalSink(Console(file=buf, force_terminal=False, width=200), show_timing=False)
    q = Question("What is\non the\r table?", 0, options=["a\ncup", "bowl"])
    sink.question(q, 1.0)
    sink.answered(AnswerRecord(1, q.text, 1.0, 0, "file", error="could not\nbe answered"))
    sink.notice("gap", "no gaze\nfor 2 s", 2.0)
    q2 = Question("Say two lines", 0)
    sink.piece(q2, "one\ntwo")
    sink.answered(AnswerRecord(2, q2.text, 1.0, 0, "file", answer="one\ntwo"))
    lines = _lines(buf)
    assert lines[0] == "Q     1.0 s What is\ufffdon the\ufffd table?  [A. a\ufffdcup | B. bowl]", lines
    assert (
        lines[1] == "no answer: could not\ufffdbe answered" and lines[2] == "notice     2.0 s gap: no gaze\ufffdfor 2 s"
    )
    assert lines[3:5] == ["A one", "two"]


def test_a_value_that_is_not_finite_costs_neither_the_record_nor_the_log(tmp_path):
    """A NaN score or an infinite fixation (a wearer offset of 1e308 overflowed on its way to the model) made
    to_json raise; the answers sink stopped at the first such record and answers.jsonl stayed empty. Now it is
    null, the rest of the record and every later record are kept, and the file is strict JSON."""
    import json

    from gazeqwen_edge.runtime.sinks import JsonlAnswers

    sink = JsonlAnswers(tmp_path / "answers.jsonl")
    nan = float("nan")
    bad = AnswerRecord(
        1, "which?", 1.0, 10**18, "typed", "A", scores={"A": nan, "B": -1.5}, fixations=[[float("inf"), 0.5, 1.0, 0.2]]
    )
    sink.answered(bad)
    sink.answered(AnswerRecord(2, "and now?", 2.0, 10**18 + 10**9, "typed", "B", scores={"A": -2.0, "B": -0.5}))
    alert = Alert(1, "the stove", 3.0, 10**18, float("-inf"))
    sink.close()
    lines = (tmp_path / "answers.jsonl").read_text().splitlines()
    first, second = (json.loads(x, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) for x in lines)
    assert first["scores"] == {"A": None, "B": -1.5} and first["fixations"] == [[None, 0.5, 1.0, 0.2]]
    assert first["answer"] == "A" and second["id"] == 2 and second["scores"]["B"] == -0.5
    assert json.loads(alert.to_json())["score"] is None
