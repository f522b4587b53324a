"""Where the command line writes: results on stdout, everything else on stderr.

stdout carries only what a script would pipe on (the saved image paths one a line, or with
``--json`` one JSON object a line); notes, progress, the summary and errors go to stderr.
On a terminal the progress display is drawn by rich on stderr; notes (and the result lines,
when stdout is that same terminal) are printed above it through rich, so lines never mix.
When the reader of stdout goes away (``... | head -1``) the console stops writing there and
tells the command once, which winds down quietly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import rich.console
    import rich.progress

EXIT_OK = 0
EXIT_ERROR = 1
"""An error not covered below (the server refused a request, a file could not be written)."""
EXIT_USAGE = 2
"""The command line itself is wrong (argparse's own code)."""
EXIT_INPUT = 3
"""Bad input: the workflow file, a label or value, a board name, missing models, credentials."""
EXIT_UNREACHABLE = 4
"""No server: the URL cannot be reached, or the local InvokeAI could not be started."""
EXIT_ITEMS_FAILED = 5
"""The batch ran, but some items failed, were canceled or their images not saved."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM (128 + SIGINT)."""
EXIT_PIPE_CLOSED = 141
"""The reader of stdout went away (128 + SIGPIPE, as other Unix tools exit)."""


class CliError(Exception):
    """A problem the command reports as one ``error: ...`` line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


class Console:
    """Writes lines to stdout/stderr; keeps a rich progress display on a terminal's stderr.

    ``live`` (default: whether stderr is a terminal) turns the rich display on; ``width``
    fixes its width (default: the terminal's).
    """

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        live: bool | None = None,
        width: int | None = None,
    ) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        isatty = getattr(self.err, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self.width = width
        self.out_closed = False
        self.on_out_closed: Callable[[], None] | None = None
        """Called once when stdout's reader goes away."""
        self._rich: rich.console.Console | None = None
        self._display: rich.progress.Progress | None = None

    # -- stdout --------------------------------------------------------------------------

    def result(self, line: str) -> None:
        """A line of the command's output (stdout); dropped once stdout's reader is gone."""
        if self.out_closed:
            return
        if self._display is not None and self._out_is_the_terminal():
            # Through the live console: rich clears its display, prints, then redraws it.
            self.stderr_console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        try:
            print(line, file=self.out, flush=True)
        except (BrokenPipeError, ValueError):
            self._out_gone()

    def _out_is_the_terminal(self) -> bool:
        """Whether stdout is the terminal the live display draws on (as for every
        interactive user): then writing to it directly would glue lines to the bar."""
        try:
            out, err = self.out.fileno(), self.err.fileno()
            return os.isatty(out) and os.path.samestat(os.fstat(out), os.fstat(err))
        except (OSError, ValueError, AttributeError):
            return False

    def _out_gone(self) -> None:
        self.out_closed = True
        # Point the descriptor at /dev/null so the interpreter's final flush stays quiet.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)
        if self.on_out_closed is not None:
            self.on_out_closed()

    # -- stderr --------------------------------------------------------------------------

    def note(self, line: str) -> None:
        """A line for the person watching (stderr), above the progress display if any."""
        if self._display is not None:
            self.stderr_console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(line, file=self.err, flush=True)

    def error(self, message: str) -> None:
        """``error: <message>`` on stderr."""
        self.note(f"error: {message}")

    @property
    def stderr_console(self) -> rich.console.Console:
        """The rich console drawing on stderr (made on first use)."""
        if self._rich is None:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(
                file=self.err, force_terminal=self.live or None, width=self.width,
                highlight=False, soft_wrap=False,
            )
        return self._rich

    @contextlib.contextmanager
    def display(self, progress: rich.progress.Progress) -> Iterator[None]:
        """Show ``progress`` (a rich Progress on this console) for the block."""
        self._display = progress
        progress.start()
        try:
            yield
        finally:
            progress.stop()
            self._display = None
