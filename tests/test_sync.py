"""The sync Client: the whole async API, blocking, from a plain thread, on both peers.

The sync client must not run inside the test's event loop (it refuses to), so async tests
run the sync code in a worker thread (``in_thread``), while the test loop keeps serving the
double. Tests that need the main thread (Ctrl-C) are plain sync tests against ``sync_peer``:
the real server, or a double served from a background thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import io
import json
import logging
import signal
import subprocess
import sys
import threading
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pytest
from anyio.from_thread import start_blocking_portal

from invokeai_client import (
    AsyncClient,
    BatchRun,
    BoardRepository,
    Client,
    ConnectionError,
    ImageRef,
    ImageRepository,
    InvokeAIError,
    ModelInstall,
    ModelRepository,
    NodeCompleted,
    NotFoundError,
    QueueRepository,
    RunCanceledError,
    RunFailedError,
    RunManager,
    RunningLoopError,
    RunTimeoutError,
    StatusChanged,
    ValidationError,
    WorkflowDefinition,
    WorkflowHandle,
    WorkflowResult,
    WorkflowRun,
)
from invokeai_client.repositories.images import UploadScope
from invokeai_client.repositories.workflows import WorkflowRepository
from invokeai_client.sync import (
    THREAD_NAME,
    Proxy,
    SyncBatchRun,
    SyncBoards,
    SyncImageRef,
    SyncImages,
    SyncModelInstall,
    SyncModels,
    SyncQueue,
    SyncRuns,
    SyncUploadScope,
    SyncWorkflowHandle,
    SyncWorkflowResult,
    SyncWorkflowRun,
    SyncWorkflows,
)
from invokeai_client.sync._bridge import Bridge, _wait
from invokeai_client.sync._proxy import unwrap, wrap
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.testing.local import free_port
from invokeai_client.workflows import examples

from .conftest import PEERS, Peer
from .helpers import node_of, png
from .test_runs import add_graph, div_graph, needs_queue

T = TypeVar("T")

PNG = png()


async def in_thread(fn: Callable[[], T]) -> T:
    """Run the sync code ``fn`` in a worker thread (no event loop there)."""
    return await anyio.to_thread.run_sync(fn)


@pytest.fixture(params=PEERS)
def sync_peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """A peer for plain sync tests: the real server, or a double served by its own thread."""
    if request.param == "real":
        yield request.getfixturevalue("real_server")
        return
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(InvokeAIDouble()) as double,
    ):
        yield Peer("double", double.url, double=double)


# -- the public surface ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_bundled_workflow_runs_to_its_value(peer: Peer) -> None:
    needs_queue(peer)

    def script() -> dict[str, Any]:
        with Client(peer.url) as client:
            info = client.server_info()
            wf = client.workflows.load(examples.path("arithmetic-form"))
            math = node_of(wf, "integer_math")
            assert isinstance(wf, SyncWorkflowHandle)
            assert [i.label for i in wf] == [i.label for i in wf.inputs]
            graph_before = wf.build_graph()
            assert wf.set("A", 3).set("B", 5) == wf  # plain methods pass through, chain
            assert wf.get("A") == 3
            run = wf.submit(destination="sync-tests")
            assert isinstance(run, SyncWorkflowRun)
            result = run.result(timeout=120)
            events = list(run.events())  # replayed after the end: the whole story
            wf.update({"A": 4}, B=6)
            again = wf.submit().wait()
            record = client.workflows.create(wf)  # the proxy stands in for the handle
            saved = client.workflows.get(record.workflow_id)
            client.workflows.delete(record.workflow_id)
            assert saved.get("A") == 4
            return {
                "info": info, "math": math, "run": run, "result": result, "events": events,
                "again": again, "graph_changed": graph_before != wf.build_graph(),
                "connected": client.is_connected, "base_url": client.base_url,
            }

    out = await in_thread(script)
    result, run = out["result"], out["run"]
    assert out["info"].version.startswith("6.")
    assert isinstance(result, SyncWorkflowResult)
    assert result.ok
    assert result.status == "completed"
    assert result[out["math"]] == 15
    assert result.outputs[out["math"]] == 15
    assert result.item_id == run.item_id
    assert run.done
    assert run.status == "completed"
    assert run.batch.destination == "sync-tests"
    assert out["again"][out["math"]] == 24
    assert out["graph_changed"]
    assert out["connected"]
    assert out["base_url"].startswith(peer.url)
    events = out["events"]
    assert isinstance(events[0], StatusChanged)
    assert events[0].status == "in_progress"
    assert isinstance(events[-1], StatusChanged)
    assert events[-1].status == "completed"
    assert any(isinstance(e, NodeCompleted) and e.node_id == out["math"] for e in events)


@pytest.mark.anyio
async def test_a_sweep_is_one_request_and_its_results_arrive_as_an_iterator(peer: Peer) -> None:
    needs_queue(peer)
    sent_before = peer.double.count("POST", "/api/v1/queue/*/enqueue_batch") if peer.double else 0

    def script() -> tuple[list[SyncWorkflowResult], list[SyncWorkflowResult], Any, str, str]:
        with Client(peer.url) as client:
            wf = client.workflows.load(examples.path("arithmetic-form"))
            batch = wf.submit_batch({"A": [1, 2, 3], "B": [10, 20]})
            assert isinstance(batch, SyncBatchRun)
            assert len(batch) == 6
            arrived = list(batch.as_completed())
            in_order = batch.wait()
            return arrived, in_order, batch.counts, node_of(wf, "integer_math"), wf.input(
                "A").key

    arrived, in_order, counts, math, a_key = await in_thread(script)
    if peer.double is not None:
        assert peer.double.count("POST", "/api/v1/queue/*/enqueue_batch") == sent_before + 1
    assert len(arrived) == 6
    assert {r.item_id for r in arrived} == {r.item_id for r in in_order}
    assert [r.item_id for r in in_order] == sorted(r.item_id for r in in_order)
    assert counts.completed == 6
    assert counts.total == 6
    products = sorted(r[math] for r in arrived)
    assert products == sorted(a * b for a in (1, 2, 3) for b in (10, 20))
    assert all(isinstance(r.field_values[a_key], int) for r in arrived)


@pytest.mark.anyio
async def test_boards_and_images_list_as_plain_iterators(peer: Peer, tmp_path: Path) -> None:
    needs_queue(peer)
    board_name = f"sync-{uuid.uuid4().hex[:8]}"

    def script() -> dict[str, Any]:
        with Client(peer.url) as client:
            board = client.boards.create(board_name)
            wf = client.workflows.load(examples.path("image-pipeline"))
            batch = wf.submit_batch({"Output width": [16, 20]}, board=board_name)
            results = batch.wait()
            event_images = [e.output for e in batch.events() if isinstance(e, NodeCompleted)
                            and isinstance(e.output, SyncImageRef)]
            boards = list(client.boards.list())
            listed = list(client.images.list(board=board))
            first = client.images.list(board=board, page_size=1).first_page()
            pages = list(client.images.list(board=board, page_size=1).pages())
            collected = client.images.list(board=board).collect(limit=1)
            image = results[0].image
            assert isinstance(image, SyncImageRef)
            saved = image.save(tmp_path / "out")
            data = image.download()
            by_repo = client.images.download(image)  # a proxy is accepted as an image
            zipped = client.images.download_zip(board=board)
            client.boards.delete(board, delete_images=True)
            gone = client.boards.find(board_name)
            return {
                "board": board, "boards": boards, "listed": listed, "first": first,
                "pages": pages, "collected": collected, "results": results, "saved": saved,
                "data": data, "by_repo": by_repo, "gone": gone, "event_images": event_images,
                "zipped": zipped,
            }

    out = await in_thread(script)
    assert out["board"].board_id in {b.board_id for b in out["boards"]}
    names = {i.image_name for i in out["listed"]}
    assert names == {r.image.image_name for r in out["results"] if r.image is not None}
    assert len(names) == 2
    assert len(out["first"]) == 1
    assert out["first"].total == 2
    assert [len(p) for p in out["pages"]] == [1, 1]
    assert len(out["collected"]) == 1
    assert [r.image.width for r in out["results"] if r.image is not None] == [16, 20]
    assert out["data"][:8] == b"\x89PNG\r\n\x1a\n"
    assert out["by_repo"] == out["data"]
    assert out["saved"].parent == tmp_path / "out"
    assert out["saved"].read_bytes() == out["data"]
    assert out["gone"] is None
    with zipfile.ZipFile(io.BytesIO(out["zipped"])) as archive:
        # Every image on the board: the gallery's two and the pipeline's intermediates.
        assert names < {name.rsplit("/", 1)[1] for name in archive.namelist()}
    # Images inside events come as sync refs too (the save node's among them).
    assert names <= {ref.image_name for ref in out["event_images"]}


@pytest.mark.anyio
async def test_context_managers_become_plain_ones(peer: Peer) -> None:
    def script() -> tuple[bool, bool, bool, bool]:
        with Client(peer.url) as client:
            with client.images.uploading(PNG) as image:
                inside = client.images.exists(image)
            after = client.images.exists(image)
            with client.images.upload_scope() as scope:
                assert isinstance(scope, SyncUploadScope)
                kept = scope.upload(PNG)
                scope.keep(kept)
                dropped = scope.upload(PNG, intermediate=True)
            survived = client.images.exists(kept)
            deleted = not client.images.exists(dropped)
            client.images.delete(kept)
            return inside, after, survived, deleted

    inside, after, survived, deleted = await in_thread(script)
    assert inside
    assert not after
    assert survived
    assert deleted


@pytest.mark.anyio
async def test_failures_raise_synchronously_with_their_fields(peer: Peer) -> None:
    needs_queue(peer)

    def script() -> dict[str, Any]:
        caught: dict[str, Any] = {}
        with Client(peer.url) as client:
            run = client.runs.submit(div_graph(1, 0))
            with pytest.raises(RunFailedError) as failed:
                run.result()
            caught["raw"], caught["raw_run"] = failed.value, run
            wf = client.workflows.load(examples.path("arithmetic-form"))
            wf.update({"Operation": "DIV", "B": 0})
            flow_run = wf.submit()
            with pytest.raises(RunFailedError) as failed:
                flow_run.wait()
            caught["flow"], caught["node"] = failed.value, node_of(wf, "integer_math")
            caught["flow_result"] = flow_run.result_nowait()
            with pytest.raises(ValidationError) as invalid:
                wf.set("A", "not a number")
            caught["invalid"] = invalid.value
            with pytest.raises(NotFoundError):
                client.queue.get(987654321)
        return caught

    out = await in_thread(script)
    raw, run = out["raw"], out["raw_run"]
    assert raw.item_id == run.item_id
    assert raw.batch_id == run.batch_id
    assert raw.node_id == "d"
    assert raw.error_type == "ZeroDivisionError"
    assert raw.error_message == "division by zero"
    assert "ZeroDivisionError" in raw.traceback
    assert out["flow"].node_id == out["node"]
    assert out["flow"].error_type == "NodeInputError"  # integer_math checks b != 0 itself
    assert out["flow"].error_message
    assert out["flow_result"] is not None
    assert out["flow_result"].status == "failed"
    assert "'A'" in out["invalid"].input


@pytest.mark.anyio
async def test_own_coroutines_run_in_the_clients_loop(peer: Peer) -> None:
    async def version_and_loop(client: AsyncClient) -> tuple[str, int]:
        info = await client.server_info()
        return info.version, threading.get_ident()

    def script() -> tuple[str, int, int]:
        with Client(peer.url) as client:
            version, loop_thread = client.call(version_and_loop, client.aio)
            return version, loop_thread, threading.get_ident()

    version, loop_thread, caller = await in_thread(script)
    assert version.startswith("6.")
    assert loop_thread != caller


# -- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_closing_leaves_no_thread_and_no_unclosed_warning(
    peer: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    needs_queue(peer)
    test_loop = asyncio.get_running_loop()

    def script() -> tuple[set[threading.Thread], list[str], Client]:
        before = set(threading.enumerate())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Client(peer.url) as client:
                assert [t.name for t in threading.enumerate()].count(THREAD_NAME) == 1
                wf = client.workflows.load(examples.path("arithmetic-form"))  # file read: a worker
                batch = wf.submit_batch({"A": [1, 2, 3]})
                for _ in batch.as_completed():
                    break  # leaving the iterator early closes it in the loop
                batch.wait()
                pending = wf.submit(detach=True)  # settled by close
            leftover = set(threading.enumerate()) - before
            assert pending.done
        return leftover, [str(w.message) for w in caught], client

    with caplog.at_level(logging.WARNING):
        leftover, messages, client = await in_thread(script)
    # Worker threads of the test's own loop (serving the double) may come and go.
    ours = {t for t in leftover if getattr(t, "loop", None) is not test_loop and t.is_alive()}
    assert ours == set()
    assert not [m for m in messages if "nclosed" in m]
    assert "nclosed" not in caplog.text
    assert not client.is_open
    with pytest.raises(InvokeAIError, match="not open"):
        await in_thread(client.server_info)


@pytest.mark.anyio
async def test_inside_a_running_loop_it_refuses_and_points_to_async_client(peer: Peer) -> None:
    threads = threading.active_count()
    client = Client(peer.url)
    with pytest.raises(RunningLoopError, match="AsyncClient") as caught:
        client.__enter__()
    assert isinstance(caught.value, RuntimeError)
    assert threading.active_count() == threads
    assert not client.is_open

    # Opened in a worker thread, then used from a coroutine: refused too, nothing blocks.
    await in_thread(client.open)
    try:
        with pytest.raises(RunningLoopError, match="AsyncClient"):
            client.server_info()
        with pytest.raises(RunningLoopError):
            list(client.boards.list())
        assert (await in_thread(client.server_info)).version.startswith("6.")
    finally:
        await in_thread(client.close)
    assert not client.is_open


def _shell(name: str) -> Any:
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython.core.interactiveshell import InteractiveShell

    class Shell(ZMQInteractiveShell):  # as google.colab._shell.Shell
        pass

    kinds = {"jupyter": ZMQInteractiveShell, "colab": Shell, "ipython": InteractiveShell}
    return object.__new__(kinds[name]) if name in kinds else None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("shell", "opens"), [("jupyter", True), ("colab", True), ("ipython", False), ("none", False)]
)
async def test_a_kernel_cell_opens_the_client_also_with_a_subclassed_shell(
    shell: str, opens: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel cell (a running loop in the main thread) the Client opens: it connects
    (here: to nothing, so ConnectionError) instead of refusing with RunningLoopError."""
    import IPython

    instance = _shell(shell)
    monkeypatch.setattr(IPython, "get_ipython", lambda: instance)
    monkeypatch.delenv("INVOKEAI_CLIENT_ALLOW_BLOCKING", raising=False)
    client = Client(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(ConnectionError if opens else RunningLoopError):
        client.open()
    assert not client.is_open


def test_a_client_opens_again_after_close(sync_peer: Peer) -> None:
    client = Client(sync_peer.url)
    for _ in range(2):
        with client:
            assert client.server_info(refresh=True).version.startswith("6.")
        assert not client.is_open
    client.close()  # a second close is a no-op


def test_closing_settles_a_run_another_thread_waits_on(sync_peer: Peer) -> None:
    outcome: list[BaseException | SyncWorkflowResult] = []
    with Client(sync_peer.url) as admin:
        admin.queue.pause()
        try:
            client = Client(sync_peer.url).open()
            run = client.runs.submit(add_graph(6, 7))

            def wait() -> None:
                try:
                    outcome.append(run.result())
                except BaseException as exc:
                    outcome.append(exc)

            waiter = threading.Thread(target=wait)
            waiter.start()
            ready = waiting_on(run)
            for _ in range(3000):
                if ready():
                    break
                threading.Event().wait(0.02)
            client.close()
            waiter.join(60)
            on_server = admin.queue.get(run.item_id).status
        finally:
            admin.queue.resume()
    assert not waiter.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], RunCanceledError)
    assert on_server == "canceled"


