"""Typed questions (a line of text, or a JSON object with options) and the demo's scripted questions."""

from __future__ import annotations

import io

import pytest

from gazeqwen_edge.runtime.live import parse_typed, read_questions


def test_parse_typed_lines():
    assert parse_typed("  What is this?\n") == ("What is this?", None)
    assert parse_typed("") is None and parse_typed("   \n") is None
    assert parse_typed('{"question": "Which jar?", "options": ["A. red", "B. blue"]}') == (
        "Which jar?",
        ["A. red", "B. blue"],
    )
    assert parse_typed("[not json, but no brace] what is it?") == ("[not json, but no brace] what is it?", None)
    assert parse_typed("42") == ("42", None)  # words, however short
    assert parse_typed("\ufeffWhat is this?\n") == ("What is this?", None)  # a file's byte order mark is no word
    # line breaks and tabs are text, not control characters to refuse
    assert parse_typed('{"question": "first line\\n\\tsecond?", "options": ["a", "b"]}')[0] == "first line\n\tsecond?"


@pytest.mark.parametrize(
    "line, why",
    [
        ("{not json", "must be a JSON object"),
        ('["Which jar?", ["A. red", "B. blue"]]', "must be an object .*, not a list"),
        ("[1,2]", "not a list"),
        ('{"question": "x", "options": "A. red, B. blue"}', "options must be a non-empty list"),
        ('{"question": 5}', "non-empty text"),
        ('{"options": ["A. a"]}', 'with "question"'),
        ('{"question": "x", "optoins": ["a"]}', "unknown keys"),
        ('{"question": "x", "options": ["A. a", "A. b"]}', "distinct letters"),
        ('{"question": "x", "options": ["a", "a"]}', r"options 1 and 2 are the same \('a'\)"),
        ('{"question": "x", "options": ["A. red cup", "B. bowl", "C. Red  Cup"]}', "options 1 and 3 are the same"),
        ('{"question": "' + "word " * 1000 + '"}', "at most 2000 characters"),
        ('{"question": "what is \\ud800 this?"}', "the question is not valid text: character 9"),
        ('{"question": "x", "options": ["A. a", "B. \\udfff"]}', "option 2 is not valid text"),
        ("caf\udce9 or tea?", "not valid text: character 4"),  # a byte that is not UTF-8, as stdin decodes it
        # control characters from JSON escapes went to the tokenizer (shown as U+FFFD); one option is no choice
        ('{"question": "x", "options": ["a\\u0000", "b"]}', r"option 1 holds a control character \('\\x00'\)"),
        ('{"question": "what \\u001b[2J is it?"}', r"the question holds a control character \('\\x1b'\)"),
        ('{"question": "x", "options": ["A. a", "B. \\u202eb"]}', "option 2 holds a control character"),
        ('{"question": "x", "options": ["A. only"]}', "needs at least 2 options, got 1"),
    ],
)
def test_a_json_line_that_is_not_a_question_is_refused_not_asked_as_text(line, why):
    """Before: such lines were asked word for word as text questions (options silently dropped)."""
    with pytest.raises(ValueError, match=why):
        parse_typed(line)


def test_every_line_of_a_pipe_is_asked():
    asked = []

    class FakeSession:
        def ask(self, text, options=None, source="typed"):
            asked.append((text, options, source))

    errors = []
    lines = "first?\n\n{broken\n\udcff\udcfe\nsecond?\n"  # a line of bytes that are not UTF-8 (surrogateescape)
    done = read_questions(FakeSession(), io.StringIO(lines), errors.append)
    assert done.wait(5)
    assert asked == [("first?", None, "typed"), ("second?", None, "typed")]
    assert len(errors) == 2 and all(e.startswith("question not asked:") for e in errors), errors
    # each with the hint of what a typed line may be (the helper's break pass: the error line came without one)
    assert all(
        e.splitlines()[1].startswith('  hint: type the question as text, or one JSON line {"question"') for e in errors
    )


def test_demo_questions_ask_what_the_wearer_fixates_with_the_truth():
    pytest.importorskip("cv2")
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.runtime.demo import demo_questions

    scene = SyntheticScene(seed=4, duration_s=20.0, width=160, height=120)
    qs = demo_questions(scene, n=3)
    assert 1 <= len(qs) <= 3 and all(q.t_s >= 2.0 for q in qs)
    for q in qs:
        t_ns = scene.start_ns + int(q.t_s * 1e9)
        on = [name for s, e, name in scene.looked_at if s <= t_ns <= e]
        assert on == [q.meta["truth"]]  # asked in the middle of a fixation on that object
        letter = q.meta["answer"]
        assert q.options[ord(letter) - ord("A")].endswith(q.meta["truth"])
