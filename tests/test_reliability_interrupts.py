"""Reliability, class 7: interrupts. A Ctrl-C (a real SIGINT to a real process) at any moment
of a sync ``submit()`` leaves no queue item that would run after the script exits, and the
local server harness stops InvokeAI (and removes its temporary root) on SIGINT and SIGTERM.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from invokeai_client import Client

from .conftest import Peer
from .test_runs import add_graph
from .test_sync import sync_peer  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROOT = Path(__file__).resolve().parents[1]

HOLD_GUARD = 60.0
"""Only keeps a broken test from hanging: the events it waits for come at once."""

SUBMITTER = """
import json, sys
from invokeai_client import Client
graph = json.loads(sys.argv[2])
with Client(sys.argv[1]) as client:
    print("ready", flush=True)
    while True:
        client.runs.submit(graph)
"""


def _interrupted_submitter(url: str, delay: float) -> subprocess.CompletedProcess[str]:
    """A script submitting in a loop, interrupted by SIGINT ``delay`` s after it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-c", SUBMITTER, url, json.dumps(add_graph(2, 3))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def paused(sync_peer: Peer) -> Iterator[Client]:  # noqa: F811
    """A client of the peer whose queue processor is paused: every item stays pending."""
    with Client(sync_peer.url) as client:
        client.queue.pause()
        client.queue.clear()
        try:
            yield client
        finally:
            client.queue.clear()
            client.queue.resume()


def test_ctrl_c_at_any_moment_of_submit_leaves_nothing_to_run(
    paused: Client, sync_peer: Peer  # noqa: F811
) -> None:
    trials = 12 if sync_peer.kind == "double" else 4
    rng = random.Random(10)
    for trial in range(trials):
        done = _interrupted_submitter(sync_peer.url, rng.uniform(0.05, 0.6))
        assert done.returncode != 0, done.stdout  # it was interrupted
        assert "KeyboardInterrupt" in done.stderr
        status = paused.queue.status().queue
        assert (trial, status.pending, status.in_progress) == (trial, 0, 0), done.stderr
    assert paused.queue.status().queue.canceled > 0  # the scripts did submit


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HOLD_GUARD
    while not condition():
        assert time.monotonic() < deadline, "the call did not get that far"
        time.sleep(0.005)


@pytest.mark.parametrize("moment", ["before-start", "after-start", "finished"])
def test_an_interrupt_right_after_scheduling_cancels_the_call(
    paused: Client, moment: str
) -> None:
    """The narrow window a real signal rarely hits: the call is scheduled on the client's
    loop, and the interrupt lands before the caller starts waiting for it: before the loop
    thread starts the call (it never starts), just after (its enqueue is finished and
    canceled in the background), or once the call has returned its run, which the caller
    never gets (the run is abandoned: its item canceled). Either way nothing is left to run
    and nothing is tracked."""
    loop = paused._bridge._loop
    assert loop is not None
    schedule = loop.call_soon_threadsafe
    hub = paused.aio.runs._hub
    release = threading.Event()
    ran = threading.Event()

    def schedule_then_interrupt(*args: object, **kwargs: object) -> object:
        loop.call_soon_threadsafe = schedule  # type: ignore[method-assign]
        if moment == "before-start":  # hold the loop until the caller handled the interrupt
            schedule(release.wait, HOLD_GUARD)
        schedule(*args, **kwargs)  # type: ignore[arg-type]
        if moment == "finished":  # the server's answer is in: the call ends in this step
            _wait_for(lambda: any(batch.confirmed for batch in list(hub.batches.values())))
        if moment != "before-start":  # let the loop thread run the call (that far)
            schedule(ran.set)
            assert ran.wait(HOLD_GUARD)
        raise KeyboardInterrupt

    loop.call_soon_threadsafe = schedule_then_interrupt  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            paused.runs.submit(add_graph(4, 5))
    finally:
        release.set()  # the caller has handled it (not a timer: a loaded machine is slow)
    if moment == "before-start":
        assert paused._bridge.call_plain(lambda: list(paused.aio.runs.batches)) == []
    deadline = time.monotonic() + 30
    while paused._bridge.call_plain(lambda: paused.aio.runs.batches):
        assert time.monotonic() < deadline, paused.aio.runs.batches
        time.sleep(0.05)
    status = paused.queue.status().queue
    assert (status.pending, status.in_progress) == (0, 0)


def _processes_using(root: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if root.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.real  # starts the real InvokeAI
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_serve_command_stops_invokeai_on_a_signal(stop_signal: signal.Signals) -> None:
    # As a shell's background job: SIGINT ignored on the way in (Python then has no Ctrl-C).
    with subprocess.Popen(
        [sys.executable, "-m", "invokeai_client.testing.local", "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    ) as process:
        try:
            assert process.stdout is not None
            ready = process.stdout.readline()
            assert "ready at" in ready, process.stderr.read() if process.stderr else ""
            root = ready.rsplit("root ", 1)[1].rstrip(")\n")
            assert Path(root).is_dir()
            assert _processes_using(root)  # InvokeAI runs with this root
            process.send_signal(stop_signal)
            process.communicate(timeout=60)
            assert process.returncode == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert not Path(root).exists()
    assert _processes_using(root) == []
