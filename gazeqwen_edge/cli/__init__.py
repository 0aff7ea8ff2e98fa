"""The `gazeqwen-edge` command. Thin: parses options and calls the packages.

Each command group lives in its own module of this package and registers itself on `app` (see app.py); heavy imports
(torch, av, the Neon client) happen inside the command functions so `--help` stays fast.
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import EXIT_READER_GONE, app, console, console_err, silence, stream_failure
from gazeqwen_edge.cli.options import int_option_problem
from gazeqwen_edge.errors import OUTPUT_ERRNOS, DeviceError, GazeQwenError, disk_hint, printable

try:  # typer >= 0.2x ships its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # older typer runs on click itself
    from click import exceptions as _click_errors

# Importing the command modules registers their commands on `app`.
from gazeqwen_edge.cli import model as _model  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import calibration as _calibration  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import device as _device  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import neon as _neon  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import runtime as _runtime  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import training as _training  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import dataset as _dataset  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import export as _export  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import profile as _profile  # noqa: E402,F401  isort: skip

PROG = "gazeqwen-edge"


# commands whose output directory a rerun resumes (eval: items.jsonl, eval-alerts: videos.jsonl, train: last/,
# dataset synthetic: building.json)
RESUMABLE = frozenset({"eval", "eval-alerts", "train", "dataset"})
# what other commands leave behind when stopped with Ctrl-C, said with the "interrupted" line
INTERRUPTED_HINTS = {
    "train-vision": "no model is kept: best/ is written only when training ends; rerun with an --out that is new or "
    "empty",
    "export": "the unfinished bundle was removed; run the same command again",
}


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A source's warning (device.source.SourceWarning: a recording's unreadable video, ...) as one `warning:` line,
    not Python's `<file>:0: SourceWarning: ...` form; other warnings as Python formats them."""
    from gazeqwen_edge.device.source import SourceWarning

    if issubclass(category, SourceWarning):
        return f"warning: {filename}: {' '.join(str(message).split())}\n"
    return _PYTHON_FORMATWARNING(message, category, filename, lineno, line)


_PYTHON_FORMATWARNING = warnings.formatwarning


def _print_error(message: str, hint: str | None = None) -> None:
    # messages carry file names and CSV columns such as 'timestamp [ns]': never read them as rich markup
    try:
        console_err.print(f"[bold red]error:[/] {escape(printable(' '.join(message.split())))}")
        if hint:
            console_err.print(f"  [yellow]hint:[/] {escape(printable(' '.join(hint.split())))}")
    except SystemExit as e:  # nobody reads stderr any more: the error's own exit code still tells
        if e.code != EXIT_READER_GONE:
            raise
    except DeviceError:  # stderr refuses writes too (`2>/dev/full`, a full disk): the exit code alone tells
        pass


def _command_name(argv: list[str] | None) -> str:
    """The command a command line runs ('train' for `train --qa x`; '' for none): the first word not an option."""
    words = sys.argv[1:] if argv is None else list(argv)
    return next((w for w in words if not w.startswith("-")), "")