def test_a_server_that_cannot_be_reached_fails_open_and_leaves_no_thread() -> None:
    threads = set(threading.enumerate())
    client = Client("http://127.0.0.1:9", timeout=5, max_retries=0)
    with pytest.raises(ConnectionError):
        client.open()
    assert not client.is_open
    assert set(threading.enumerate()) - threads == set()


SCRIPT_THAT_NEVER_CLOSES = """
import json, sys
from invokeai_client import Client
client = Client(sys.argv[1]).open()
run = client.runs.submit(json.loads(sys.argv[2]))
print(run.item_id, flush=True)
"""


def test_a_client_left_open_is_settled_when_python_exits(
    sync_peer: Peer, tmp_path: Path
) -> None:
    script = tmp_path / "never_closes.py"
    script.write_text(SCRIPT_THAT_NEVER_CLOSES)
    with Client(sync_peer.url) as client:
        client.queue.pause()
        try:
            done = subprocess.run(
                [sys.executable, "-W", "error::ResourceWarning", str(script), sync_peer.url,
                 json.dumps(add_graph(4, 5))],
                capture_output=True, text=True, timeout=120,
            )
            assert done.returncode == 0, done.stderr
            item_id = int(done.stdout.split()[0])
            status = client.queue.get(item_id).status
        finally:
            client.queue.resume()
    assert status == "canceled"  # as leaving 'with' would have done
    assert "nclosed" not in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_arguments_fail_at_construction_without_a_thread() -> None:
    threads = threading.active_count()
    with pytest.raises(ValidationError, match="together"):
        Client("http://127.0.0.1:9", email="a@b.c")
    assert threading.active_count() == threads


