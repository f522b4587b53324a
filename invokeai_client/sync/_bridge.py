"""The one event-loop thread behind a sync :class:`~invokeai_client.sync.Client`.

A :class:`Bridge` starts an anyio ``BlockingPortal`` (one thread running one asyncio loop),
enters async context managers inside it for the lifetime of the client, and makes blocking
calls into it. Every blocking call:

- refuses to run inside a running event loop (it would freeze that loop), with an error that
  points to :class:`~invokeai_client.AsyncClient`;
- runs the coroutine as its own asyncio task on the portal's loop (one hop there with
  ``call_soon_threadsafe``, one back through a future: half the hops of
  ``BlockingPortal.call``), so an interrupt (Ctrl-C) in the caller cancels that task once,
  exactly as cancelling an awaiting task does in the async API (a run's server item is
  canceled, shielded and bounded in time), waits for that cleanup, then lets the
  ``KeyboardInterrupt`` go on. (The portal's own cancel scope would re-cancel the shielded
  cleanup at every step instead.)

The portal itself owns the loop's life: it starts and joins the thread and holds the
AsyncClient's ``async with`` open in one task (``wrap_async_context_manager``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack
from types import TracebackType
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .. import errors
from ..runs._handles import abandon_unreceived

T = TypeVar("T")

THREAD_NAME = "invokeai-client-portal"
"""The name of the portal thread (one per open Client)."""

CANCEL_GRACE = 15.0
"""Seconds an interrupted call waits for the async side to clean up (e.g. cancel its server
item, itself bounded to 10 s) before the interrupt goes on."""

WORKER_JOIN_TIMEOUT = 5.0
"""Seconds close() waits for each worker thread of the client's loop to end."""

ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
"""What ``__exit__`` receives (and ``sys.exc_info()`` returns); the sync layer passes it on
to the async context managers it entered, so they see the error as ``async with`` would."""

NO_ERROR: ExcInfo = (None, None, None)

# A blocked wait wakes up now and then so that a Ctrl-C is never lost: Windows does not
# interrupt a lock wait at all, and on POSIX a signal that lands just as the thread starts to
# block (after CPython's last look for pending signals, before the wait itself) interrupts
# nothing and would only be seen when the call returns.
_WAKE_EVERY = 0.25


ALLOW_BLOCKING_ENV = "INVOKEAI_CLIENT_ALLOW_BLOCKING"
"""Set to ``1`` to let the sync Client block a thread that runs an event loop anyway."""


def blocking_is_harmless() -> bool:
    """Whether blocking this thread's running loop starves nobody: a Jupyter/IPython kernel
    cell (the kernel's loop only waits for the cell; the Client's loop is its own thread),
    or an explicit ``INVOKEAI_CLIENT_ALLOW_BLOCKING=1``. A web handler's loop is neither."""
    if os.environ.get(ALLOW_BLOCKING_ENV) == "1":
        return True
    if "ipykernel" not in sys.modules or threading.current_thread() is not threading.main_thread():
        return False
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    # Kernels subclass ipykernel's shell (Colab's is google.colab._shell.Shell).
    return any(
        kind.__name__ == "ZMQInteractiveShell" and kind.__module__.startswith("ipykernel")
        for kind in type(shell).__mro__
    )


