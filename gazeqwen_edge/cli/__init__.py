"""The `gazeqwen-edge` command. Thin: parses options and calls the packages.

Each command group lives in its own module of this package and registers itself on `app` (see app.py); heavy imports
(torch, av, the Neon client) happen inside the command functions so `--help` stays fast.
"""

from __future__ import annotations

import sys

from rich.markup import escape

from gazeqwen_edge.cli.app import app, console_err
from gazeqwen_edge.errors import GazeQwenError

# Importing the command modules registers their commands on `app`.
from gazeqwen_edge.cli import model as _model  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import calibration as _calibration  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import device as _device  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import neon as _neon  # noqa: E402,F401  isort: skip
from gazeqwen_edge.cli import runtime as _runtime  # noqa: E402,F401  isort: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point. Usage errors are reported by typer (exit 2); user errors (GazeQwenError) print one clear message
    and exit with the error's code, without a traceback; anything else is a bug and keeps its traceback."""
    try:
        app(args=argv, prog_name="gazeqwen-edge")
    except GazeQwenError as e:
        # messages carry file names and CSV columns such as 'timestamp [ns]': never read them as rich markup/emoji
        console_err.print(f"[bold red]error:[/] {escape(e.message)}", highlight=False, emoji=False, soft_wrap=True)
        if e.hint:
            console_err.print(f"  [yellow]hint:[/] {escape(e.hint)}", highlight=False, emoji=False, soft_wrap=True)
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def run() -> None:
    sys.exit(main())
