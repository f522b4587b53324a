"""The commands in a real terminal (a pty that is both stdout and stderr, as for every
interactive user): the saved paths and rich's live progress bar never share a screen line.

The bytes the terminal receives are replayed on a small screen model (carriage return, line
feed, erase-line, cursor up/down/column, wrapping at the terminal's width), and the screen
that results is what the user sees.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import anyio.to_thread
import pytest

from invokeai_client.types.model_configs import ModelConfig
from invokeai_client.workflows import examples

from .conftest import Peer
from .test_cli import cli_env, pngs

BAR = ("━", "╺", "╸")
CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b[()][A-Za-z0-9]|\x1b[=>]")
TIMEOUT = 600  # a bound for a stuck command, not a speed expectation


def on_terminal(args: list[str], *, columns: int, rows: int = 40) -> tuple[int, bytes]:
    """Run ``python -m invokeai_client.cli *args`` with stdout and stderr on one pty of the
    given size; its exit code and every byte it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in cli_env().items()
           if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM")}
    process = subprocess.Popen(
        [sys.executable, "-m", "invokeai_client.cli", *args], stdin=slave, stdout=slave,
        stderr=slave, env={**env, "TERM": "xterm-256color"}, close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], TIMEOUT)
            if not ready:
                raise AssertionError(f"no output for {TIMEOUT} s: {b''.join(chunks)[-2000:]!r}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the pty has closed it
                break
            if not data:
                break
            chunks.append(data)
        return process.wait(TIMEOUT), b"".join(chunks)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def screen(data: bytes, columns: int) -> list[str]:
    """The lines a terminal of ``columns`` shows after receiving ``data`` (a line the
    terminal wrapped is given whole)."""
    lines: list[list[str]] = [[]]
    wrapped: set[int] = set()  # rows that continue the row above (the terminal wrapped)
    row = col = 0
    text = data.decode("utf-8", "replace")
    position = 0
    while position < len(text):
        match = CSI.match(text, position)
        if match:
            position = match.end()
            number, final = match.group(1) or "", match.group(2)
            count = int(number) if number.isdigit() else 1
            if final == "A":
                row = max(0, row - count)
            elif final == "B":
                row += count
            elif final == "G":
                col = count - 1
            elif final == "K":
                line = lines[row] if row < len(lines) else []
                lines[row] = [] if number == "2" else line[:col]
                if number == "2":
                    wrapped.discard(row)
            while len(lines) <= row:
                lines.append([])
            continue
        char = text[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
        elif char >= " ":
            if col >= columns:  # the terminal wraps a line longer than itself
                row, col = row + 1, 0
                wrapped.add(row)
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        while len(lines) <= row:
            lines.append([])
    shown: list[str] = []
    for number, line in enumerate(lines):
        text = "".join(line)
        if number in wrapped and shown:
            shown[-1] += text
        else:
            shown.append(text)
    return [line.rstrip() for line in shown]


def check_screen(lines: list[str], saved: list[Path]) -> None:
    """Every saved path is a line of its own, and no line shows a bar and a path."""
    assert saved
    glued = [line for line in lines if ".png" in line and any(g in line for g in BAR)]
    assert glued == [], "\n".join(lines)
    shown = sorted(line.strip() for line in lines if ".png" in line)
    assert shown == sorted(str(path) for path in saved), "\n".join(lines)
    assert any(any(g in line for g in BAR) for line in lines)  # the bar was drawn


def test_the_screen_model_replays_rich_redraws() -> None:
    data = b"abc\r\x1b[2Kxy\nbar \xe2\x94\x81\r\n\x1b[1A\x1b[2K/p.png\nbar\x1b[1G\x1b[K12"
    assert screen(data, 80) == ["xy", "/p.png", "12"]
    assert screen(b"abcdef\nx", 4) == ["abcdef", "x"]


@pytest.mark.anyio
@pytest.mark.parametrize("columns", [120, 40])
async def test_run_in_a_terminal_prints_each_path_on_its_own_line(
    double: Peer, tmp_path: Path, columns: int
) -> None:
    args = ["run", "--url", double.url, "--workflow", str(examples.path("noise-sweep")),
            "--sweep", "Seed=1..12", "--out", str(tmp_path / "out")]
    code, data = await anyio.to_thread.run_sync(lambda: on_terminal(args, columns=columns))
    assert code == 0, data.decode(errors="replace")
    check_screen(screen(data, columns), pngs(tmp_path / "out"))


@pytest.mark.anyio
async def test_batch_in_a_terminal_prints_each_path_on_its_own_line(
    double: Peer, tmp_path: Path
) -> None:
    args = ["batch", str(examples.path("noise-sweep")), "--server", double.url,
            "--sweep", "Seed=1..8", "--out", str(tmp_path / "out")]
    code, data = await anyio.to_thread.run_sync(lambda: on_terminal(args, columns=120))
    assert code == 0, data.decode(errors="replace")
    check_screen(screen(data, 120), pngs(tmp_path / "out"))


@pytest.mark.real
def test_generate_in_a_terminal_prints_each_path_on_its_own_line(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    args = ["generate", "--url", real_server.url, "a boat", "--model", "tiny-sd1",
            "--seeds", "1..4", "--width", "64", "--height", "64", "--steps", "2",
            "--out", str(tmp_path / "out")]
    code, data = on_terminal(args, columns=120)
    assert code == 0, data.decode(errors="replace")
    check_screen(screen(data, 120), pngs(tmp_path / "out"))
