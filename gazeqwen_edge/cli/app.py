"""The typer application the command modules register on, and the consoles every command prints through."""

from __future__ import annotations

import os
import sys

import typer
from rich import box
from rich.console import Console, ConsoleDimensions, RenderHook
from rich.segment import Segment
from rich.table import Table
from typer import rich_utils
from typer.core import TyperGroup

from gazeqwen_edge.errors import DeviceError, disk_hint, printable

# Width of a line written to a pipe or a file: wide enough that rich never wraps or cuts one (a data line stays one
# line for grep, awk and log files); a table is still only as wide as its cells.
UNWRAPPED_WIDTH = 10_000


EXIT_READER_GONE = 141  # 128 + SIGPIPE: the exit status `yes | head -1` or `git log | head -1` give the writer


def silence(stream) -> None:
    """Point the file descriptor under `stream` at /dev/null: what is still to be written to a stream whose reader
    left or whose disk is full goes nowhere, quietly (also the interpreter's last flush at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def stream_failure(e: OSError, where: str) -> tuple[str, str]:
    """The error line and hint for an output that refused a write (`where`: a file's path, stdout, stderr): a full
    disk or quota (ENOSPC, EDQUOT, EFBIG), a read-only file system, an I/O error."""
    return f"cannot write {where}: {e.strerror or e}", disk_hint(e.errno, "the disk it goes to") + (
        "; what was written before is kept"
    )


class _Printable:
    """A renderable drawn as `inner` is, with control characters in its text shown as U+FFFD (errors.printable):
    rich's own control segments (cursor moves of a progress bar) and the styles rich writes stay as they are."""

    def __init__(self, inner):
        self.inner = inner

    def __rich_console__(self, console, options):
        for seg in console.render(self.inner, options):
            yield seg if seg.control or not seg.text else Segment(printable(seg.text), seg.style)


class _PrintableText(RenderHook):
    """The render hook that passes everything a console prints through `_Printable`: a file name, a wearer, an
    option text or a table cell holding an escape sequence (ESC [ 2 J) or a C1 control (U+009B, a one-character CSI)
    reaches the terminal as U+FFFD, not as a command to it. The typed data keeps its characters: only what is shown
    changes."""

    def process_renderables(self, renderables):
        return [_Printable(r) for r in renderables]


class _Console(Console):
    """A rich Console for people and pipes.

    On a terminal it is rich's own console (its width, colours when the terminal has them). Written to a pipe or a file
    (not a terminal, COLUMNS not set): no colour codes (rich's own detection), lines never wrapped or cut at rich's
    default 80 columns, tables as markdown tables (print), and a reader that goes away ends the command with
    EXIT_READER_GONE (on_broken_pipe). Everywhere: no automatic highlighting (rich's ReprHighlighter would style
    '1600x1200' as the number 160 and the hex number 0x1200, and colour numbers inside data), no ':name:' emoji
    replacement (in paths and specs such as 'synthetic:1'), and long text lines are left for the terminal to wrap
    (soft_wrap)."""

    def __init__(self, **kw):
        super().__init__(soft_wrap=True, highlight=False, emoji=False, **kw)
        self.push_render_hook(_PrintableText())
        self.reader_gone = False
        self.write_failure: OSError | None = None  # the stream refused a write other than a closed pipe (print)

    def on_broken_pipe(self) -> None:
        """The reader of this console's stream went away (`gazeqwen-edge inspect X | head -1`): what is still to be
        written goes to /dev/null and the command ends with EXIT_READER_GONE, quietly, as Unix tools end (rich's own
        exit 1 read as an error)."""
        self.reader_gone = True  # a session's terminal sink drops out and the session goes on: cli.main reports it
        silence(self.file)
        raise SystemExit(EXIT_READER_GONE)

    def print(self, *objects, **kw) -> None:
        """rich's print; written to a pipe or a file, a table is a markdown table ('| a | b |', ASCII, no lines of
        padding spaces), which grep, awk and markdown viewers read, instead of box-drawing characters.

        A stream that refuses the write (`> /dev/full`, a full disk, an I/O error; a closed pipe is on_broken_pipe's)
        raises DeviceError, once: what is still to be written goes to /dev/null, `write_failure` keeps the error
        and cli.main ends the command with it (a session's terminal sink drops out and the session goes on)."""
        try:
            self._print(*objects, **kw)
        except BrokenPipeError:
            raise
        except OSError as e:
            self.write_failure = e
            silence(self.file)
            raise DeviceError(*stream_failure(e, "stderr" if self.stderr else "stdout")) from e

    def _print(self, *objects, **kw) -> None:
        if self.is_terminal or not any(isinstance(o, Table) for o in objects):
            super().print(*objects, **kw)
            return
        for o in objects:
            if not isinstance(o, Table):
                super().print(o, **kw)
                continue
            o.box = box.MARKDOWN
            o.show_lines = False  # a separator inside a markdown table would read as a row of dashes
            for row in o.rows:
                row.end_section = False
            with self.capture() as captured:
                super().print(o, **kw)
            lines = [line.rstrip() for line in captured.get().splitlines()]
            super().print("\n".join(line for line in lines if line), markup=False, highlight=False)

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        if self.is_terminal or self._width is not None or self._environ.get("COLUMNS"):
            return size
        return ConsoleDimensions(UNWRAPPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


# --help written to a pipe or a file (not a terminal, COLUMNS and TERMINAL_WIDTH not set): click's plain help, as
# `less` or `grep` expect it: no box drawing, no lines padded with spaces, wrapped at 80 columns. Options and their
# defaults are never cut (rich's help, laid out for 80 columns, cut run's --streams default with "..."), nor are
# the command summaries (HelpGroup). A terminal keeps typer's rich help at its own width. Sub-groups take the root's
# mode.
HELP_PIPED = (
    rich_utils.MAX_WIDTH is None
    and not (sys.stdout is not None and sys.stdout.isatty())
    and not os.environ.get("COLUMNS")
)
HELP_MARKUP = None if HELP_PIPED else "rich"
# click wraps plain help with textwrap, which by default breaks a line after any hyphen inside a word: "agx-orin,
# orin-" / "nx", "[default: question-" / "view]", so a grep for a value finds half of it. Plain help breaks at spaces
# only: the wrap_text of typer's copy of click (typer._click.formatting) imports its _textwrap.TextWrapper on each
# call, and gets this subclass (a word longer than a line is still cut).
if HELP_PIPED:
    from typer._click import _textwrap

    class _SpaceWrapper(_textwrap.TextWrapper):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "break_on_hyphens": False})

    _textwrap.TextWrapper = _SpaceWrapper


