"""Where a session's output goes. A sink is told about each question, each streamed piece of its answer, the finished
answer record and the session's notices; the terminal, `answers.jsonl`, speech and a web page are all sinks.

Sinks are called from the session's model worker thread (questions, pieces, answers) and its ingest thread
(notices); they must be quick and must not raise (a failing sink is reported once and then ignored by the session).
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.markup import escape

from gazeqwen_edge.errors import one_line, printable
from gazeqwen_edge.runtime.questions import AnswerRecord, Question


class Sink:
    """The sink interface; every method is optional (no-op by default)."""

    def question(self, q: Question, t_s: float) -> None:
        """A question reached the model (t_s: its time, seconds from the session's first record)."""

    def piece(self, q: Question, text: str) -> None:
        """The next piece of the answer's text (pieces join to the answer)."""

    def answered(self, record: AnswerRecord) -> None:
        """The answer is complete (or failed: record.error)."""

    def notice(self, kind: str, message: str, t_s: float | None) -> None:
        """A status change: disconnected, reconnected, not worn, chunks skipped, a question file problem..."""

    def alert(self, alert) -> None:
        """A watch fired (runtime.watches.Alert)."""

    def speech_started(self, t_s: float | None) -> None:
        """The wearer started speaking (barge-in: a sink that is speaking an answer stops)."""

    def close(self) -> None:
        """The session ended."""


class JsonlSink(Sink):
    """A sink that appends one JSON line per event to a file, flushed at once so a killed session keeps every line
    written; the file (and its directory) is created at the first line. Subclasses route their events to `_append`
    (any object with to_json())."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = None
        self._lock = threading.Lock()

    def _append(self, item) -> None:
        with self._lock:
            if self._f is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._f.write(item.to_json() + "\n")
            self._f.flush()

    def close(self) -> None:
        with self._lock:
            if self._f is not None and not self._f.closed:
                self._f.close()


class JsonlAnswers(JsonlSink):
    """Appends one AnswerRecord per line to `answers.jsonl` (JsonlSink: a killed session keeps every finished
    answer)."""

    def answered(self, record: AnswerRecord) -> None:
        self._append(record)


def _lettered(options: list[str], letter: str | None = None):
    """Options as the model was shown them, each with its letter ('box' -> 'A. box'): what a printed letter means;
    with `letter`, only the option of that letter (the letter itself when none has it)."""
    from gazeqwen_edge.model.gazeqwen import lettered_options, option_letters

    shown = lettered_options(options)
    if letter is None:
        return shown
    return dict(zip(option_letters(options), shown, strict=True)).get(letter, letter)


class TerminalSink(Sink):
    """Prints questions, streams answers and shows notices on a rich Console (no colour or wrapping when the console
    is not a terminal). User text is never read as rich markup."""

    def __init__(self, console, show_questions: bool = True, show_timing: bool = True):
        self.console = console
        self.show_questions = show_questions
        self.show_timing = show_timing
        self._lock = threading.Lock()
        self._open = False  # an answer line is being streamed
        self._cut = False  # the answer being streamed was cut by an alert line: it goes on after "A …"
        self._held: list[str] = []  # notices that came while an answer streamed: printed after its line

    def _print(self, text: str, end: str = "\n") -> None:
        self.console.print(text, highlight=False, soft_wrap=True, end=end)

    def question(self, q: Question, t_s: float) -> None:
        if self.show_questions:
            # one line each: a line break inside a question's text (a JSONL "\n") must not start a line of its own
            opts = "  " + escape(one_line(f"[{' | '.join(_lettered(q.options))}]")) if q.options else ""
            with self._lock:
                self._print(f"[bold cyan]Q[/] [dim]{t_s:7.1f} s[/] {escape(one_line(q.text))}{opts}")

    def piece(self, q: Question, text: str) -> None:
        if q.options:  # a multiple-choice answer is printed whole, with its scores, when it is done
            return
        with self._lock:
            if not self._open:
                self._print("[bold green]A[/] …" if self._cut else "[bold green]A[/] ", end="")
                self._open, self._cut = True, False
            self.console.print(printable(text), end="", markup=False, highlight=False, soft_wrap=True)

    def answered(self, record: AnswerRecord) -> None:
        timing = f"  [dim](ttft {record.ttft_ms:.0f} ms)[/]" if self.show_timing and record.ttft_ms is not None else ""
        with self._lock:
            if self._open or self._cut:
                self._print(timing if self._open else f"[bold green]A[/] …{timing}")
                self._open = self._cut = False
                self._flush_held()
            elif record.error:
                self._print(f"[bold red]no answer:[/] {escape(one_line(record.error))}")
            elif record.options:
                truth = record.meta.get("answer")
                verdict = (
                    ""
                    if truth is None
                    else f"  (truth {escape(str(truth))}: {'right' if record.answer == truth else 'wrong'})"
                )
                chosen = _lettered(record.options, record.answer)
                self._print(f"[bold green]A[/] {escape(one_line(chosen))}{verdict}{timing}")
            else:  # an empty generated answer
                self._print(f"[bold green]A[/] [dim](empty)[/]{timing}")

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._print("")
                self._open = False
            self._flush_held()

    def _flush_held(self) -> None:
        for line in self._held:
            self._print(line)
        self._held.clear()

    def alert(self, alert) -> None:
        """Printed at once (it is what the wearer asked to hear about); an answer it cuts goes on after "A …"."""
        with self._lock:
            if self._open:
                self._print("")
                self._open, self._cut = False, True
            self._print(
                f"[bold magenta]alert[/] [dim]{alert.t:7.1f} s[/] you are looking at {escape(one_line(alert.watch))} "
                f"[dim](score {alert.score:.2f})[/]"
            )

    def notice(self, kind: str, message: str, t_s: float | None) -> None:
        """Printed at once, or, while an answer streams, right after its line (an answer is never split by one)."""
        when = f"{t_s:7.1f} s " if t_s is not None else ""
        line = f"[yellow]notice[/] [dim]{when}[/]{escape(one_line(kind))}: {escape(one_line(message))}"
        with self._lock:
            if self._open or self._cut:
                self._held.append(line)
            else:
                self._print(line)
