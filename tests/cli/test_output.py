"""Output for people and for pipes: one data line stays one line (no wrapping at 80 columns, no progress residue,
no colour codes) when the output is not a terminal, and nothing is highlighted by guesswork on a terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import ColorSystem

from tests.cli.helpers import cli, cli_subprocess

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_piped_output_is_neither_wrapped_nor_coloured(tmp_path):
    out_dir = tmp_path / ("a_rather_long_directory_name_" * 3) / "session"
    p = cli_subprocess(
        "record", "synthetic:1", out_dir, "--synthetic-duration", "1", "--size", "64x48", env={"TERM": "xterm"}
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout  # no blank line left by the progress bar, no wrapped continuation
    assert lines[0].startswith(f"wrote {out_dir}: 1.0 s, 200 gaze samples") and lines[0].endswith("audio samples")
    assert "\x1b[" not in p.stdout + p.stderr


def test_piped_errors_are_neither_wrapped_nor_coloured(tmp_path):
    missing = tmp_path / ("no_such_recording_" * 6)
    p = cli_subprocess("inspect", missing, env={"TERM": "xterm"})
    assert p.returncode == 2
    lines = p.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == f"error: {missing}: does not exist", p.stderr
    assert "\x1b[" not in p.stderr


@pytest.fixture
def terminal(monkeypatch):
    """The CLI's stdout console as if it wrote to a colour terminal; yields the buffer it writes to."""
    from gazeqwen_edge.cli.app import console

    buf = io.StringIO()
    monkeypatch.setattr(console, "_file", buf)
    monkeypatch.setattr(console, "_force_terminal", True)
    monkeypatch.setattr(console, "_color_system", ColorSystem.TRUECOLOR)
    return buf


def test_frame_size_is_not_highlighted_as_a_hex_number(capsys, terminal):
    """rich's automatic highlighting styled '640x480' as the number 64 and the hex number 0x480."""
    rc = cli(capsys, "inspect", "synthetic:1")[0]
    assert rc == 0
    text = terminal.getvalue()
    assert "\x1b[" in text  # it is a colour terminal: deliberate styles remain
    assert "scene size 640x480" in text, text
    assert "0x480" not in ANSI.sub("|", text).replace("640x480", "")


def test_control_characters_in_printed_names_reach_the_terminal_as_replacement_characters(capsys, tmp_path, terminal):
    """Before: a directory name, a table cell (an eval's variant) or a stored name holding an escape sequence (ESC [
    2 J clears the screen, ESC ] 0 ; sets the window title) or a C1 CSI (U+009B) went to the terminal as it was, in
    `record`'s 'wrote ...', `inspect`'s first line and `eval-table`. Now every console shows them as U+FFFD, and
    only rich's own styles remain as escape sequences."""
    import json

    name = "a\x1b[2Jb\x9b2Jc\u202ed\ne"  # (U+202E reverses what follows; a line break starts a line of its own)
    out_dir = tmp_path / name
    rc, _, err = cli(capsys, "record", "synthetic:1", out_dir, "--synthetic-duration", "1", "--size", "64x48")
    assert rc == 0, err
    rc, _, err = cli(capsys, "inspect", out_dir)
    assert rc == 0, err
    run = tmp_path / "run"
    run.mkdir()
    doc = {"schema": 1, "variant": "v\x1b]0;pwned\x07", "model": "demo", "items": []}
    (run / "results.json").write_text(json.dumps(doc))
    rc, _, err = cli(capsys, "eval-table", run)
    assert rc == 0, err
    text = terminal.getvalue()
    assert "\x1b[" in text  # a colour terminal: rich's styles are still written
    shown = re.sub(r"\x1b\[\?25[lh]", "", ANSI.sub("", text))  # (styles, and the cursor hidden under a live bar)
    assert not any(c in shown for c in "\x1b\x9b\x07"), repr(shown)
    assert shown.count("a\ufffd[2Jb\ufffd2Jc\ufffdd\ufffde") >= 2 and "v\ufffd]0;pwned" in shown, (
        shown
    )  # (rich drops BEL)
    assert f"wrote {tmp_path}/a\ufffd[2Jb\ufffd2Jc\ufffdd\ufffde: 1.0 s" in shown, shown  # one line


def test_user_text_is_not_read_as_markup(capsys, tmp_path):
    """A path with [brackets] is printed as given (rich markup would eat '[red]' or fail on '[/x]')."""
    out_dir = tmp_path / "[red]session[/x]"
    rc, out, err = cli(capsys, "record", "synthetic:1", out_dir, "--synthetic-duration", "1", "--size", "64x48")
    assert rc == 0, err
    assert f"wrote {out_dir}:" in out
    rc, out, err = cli(capsys, "inspect", out_dir)
    assert rc == 0, err
    assert f"{out_dir}: session recorded by gazeqwen-edge" in out