def check_no_running_loop(action: str) -> None:
    """Raise :class:`~errors.RunningLoopError` if this thread runs an asyncio event loop
    that blocking would starve (see :func:`blocking_is_harmless`)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    if blocking_is_harmless():
        return
    raise errors.RunningLoopError(
        f"cannot {action}: invokeai_client.Client blocks the calling thread, and this thread "
        "is running an event loop (an 'async def', a FastAPI/aiohttp handler...) that would "
        "stop while it waits. Use 'async with AsyncClient(...)' and await its methods there, "
        "or call the sync Client from a worker thread (e.g. 'await anyio.to_thread.run_sync"
        "(...)'). (Jupyter cells are fine; INVOKEAI_CLIENT_ALLOW_BLOCKING=1 allows it "
        "elsewhere.)"
    )


class Bridge:
    """A portal thread and blocking calls into it; shared by a Client and its proxies."""

    def __init__(self) -> None:
        self._portal: BlockingPortal | None = None
        self._stack: ExitStack | None = None
        self._loop_thread: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lifecycle = threading.Lock()  # one open or close at a time
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self.owner: Any = None
        """The sync Client this bridge belongs to (its AsyncClient maps back to it)."""

    @property
    def running(self) -> bool:
        """Whether the portal thread is up (the client is open)."""
        return self._portal is not None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the portal thread (a no-op when it runs)."""
        check_no_running_loop("open the Client")
        with self._lifecycle:
            if self._portal is None:
                self._start()

    def _start(self) -> None:
        stack = ExitStack()
        portal = stack.enter_context(start_blocking_portal("asyncio", name=THREAD_NAME))
        self._loop_thread = portal.call(threading.get_ident)
        self._loop = portal.call(asyncio.get_running_loop)
        self._stack = stack
        self._portal = portal
        # A script that never closes its client still settles it when Python exits (the
        # portal thread is a daemon: it would otherwise vanish mid-request).
        atexit.register(self._stop_at_exit)

    def enter(self, manager: AbstractAsyncContextManager[T]) -> T:
        """Enter ``manager`` in the portal; it is exited by :meth:`stop` (last in, first out)."""
        portal, stack = self.require_portal("open"), self._stack
        assert stack is not None
        return stack.enter_context(portal.wrap_async_context_manager(manager))

    def stop(self, exc_info: ExcInfo = NO_ERROR) -> None:
        """Exit what :meth:`enter` entered, then stop the portal and join its thread."""
        if self._stack is None:
            return
        check_no_running_loop("close the Client")
        with self._lifecycle:
            stack, self._stack = self._stack, None
            if stack is None:
                return
            atexit.unregister(self._stop_at_exit)
            self._stop(stack, exc_info)

    def _stop(self, stack: ExitStack, exc_info: ExcInfo) -> None:
        loop = self._loop
        try:
            stack.__exit__(*exc_info)
        finally:
            self._portal = None
            self._loop_thread = None
            self._loop = None
            _join_workers_of(loop)
            for future in list(self._pending):  # scheduled as the loop closed: never ran
                if not future.cancel() and not future.done():
                    future.set_exception(concurrent.futures.CancelledError())

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    # -- blocking calls --------------------------------------------------------------------

    def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` in the portal and return its result."""
        return self._run(fn, args, kwargs, awaits=True)  # type: ignore[no-any-return]

    def call_plain(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call the synchronous ``fn`` in the portal's loop thread (for objects that the loop
        updates); directly when the portal is not running."""
        if self._portal is None or threading.get_ident() == self._loop_thread:
            return fn(*args, **kwargs)
        return self._run(fn, args, kwargs, awaits=False)  # type: ignore[no-any-return]

    def iterate(
        self, source: AsyncIterable[Any], convert: Callable[[Any], T]
    ) -> Iterator[T]:
        """A plain iterator pulling ``source`` through the portal, one item per call.

        Leaving it early (``break``, garbage collection, ``.close()``) closes the async
        iterator in the portal, which runs its cleanup.
        """
        iterator = source.__aiter__()
        try:
            while True:
                try:
                    item = self.call(iterator.__anext__)
                except StopAsyncIteration:
                    return
                yield convert(item)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None and self._portal is not None:
                # A finalizer must not raise (e.g. when the generator is collected in the loop).
                with contextlib.suppress(Exception):
                    self.call(aclose)

    def require_portal(self, action: str) -> BlockingPortal:
        """The open client's portal, or InvokeAIError saying it cannot ``action`` (closed)."""
        portal = self._portal
        if portal is None:
            raise errors.InvokeAIError(
                f"cannot {action}: the Client is not open (use 'with Client(...) as client:' "
                "or call client.open() first)"
            )
        return portal

    def _run(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
        awaits: bool,
    ) -> Any:
        check_no_running_loop(f"call {getattr(fn, '__qualname__', fn)!s}")
        loop = self._loop
        if loop is None:
            self.require_portal(f"call {getattr(fn, '__name__', 'this')}")
        assert loop is not None
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        tasks: list[asyncio.Task[Any]] = []

        def start() -> None:  # in the loop thread
            if not future.set_running_or_notify_cancel():
                return  # cancelled before it started
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
                return
            if not awaits:
                future.set_result(result)
                return
            task = asyncio.ensure_future(result)  # a coroutine, or an awaitable (__anext__)
            task.add_done_callback(_settle(future))
            tasks.append(task)

        # From here on an interrupt may land at any bytecode, so scheduling sits inside the
        # block that cancels: a Ctrl-C between scheduling the call and waiting for it cancels
        # it like one during the wait (before it starts, it never starts).
        try:
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
            try:
                loop.call_soon_threadsafe(start)
            except RuntimeError:  # the loop closed between the check and the call
                future.cancel()
            return _wait(future)
        except concurrent.futures.CancelledError:
            raise errors.InvokeAIError(
                "the Client was closed while this call was in progress"
            ) from None
        except BaseException:
            # Ctrl-C (or SystemExit from a signal handler) while the task runs: cancel it
            # once, exactly as cancelling an awaiting task does in the async API, and give
            # its cleanup (e.g. a shielded server cancel) time to finish.
            if not future.cancel():
                _cancel_started(loop, tasks, future)
            raise


def _cancel_started(
    loop: asyncio.AbstractEventLoop,
    tasks: list[asyncio.Task[Any]],
    future: concurrent.futures.Future[Any],
) -> None:
    """Cancel an interrupted call that has started, and wait (at most :data:`CANCEL_GRACE`)
    for its cleanup. A call that finished before the interrupt reached the loop cannot be
    cancelled, and its caller will never see its result: a run it made is abandoned as if
    its waiter had been cancelled (its server item canceled unless detached), never left
    pending and tracked with nobody holding it."""
    released: concurrent.futures.Future[None] = concurrent.futures.Future()

    def cancel() -> None:  # in the loop thread
        for task in tasks:
            if task.cancel() or task.cancelled() or task.exception() is not None:
                continue
            cleanup = abandon_unreceived(task.result())
            if cleanup is not None:
                _CLEANUPS.add(cleanup)
                cleanup.add_done_callback(_CLEANUPS.discard)
                cleanup.add_done_callback(lambda _: released.set_result(None))
                return
        released.set_result(None)

    deadline = time.monotonic() + CANCEL_GRACE
    try:
        loop.call_soon_threadsafe(cancel)
    except RuntimeError:  # the loop is gone already
        return
    concurrent.futures.wait([future], timeout=CANCEL_GRACE)
    concurrent.futures.wait([released], timeout=max(0.0, deadline - time.monotonic()))


_CLEANUPS: set[asyncio.Future[Any]] = set()
"""Strong references to running cleanups of interrupted calls (the loop keeps weak ones)."""


def _settle(future: concurrent.futures.Future[Any]) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback that hands a task's outcome to the caller's future."""

    def settle(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            future.set_exception(concurrent.futures.CancelledError())
            return
        error = task.exception()
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(task.result())

    return settle


def _join_workers_of(loop: asyncio.AbstractEventLoop | None) -> None:
    """Wait for the worker threads of ``loop`` (``anyio.to_thread``: file reads, PIL) to end.

    anyio tells them to stop when the loop's main task ends but does not join them; joining
    here means no thread of the client outlives ``close()``.
    """
    if loop is None:
        return
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and getattr(thread, "loop", None) is loop:
            thread.join(WORKER_JOIN_TIMEOUT)


def _wait(future: concurrent.futures.Future[T]) -> T:
    """``future``'s result, waking every :data:`_WAKE_EVERY` seconds to let signals in."""
    while True:
        try:
            return future.result(timeout=_WAKE_EVERY)
        except concurrent.futures.TimeoutError:  # the builtin one from Python 3.11 on
            if future.done():  # it finished as the wait gave up, or failed with a TimeoutError
                return future.result()
