"""How a command ends early, one policy for all of them: Ctrl-C, SIGTERM, or stdout's reader
going away (``invokeai-client ... | head -1``).

The first of these cancels the command's main task once; the command then winds down its own
way (``run`` and ``generate`` cancel their batch on the server and write ``results.json``;
``batch`` stops sending and leaves its job to ``--resume``) and exits with 130, or with 141
(128 + SIGPIPE, as ``yes | head -1`` does) when stdout was closed. A second signal stops
waiting for that wind-down. See docs/cli.md, "Ctrl-C and a closed stdout".
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._console import EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, Console


@dataclass
class Interrupt:
    """Cancels ``task`` on the first Ctrl-C / SIGTERM / closed stdout (saying ``doing``), and
    again on each further signal; ``code`` is the exit code the command returns."""

    task: asyncio.Task[Any]
    console: Console
    doing: str
    """What the command does when interrupted, e.g. "canceling the batch on the server"."""
    count: int = 0
    code: int = EXIT_INTERRUPTED

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            self.console.note(f"interrupted: {self.doing} (Ctrl-C again to stop waiting)")
        self.task.cancel()

    def out_closed(self) -> None:
        """stdout's reader went away: wind down as after Ctrl-C, exit 141."""
        if self.count:
            return
        self.count += 1
        self.code = EXIT_PIPE_CLOSED
        self.console.note(f"stdout was closed: {self.doing}")
        self.task.cancel()

    def caught(self) -> bool:
        """Whether the task's cancellation is this interrupt's (then it is forgotten, so the
        wind-down's own awaits run); any other cancellation must propagate."""
        if not self.count:
            return False
        uncancel = getattr(self.task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        return True


@contextlib.contextmanager
def interruptible(console: Console, doing: str) -> Iterator[Interrupt]:
    """Route Ctrl-C, SIGTERM and a closed stdout to an :class:`Interrupt` of the running
    task for the block (call it inside the command's coroutine)."""
    task = asyncio.current_task()
    assert task is not None
    interrupt = Interrupt(task, console, doing)
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, interrupt)
            handled.append(sig)
    console.on_out_closed = interrupt.out_closed
    try:
        yield interrupt
    finally:
        console.on_out_closed = None
        for sig in handled:
            loop.remove_signal_handler(sig)