def test_piped_table_is_not_squeezed_to_80_columns(tmp_path):
    """A table wider than 80 columns (long sources) keeps each row on one line when piped."""
    from gazeqwen_edge.calibration.offset import OffsetStore

    store = OffsetStore(tmp_path / "offsets.json")
    store.load()
    source = "neon://phone-of-the-lab-with-a-long-host-name.local:8080"
    store.set("dom", (12.25, -8.5), 0.31, 7, source=source)
    p = cli_subprocess("calibrate", "show", "--store", store.path)
    assert p.returncode == 0, p.stderr
    rows = [line for line in p.stdout.splitlines() if " dom " in line]
    assert len(rows) == 1 and source in rows[0] and "+12.2" in rows[0], p.stdout
    assert len(rows[0]) > 80


def test_piped_tables_are_ascii_markdown_without_padding_lines(tmp_path, terminal):
    """Piped: a table is a markdown table (grep, awk and markdown viewers read it): no box-drawing characters and no
    line of padding spaces. On a terminal the same table keeps rich's box."""
    from rich.table import Table

    from gazeqwen_edge.cli.app import console

    p = cli_subprocess("inspect", "synthetic:1", "--seconds", "1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert not any(c in p.stdout for c in "─━│┃╇┏┡└"), p.stdout
    assert all(line == line.rstrip() and line for line in lines), p.stdout
    rows = [line.split("|") for line in lines if "|" in line]
    assert [c.strip() for c in rows[0]] == ["stream", "count", "rate", "first (s)", "last (s)"], p.stdout
    assert set(rows[1][0]) == {"-"} and any(r[0].strip() == "gaze" for r in rows[2:]), p.stdout
    t = Table("a", "b")
    t.add_row("1", "2")
    console.print(t)
    assert "┃" in terminal.getvalue() and "|" not in terminal.getvalue()


def test_a_piped_table_has_one_separator_row(capsys):
    """`dataset synthetic`'s summary ends a section before its totals: piped, rich drew a second |---| row there,
    which a markdown reader takes for a row of dashes. Sections and row lines are a terminal's only."""
    from rich.table import Table

    from gazeqwen_edge.cli.app import console

    t = Table("task", "n", show_lines=True)
    t.add_row("OI-E", "3")
    t.add_row("all", "3", end_section=True)
    t.add_row("scenes", "1")
    console.print(t)
    lines = capsys.readouterr().out.splitlines()
    separators = [line for line in lines if set(line.replace("|", "").strip()) <= {"-", ":"}]
    assert len(lines) == 5 and len(separators) == 1 and lines.index(separators[0]) == 1, lines


def test_simulate_with_announce_stops_without_asyncio_noise():
    """Stopping right after a zeroconf announcement left its broadcast task to be destroyed mid-way: asyncio
    printed 'Task was destroyed but it is pending!' on stderr."""
    pytest.importorskip("zeroconf")
    p = cli_subprocess(
        "simulate", "synthetic", "--scene-seconds", "0.5", "--size", "64x48", "--port", "0", "--rtsp-port", "0",
        "--time-echo-port", "0", "--announce",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "source played out" in p.stdout and p.stderr == "", p.stderr


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_reader_that_stops_reading_ends_the_command_quietly(stream, tmp_path):
    """`gazeqwen-edge inspect X | head -1`: the writer exits 141 (128 + SIGPIPE, as Unix tools do) with nothing on
    stderr, not rich's exit 1, which read as an error. An error whose line nobody reads keeps its own exit code."""
    import subprocess
    import sys

    from tests.cli.helpers import REPO_ROOT

    code = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); from gazeqwen_edge.cli import run; run()"
    argv = ["inspect", "synthetic:1"] if stream == "stdout" else ["inspect", str(tmp_path / "missing")]
    p = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    closed = p.stdout if stream == "stdout" else p.stderr
    closed.close()  # the reader is gone before the first line
    other = (p.stderr if stream == "stdout" else p.stdout).read()
    rc = p.wait(timeout=60)
    assert (rc, other) == ((141, b"") if stream == "stdout" else (2, b"")), other


def test_a_session_whose_terminal_reader_goes_away_still_records_every_answer(tmp_path):
    """`replay ... | head -1`: before, the answer being printed when the reader left was never written to
    answers.jsonl and the session stopped there; now the terminal sink drops out (a sink_failed notice in the session
    log) and the session records all its answers. (Whether a line fails before the session ends depends on timing,
    so the notice itself is not asserted; without the fix this test loses the answers.)"""
    import json
    import subprocess
    import sys

    from tests.cli.helpers import REPO_ROOT

    qf = tmp_path / "q.jsonl"
    qf.write_text("".join(json.dumps({"t": t, "question": f"What is it at {t}?"}) + "\n" for t in (2, 5, 8)))
    code = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); from gazeqwen_edge.cli import run; run()"
    argv = ["replay", "synthetic:1", "-q", str(qf), "--no-voice", "--out", str(tmp_path / "r")]
    p = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(b"Q ")
    p.stdout.close()  # `| head -1`
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141, err  # the reader left: reported as `inspect | head -1` is, once all is kept
    answers = [json.loads(line) for line in (tmp_path / "r" / "answers.jsonl").read_text().splitlines()]
    assert [a["question"] for a in answers] == [f"What is it at {t}?" for t in (2, 5, 8)]


