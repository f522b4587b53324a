"""Where the command line writes: file paths on stdout, everything else on stderr.

stdout carries only what a script would pipe on (the saved image paths, one a line); the
progress display, notes, the summary and errors go to stderr. On a terminal the progress
line is redrawn in place and cleared before any other line is written, so lines never mix.
"""

from __future__ import annotations

import sys
from typing import TextIO


class CliError(Exception):
    """A problem the command reports as one ``error: ...`` line and exit code 1."""


class Console:
    """Writes lines to stdout/stderr, keeping a live status line on a terminal's stderr."""

    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, *, live: bool | None = None
    ) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        isatty = getattr(self.err, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self._status = ""

    def result(self, line: str) -> None:
        """A line of the command's output (stdout)."""
        self._clear()
        print(line, file=self.out, flush=True)
        self._redraw()

    def note(self, line: str) -> None:
        """A line for the person watching (stderr)."""
        self._clear()
        print(line, file=self.err, flush=True)
        self._redraw()

    def error(self, message: str) -> None:
        """``error: <message>`` on stderr."""
        self.note(f"error: {message}")

    def status(self, line: str) -> None:
        """Replace the live status line (terminals only; ignored otherwise)."""
        if not self.live:
            return
        self._clear()
        self._status = line
        self._redraw()

    def end_status(self) -> None:
        """Remove the live status line for good."""
        self._clear()
        self._status = ""

    def _clear(self) -> None:
        if self.live and self._status:
            self.err.write("\r\x1b[K")
            self.err.flush()

    def _redraw(self) -> None:
        if self.live and self._status:
            self.err.write(self._status)
            self.err.flush()
