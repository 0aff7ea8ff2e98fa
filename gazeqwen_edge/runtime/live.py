"""Running a live session: typed questions from a text stream (the terminal, or a pipe), answers and status to the
sinks, until the time is up, the input ends and every question is answered, or the user interrupts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TextIO

from gazeqwen_edge.errors import GazeQwenError
from gazeqwen_edge.runtime.questions import check_options, check_question_text
from gazeqwen_edge.runtime.session import Session


def parse_typed(line: str) -> tuple[str, list[str] | None] | None:
    """A typed line -> (question, options or None); None for a blank line. A line starting with '{' must be a JSON
    object {"question": "...", "options": [...]} (options optional) and is refused (ValueError saying why) when it is
    not one, rather than asked as text, and so is a line that parses as a JSON array; any other line is the question
    itself (checked: check_question_text), a bare number too."""
    text = line.strip().removeprefix("\ufeff").strip()  # (a byte order mark opens some editors' files)
    if not text:
        return None
    if text.startswith("["):  # a JSON array is a malformed JSON question, not words (e.g. '["Which jar?", ...]')
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return check_question_text(text), None
        raise ValueError('a JSON line must be an object {"question": ...}, not a list')
    if not text.startswith("{"):
        return check_question_text(text), None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"a line starting with '{{' must be a JSON object ({e.msg})") from None
    if not isinstance(obj, dict) or "question" not in obj:
        raise ValueError('a JSON line must be an object with "question" (and optionally "options")')
    unknown = sorted(set(obj) - {"question", "options"})
    if unknown:
        raise ValueError(f"unknown keys {unknown} in a JSON question (question, options)")
    return check_question_text(obj["question"]), check_options(obj.get("options"))


# what a typed line may be: the hint of every line refused
TYPED_HINT = 'type the question as text, or one JSON line {"question": "...", "options": ["...", "..."]}'


def read_questions(session: Session, stream: TextIO, on_error: Callable[[str], None]) -> threading.Event:
    """Start a daemon thread that asks every line of `stream` as a typed question; the returned event is set at the
    end of the stream. A line that cannot be asked goes to `on_error` as "question not asked: WHY" and a second line
    "  hint: ..." (the error's own hint, else TYPED_HINT); the lines after it are still read."""
    done = threading.Event()

    def run() -> None:
        try:
            for line in stream:
                try:
                    parsed = parse_typed(line)
                    if parsed is not None:
                        session.ask(parsed[0], parsed[1], source="typed")
                except ValueError as e:
                    on_error(f"question not asked: {e}\n  hint: {TYPED_HINT}")
                except GazeQwenError as e:
                    on_error(f"question not asked: {e.message}\n  hint: {e.hint or TYPED_HINT}")
        finally:
            done.set()

    threading.Thread(target=run, name="session-typed-questions", daemon=True).start()
    return done


def run_live(
    session: Session,
    questions: TextIO | None,
    duration_s: float = 0.0,
    status: Callable[[Session], None] | None = None,
    status_every_s: float = 10.0,
    on_error: Callable[[str], None] = lambda m: None,
) -> None:
    """Run a started-or-not session until `duration_s` (0: no limit) has passed, or the question stream has ended and
    every question asked is answered, or the source ends, or Ctrl-C; then stop it. `status(session)` is called every
    `status_every_s` seconds."""
    session.start()
    eof = read_questions(session, questions, on_error) if questions is not None else None
    t0 = time.monotonic()
    next_status = t0 + status_every_s
    try:
        while True:
            now = time.monotonic()
            if duration_s > 0 and now - t0 >= duration_s:
                break
            s = session.stats
            if duration_s <= 0 and eof is not None and eof.is_set() and s.answered + s.failed >= s.questions:
                break
            if session.wait(0.1):  # the source ended (a replayed or simulated device) or a thread failed
                break
            if status is not None and now >= next_status:
                status(session)
                next_status = now + status_every_s
    except KeyboardInterrupt:
        pass
    finally:
        session.stop()