def _run_to_dev_full(*argv: str, stderr_too: bool = False) -> tuple[int, str]:
    """The CLI as a user runs it with stdout on a full disk (`> /dev/full`; with stderr_too, `2>/dev/full` as
    well): (exit code, stderr)."""
    import os
    import subprocess
    import sys

    from tests.cli.helpers import REPO_ROOT

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    code = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); from gazeqwen_edge.cli import run; run()"
    with open("/dev/full", "w") as full:
        p = subprocess.run(
            [sys.executable, "-c", code, *map(str, argv)],
            stdout=full,
            stderr=full if stderr_too else subprocess.PIPE,
            text=True,
            timeout=120,
        )
    return p.returncode, p.stderr or ""


@pytest.mark.parametrize("argv", [["--help"], ["replay", "--help"], ["inspect", "synthetic:1"]])
def test_stdout_on_a_full_disk_is_one_error_line_and_exit_3(argv):
    """`gazeqwen-edge inspect X > /dev/full`: before, a traceback and exit 1; click's own help and our consoles
    alike now end with the error line, its hint and the device exit code."""
    rc, err = _run_to_dev_full(*argv)
    assert rc == 3, err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: cannot write ") and "No space left on device" in lines[0]
    assert lines[1].startswith("  hint: free space"), err


def test_a_session_whose_stdout_is_full_records_every_answer_and_says_so(tmp_path):
    """`replay ... > /dev/full`: the terminal sink drops out (a sink_failed notice), the session records every
    answer, and the command ends with the error line and exit 3, not a silent 0."""
    import json

    qf = tmp_path / "q.jsonl"
    qf.write_text("".join(json.dumps({"t": t, "question": f"What is it at {t}?"}) + "\n" for t in (2, 5)))
    rc, err = _run_to_dev_full("replay", "synthetic:1", "-q", qf, "--no-voice", "--out", tmp_path / "r")
    assert rc == 3 and err.splitlines()[0] == "error: cannot write stdout: No space left on device", err
    assert "Traceback" not in err
    answers = [json.loads(line) for line in (tmp_path / "r" / "answers.jsonl").read_text().splitlines()]
    assert [a["question"] for a in answers] == ["What is it at 2?", "What is it at 5?"]
    assert "notice.sink_failed" in (tmp_path / "r" / "events.csv").read_text()


def test_a_session_whose_disk_fills_stops_with_one_error_and_keeps_what_it_recorded(tmp_path, monkeypatch, capsys):
    """The disk under --out fills once the first answer is on it (gaze.csv's next flush fails): the session stops
    with exit 3 and one error line naming the session, the answer given before is kept, the manifest says
    "failed". (Filled by an event, not a byte count: how far the gaze gets before an answer depends on the CPU.)"""
    import json

    from gazeqwen_edge.device.session import Recorder
    from tests.cli.helpers import cli
    from tests.device.test_disk_full import filling_open

    out = tmp_path / "r"

    def full() -> bool:
        p = out / "answers.jsonl"
        return p.exists() and p.stat().st_size > 0

    monkeypatch.setattr(Recorder, "_open", filling_open({"gaze.csv": full}))
    qf = tmp_path / "q.jsonl"
    qf.write_text("".join(json.dumps({"t": t, "question": f"What is it at {t}?"}) + "\n" for t in (2, 9)))
    rc, _, err = cli(capsys, "replay", "synthetic:1", "-q", qf, "--no-voice", "--speed", "1", "--out", out)
    assert rc == 3, err
    assert err.splitlines()[0].startswith(f"error: cannot write the session in {out}"), err
    assert "No space left on device" in err.splitlines()[0] and "Traceback" not in err
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert answers and answers[0]["question"] == "What is it at 2?" and not answers[0].get("error")
    assert json.loads((out / "session.json").read_text())["state"] == "failed"


@pytest.mark.parametrize(("argv", "code"), [(["info"], 3), (["inspect", "/no/such/recording"], 2)])
def test_an_error_line_nobody_can_write_keeps_its_exit_code(argv, code):
    """`2>/dev/full` as well: the error line cannot be written either, and the command still exits with the
    error's own code (it was 1, from the uncaught failure to write the error line)."""
    rc, _ = _run_to_dev_full(*argv, stderr_too=True)
    assert rc == code