class HelpGroup(TyperGroup):
    """A command group whose plain (piped) help lists each command's summary whole, wrapped, where click cut it to
    one line with "..." ('info  Show the version, the installed optional stacks...'). Rich help is unchanged. Every
    group of the command tree is one (cls=HelpGroup)."""

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=HelpGroup,
    name="gazeqwen-edge",
    help="Gaze-aware Qwen2.5-VL (GazeQwen) on the edge: Pupil Labs Neon live and replay, export, training, evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=HELP_MARKUP,
)
console = _Console()
console_err = _Console(stderr=True)


@app.command("info")
def info() -> None:
    """Show the version, the installed optional stacks (extras) and the compute devices found."""
    import importlib.util

    from gazeqwen_edge import __version__

    console.print(f"gazeqwen-edge {__version__}")
    extras = {
        "device": ["pupil_labs.realtime_api", "pupil_labs.neon_recording", "av", "cv2", "scipy"],
        "onnx": ["onnx", "onnxruntime"],
        "quant": ["bitsandbytes"],
        "gpu": ["onnxruntime", "tensorrt"],
        "speech": ["faster_whisper"],
        "profile": ["matplotlib"],
        "train": ["peft", "accelerate"],
    }
    for extra, mods in extras.items():
        missing = []
        for m in mods:
            try:
                found = importlib.util.find_spec(m) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                missing.append(m)
        state = "[green]installed[/]" if not missing else f"[yellow]missing {', '.join(missing)}[/]"
        console.print(f"  extra {extra:7s} {state}")
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    console.print(f"  torch {torch.__version__}, CUDA device: {cuda}")


def _print_version(value: bool) -> None:
    if value:
        from gazeqwen_edge import __version__

        console.print(f"gazeqwen-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        expose_value=False,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Gaze-aware Qwen2.5-VL (GazeQwen) on the edge."""