def test_client_takes_the_same_arguments_as_async_client() -> None:
    # All but http_session: an aiohttp session belongs to the loop that made it, and the
    # Client's loop is its own thread's.
    sync_params = list(inspect.signature(Client.__init__).parameters.values())
    async_params = [
        p for p in inspect.signature(AsyncClient.__init__).parameters.values()
        if p.name != "http_session"
    ]
    assert [(p.name, p.kind, p.default) for p in sync_params] == [
        (p.name, p.kind, p.default) for p in async_params
    ]


# -- Ctrl-C ------------------------------------------------------------------------------------

posix_only = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "pthread_kill"),
    reason="needs signal.pthread_kill",
)


def interrupt_when(
    condition: Callable[[], bool], to: Callable[[], int | None] = threading.get_ident
) -> threading.Thread:
    """Send SIGINT (Ctrl-C) to the thread ``to()`` names (the caller's: the main thread) once
    ``condition`` holds (polled)."""
    assert threading.main_thread() is threading.current_thread(), "Ctrl-C tests run in main"
    main = threading.get_ident()
    target = main if to is threading.get_ident else None

    def watch() -> None:
        stop = threading.Event()
        for _ in range(3000):  # 60 s at most
            if condition():
                thread = target if target is not None else to()
                assert thread is not None
                signal.pthread_kill(thread, signal.SIGINT)
                return
            stop.wait(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def waiting_on(run: SyncWorkflowRun | SyncBatchRun) -> Callable[[], bool]:
    target: Any = run.aio
    return lambda: bool(target._waiters)  # a count (batch) or a list of futures (run)


class FinishesAsTheWaitGivesUp(concurrent.futures.Future[Any]):
    """A call's future that completes just as a timed wait on it times out."""

    def __init__(self, outcome: BaseException | str) -> None:
        super().__init__()
        self.outcome = outcome

    def result(self, timeout: float | None = None) -> Any:
        if timeout is not None and not self.done():
            if isinstance(self.outcome, BaseException):
                self.set_exception(self.outcome)
            else:
                self.set_result(self.outcome)
            raise concurrent.futures.TimeoutError()
        return super().result(timeout)


@pytest.mark.parametrize("outcome", ["the result", RunTimeoutError("the call's own timeout")])
def test_a_blocking_call_that_ends_as_its_wait_wakes_gives_its_own_outcome(
    outcome: BaseException | str,
) -> None:
    # The blocked caller wakes now and then to let Ctrl-C in; a call that finishes at that
    # moment must give its result (or its own error), not the wake-up's empty TimeoutError.
    future = FinishesAsTheWaitGivesUp(outcome)
    if isinstance(outcome, BaseException):
        with pytest.raises(RunTimeoutError, match="the call's own timeout"):
            _wait(future)
    else:
        assert _wait(future) == "the result"


def portal_thread() -> int | None:
    """The ident of the (one) open Client's event-loop thread."""
    return next(t.ident for t in threading.enumerate() if t.name == THREAD_NAME)


@posix_only
@pytest.mark.parametrize(
    "to", [threading.get_ident, portal_thread], ids=["main-thread", "loop-thread"]
)
def test_ctrl_c_while_waiting_cancels_the_server_item(
    sync_peer: Peer, to: Callable[[], int | None]
) -> None:
    # A terminal's Ctrl-C is sent to the process, and the kernel may run the handler in any
    # thread, the Client's loop thread too. Python raises KeyboardInterrupt in the main
    # thread only when it next runs bytecode, so a wait that never wakes would hold it until
    # the call ends. If the wait has not ended 20 s after the signal, the queue is resumed:
    # the run then completes, and the Ctrl-C has lost its meaning (the item is not canceled).
    with Client(sync_peer.url) as client:
        client.queue.pause()
        try:
            run = client.runs.submit(add_graph(1, 2))
            waiting = waiting_on(run)
            watcher = interrupt_when(waiting, to=to)

            def give_up() -> None:
                watcher.join()
                for _ in range(1000):  # 20 s at most
                    if not waiting():
                        return
                    threading.Event().wait(0.02)
                client.queue.resume()

            fallback = threading.Thread(target=give_up, daemon=True)
            fallback.start()
            with pytest.raises(KeyboardInterrupt):
                run.result(timeout=60)
            fallback.join()
            on_server = client.queue.get(run.item_id).status
        finally:
            client.queue.resume()
    assert on_server == "canceled"
    assert run.status == "canceled"


@posix_only
def test_ctrl_c_during_as_completed_cancels_the_batch(sync_peer: Peer) -> None:
    with Client(sync_peer.url) as client:
        client.queue.pause()
        try:
            batch = client.runs.submit_batch(add_graph(1, 2), runs=3)
            watcher = interrupt_when(waiting_on(batch))
            with pytest.raises(KeyboardInterrupt):
                for _ in batch.as_completed():
                    pass
            watcher.join()
            statuses = {item.status for item in client.queue.get_many(batch.item_ids)}
        finally:
            client.queue.resume()
    assert statuses == {"canceled"}


@posix_only
def test_ctrl_c_leaves_a_detached_run_on_the_server(sync_peer: Peer) -> None:
    with Client(sync_peer.url) as client:
        client.queue.pause()
        try:
            run = client.runs.submit(add_graph(2, 3), detach=True)
            watcher = interrupt_when(waiting_on(run))
            with pytest.raises(KeyboardInterrupt):
                run.result(timeout=60)
            watcher.join()
            on_server = client.queue.get(run.item_id).status
            client.queue.cancel(run.item_id)
        finally:
            client.queue.resume()
    assert on_server == "pending"


# -- the proxy layer ---------------------------------------------------------------------------

PAIRS: list[tuple[type, type, set[str]]] = [
    # (async class, its sync proxy, public names that are internal plumbing: reachable at
    # runtime through the proxy, but not part of the typed sync surface)
    (AsyncClient, Client, {"aclose", "open"}),
    (BoardRepository, SyncBoards, set()),
    (ImageRepository, SyncImages, set()),
    (ModelRepository, SyncModels, set()),
    (QueueRepository, SyncQueue, set()),
    (WorkflowRepository, SyncWorkflows, set()),
    (RunManager, SyncRuns, {
        "aclose", "reopen", "check_soon", "cancel_run", "cancel_batch", "cancel_run_shielded",
        "cancel_batch_shielded",
    }),
    (WorkflowHandle, SyncWorkflowHandle, set()),
    (WorkflowRun, SyncWorkflowRun, {
        "accept", "accept_status", "apply_item", "apply_status", "end_locally",
        "forget_repeats", "lose", "on_event", "on_frame", "receive", "on_node", "on_status",
        "on_progress", "on_other",
    }),
    (BatchRun, SyncBatchRun, {
        "adopt", "confirm", "on_batch_event", "on_frame", "unsettled", "gap", "groups", "held",
        "iterated",
        "key", "manager", "node_count", "per_run",
    }),
    (WorkflowResult, SyncWorkflowResult, set()),
    (ImageRef, SyncImageRef, {"client"}),
    (ModelInstall, SyncModelInstall, set()),
    (UploadScope, SyncUploadScope, set()),
]


def public_members(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


@pytest.mark.parametrize(("async_cls", "sync_cls", "internal"), PAIRS,
                         ids=[p[1].__name__ for p in PAIRS])
def test_every_public_member_has_a_typed_sync_twin(
    async_cls: type, sync_cls: type, internal: set[str]
) -> None:
    """A new public member of the async API needs one line in invokeai_client/sync/_objects.py
    (``name = blocking(AsyncClass.name)``, or ``Attr()`` for an attribute)."""
    missing = public_members(async_cls) - public_members(sync_cls) - internal
    assert not missing, f"{sync_cls.__name__} lacks sync twins of {sorted(missing)}"


class ExtendedHandle(WorkflowHandle):
    def extra(self, value: int) -> int:
        return value + 1

    async def extra_async(self, other: WorkflowHandle) -> bool:
        return other is self


def test_undeclared_members_still_work_and_proxies_unwrap() -> None:
    handle = ExtendedHandle(WorkflowDefinition.from_file(examples.path("arithmetic-form")))
    bridge = Bridge()
    proxy = wrap(handle, bridge)  # a subclass maps to its base's proxy
    assert isinstance(proxy, SyncWorkflowHandle)
    assert isinstance(proxy, Proxy)
    assert proxy.aio is handle
    assert proxy == SyncWorkflowHandle(handle, bridge)
    assert proxy.extra(41) == 42  # type: ignore[attr-defined]
    assert wrap([handle, 1], bridge) == [proxy, 1]
    assert unwrap({"h": [proxy]}) == {"h": [handle]}
    assert proxy.set("A", 9).aio is handle
    assert handle.get("A") == 9
    assert proxy.build_graph()["nodes"] == handle.build_graph()["nodes"]
    with pytest.raises(InvokeAIError, match="not open"):
        proxy.submit()
    with pytest.raises(InvokeAIError, match="not open"):
        proxy.extra_async(proxy)  # type: ignore[attr-defined]
