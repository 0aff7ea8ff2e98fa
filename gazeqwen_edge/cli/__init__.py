"""The `gazeqwen-edge` command. Thin: parses options and calls the packages.

Each command group lives in its own module of this package and registers itself on `app` (see app.py); heavy imports
(torch, av, the Neon client) happen inside the command functions so `--help` stays fast.
"""

from __future__ import annotations

import sys

from gazeqwen_edge.cli.app import app, console_err
from gazeqwen_edge.errors import GazeQwenError

# Importing the command modules registers their commands on `app`.
from gazeqwen_edge.cli import model as _model  # noqa: E402,F401  isort: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app; user errors print one clear message and exit non-zero without a traceback."""
    try:
        app(args=argv, prog_name="gazeqwen-edge", standalone_mode=False)
    except GazeQwenError as e:
        console_err.print(f"[bold red]error:[/] {e.message}", highlight=False)
        if e.hint:
            console_err.print(f"  [yellow]hint:[/] {e.hint}", highlight=False)
        return e.exit_code
    except KeyboardInterrupt:
        console_err.print("interrupted")
        return 130
    except SystemExit as e:  # typer.Exit / click usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:  # click errors (usage, bad parameter) come here in non-standalone mode
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if isinstance(e, click.exceptions.Abort):
            console_err.print("aborted")
            return 1
        raise
    return 0


def run() -> None:
    sys.exit(main())