def _command_path(argv: list[str]) -> str:
    """'gazeqwen-edge calibrate offset' for argv ['calibrate', 'offset', ...]: the (sub)command the user ran."""
    from typer.main import get_command

    path, cmd = [PROG], get_command(app)
    for arg in argv:
        sub = getattr(cmd, "commands", {}).get(arg)
        if sub is None:
            break
        path.append(arg)
        cmd = sub
    return " ".join(path)


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return the exit code.

    Everything a user can get wrong ends in one `error:` line (and a `hint:` line) on stderr, never a traceback:
    a bad option or argument (usage errors: exit 2, with a pointer to the command's --help), and our own errors
    (`GazeQwenError`: exit 2 for input and configuration, 3 for devices, 4 for a missing extra). Ctrl-C exits 130;
    a closed stdout (`| head -1`) ends the command quietly with 141, as Unix tools do.
    Anything else is a bug and keeps its traceback."""
    formatted = warnings.formatwarning
    warnings.formatwarning = _format_warning  # how a shown warning reads (a recorded one is not formatted)
    try:
        return _main(argv)
    except SystemExit as e:
        # the reader of stdout went away (`| head -1`): our consoles end the command with EXIT_READER_GONE
        # (app._Console.on_broken_pipe); typer's own echo ends it with 1 after making stdout swallow the broken pipe
        if e.code == EXIT_READER_GONE or (e.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper"):
            return EXIT_READER_GONE
        raise
    finally:
        warnings.formatwarning = formatted


def _given(argv: list[str], opts: list[str]) -> str | None:
    """The last value given on the command line to an option named by one of `opts` ("--port 0" or "--port=0"), as
    typed; None when it is not there."""
    found = None
    for i, a in enumerate(argv):
        for o in opts:
            if a == o and i + 1 < len(argv):
                found = argv[i + 1]
            elif a.startswith(o + "="):
                found = a[len(o) + 1 :]
    return found


# options whose empty value says "the default" ('--streams ""' records every stream); any other option given an empty
# value is refused as empty (an unset shell variable): Path('') is the current directory, a model id '' is no id
EMPTY_MEANS_DEFAULT = {"streams"}


def _empty_argument(argv: list[str]) -> tuple[str, str] | None:
    """(the command's path, the parameter's name) of the first empty or blank value given to an option (but those of
    EMPTY_MEANS_DEFAULT: "--out ''", "--model ''") or as a positional argument (an OUT_DIR or SOURCE of ''), else
    None. Path('') is Path('.'), so a callback cannot tell '' from '.': an empty
    path (an unset shell variable) would have written into, or with --overwrite over, the current directory."""
    if all(a.strip() and not (a.startswith("-") and "=" in a and not a.split("=", 1)[1].strip()) for a in argv):
        return None  # nothing blank: the command tree (60 ms to build) is not needed on every start
    import typer.main

    command = typer.main.get_command(app)
    words = [PROG]
    i = 0
    while i < len(argv) and hasattr(command, "commands") and argv[i] in command.commands:
        command = command.commands[argv[i]]
        words.append(argv[i])
        i += 1
    options = {o: p for p in command.params if p.param_type_name == "option" for o in p.opts + p.secondary_opts}
    positional = iter([p for p in command.params if p.param_type_name == "argument"])
    current = None
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        name = a.split("=", 1)[0]
        if a.startswith("-") and name in options:
            p = options[name]
            if "=" in a:
                value = a.split("=", 1)[1]
            elif getattr(p, "is_flag", False) or getattr(p, "count", False):
                i += 1
                continue
            else:
                value = argv[i + 1] if i + 1 < len(argv) else None
                i += 1
            if value is not None and not value.strip() and p.name not in EMPTY_MEANS_DEFAULT:
                return " ".join(words), max(p.opts, key=len)  # its long name, as the help lists it
        elif not a.startswith("-") or a == "-":
            if current is None or current.nargs == 1:
                current = next(positional, None)
            if current is not None and not a.strip():  # no argument (a path, a source spec) can be empty
                return " ".join(words), current.name.upper()
        i += 1
    for a in argv[i:]:  # after "--": positionals only
        current = current if current is not None and current.nargs != 1 else next(positional, None)
        if current is not None and not a.strip():
            return " ".join(words), current.name.upper()
    return None


def _undecodable_argument(argv: list[str]) -> str | None:
    """The first command-line argument that is not valid text (bytes that are not UTF-8 arrive as lone surrogates,
    which no log, JSON file or tokenizer downstream can take), shown as ASCII; None when all are text."""
    for a in argv:
        try:
            str(a).encode("utf-8")
        except UnicodeEncodeError:
            return ascii(str(a))
    return None


def _main(argv: list[str] | None) -> int:
    console.reader_gone = console_err.reader_gone = False  # (main may run many times in one process: the tests)
    console.write_failure = console_err.write_failure = None
    bad = _undecodable_argument(sys.argv[1:] if argv is None else argv)
    if bad is not None:
        _print_error(
            f"an argument is not valid UTF-8 text: {bad}",
            "pass names, paths and questions as UTF-8 (rename a file whose name is not)",
        )
        return 2
    empty = _empty_argument(list(sys.argv[1:] if argv is None else argv))
    if empty is not None:
        _print_error(f"{empty[1]} is empty", f"see '{empty[0]} --help'")
        return 2
    try:
        rv = app(args=argv, prog_name=PROG, standalone_mode=False)
    except GazeQwenError as e:
        hint = e.hint  # without one, the command's help is where to read on
        if hint is None:
            hint = f"see '{_command_path(sys.argv[1:] if argv is None else argv)} --help'"
        _print_error(e.message, hint)
        return e.exit_code
    except _click_errors.NoArgsIsHelpError as e:  # a group called without a command: its help is the answer
        text = e.format_message()
        if text.strip():
            console_err.print(text, markup=False)
        return e.exit_code
    except _click_errors.UsageError as e:
        command = e.ctx.command_path if e.ctx is not None else PROG
        message = e.format_message()
        if isinstance(e, _click_errors.BadParameter):  # an integer out of its range: said as our own checks say it
            given = _given(sys.argv[1:] if argv is None else argv, getattr(e.param, "opts", []))
            message = int_option_problem(e.param, given) or message
        _print_error(message, f"see '{command} --help'")
        return e.exit_code
    except _click_errors.ClickException as e:
        _print_error(e.format_message())
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C, or the end of input at a prompt
        _print_error("aborted")
        return 130
    except OSError as e:
        if e.errno not in OUTPUT_ERRNOS:
            raise
        # a write the disk refused, from any command (a results file, a checkpoint, click's own --help to stdout):
        # the file's path when the error carries one (open() fails carry it, later writes do not)
        message, hint = stream_failure(e, str(e.filename) if e.filename else "an output file")
        if _command_name(argv) in RESUMABLE:
            hint = disk_hint(e.errno, "that disk", resumable=True)
        _print_error(message, hint)
        return 3
    if rv == 130:  # typer turns a Ctrl-C inside a command into a silent Exit(130): say so, and how to go on
        command = _command_name(argv)
        console_err.print("interrupted (Ctrl-C)", markup=False)
        if command in RESUMABLE:
            console_err.print("  hint: what was done is kept; rerun the same command to resume", markup=False)
        elif command in INTERRUPTED_HINTS:
            console_err.print(f"  hint: {INTERRUPTED_HINTS[command]}", markup=False)
    rv = rv if isinstance(rv, int) else 0
    if rv == 0 and console.write_failure is not None:  # stdout refused an answer while the session went on
        _print_error(*stream_failure(console.write_failure, "stdout"))
        return 3
    if rv == 0 and console.reader_gone:  # the reader of stdout left during the command (a session's answers are kept)
        return EXIT_READER_GONE
    return rv


def run() -> None:
    rv = main()
    try:  # what is still buffered for stdout, now rather than in the interpreter's shutdown ("Exception ignored")
        sys.stdout.flush()
    except OSError as e:
        silence(sys.stdout)
        if rv == 0 and e.errno in OUTPUT_ERRNOS:
            _print_error(*stream_failure(e, "stdout"))
            rv = 3
    sys.exit(rv)
