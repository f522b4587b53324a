"""``invokeai-client run``: a workflow as one batch, live progress, images saved to a folder.

The steps, each a line in :func:`run_batch`: connect, load the workflow typed by the
server, set values and the sweep, enqueue ONE batch, follow it (``batch.events()`` drives the
progress display while ``batch.as_completed()`` saves each item's images as it finishes),
then write ``results.json`` and a summary. Ctrl-C (or SIGTERM) cancels the batch on the
server before the command exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .. import AsyncClient, errors
from .._files import make_folder, write_file
from ..runs import BatchRun, WorkflowResult
from ..runs.results import safe_file_name
from ..workflows import WorkflowHandle
from ._console import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_UNREACHABLE,
    CliError,
    Console,
)
from ._plan import Plan, apply
from ._progress import BatchProgress, ProgressDisplay
from ._values import one_line

SAVE_CONCURRENCY = 4
"""Images downloaded at once."""

CANCEL_TIMEOUT = 15.0
"""How long an interrupted run waits for the server to confirm the cancellation."""


@dataclass
class _Interrupt:
    """Ctrl-C / SIGTERM / a closed stdout: the first cancels the batch, a second signal
    stops waiting."""

    task: asyncio.Task[Any]
    console: Console
    count: int = 0
    code: int = EXIT_INTERRUPTED

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            self.console.note(
                "interrupted: canceling the batch on the server (Ctrl-C again to stop waiting)"
            )
        self.task.cancel()

    def out_closed(self) -> None:
        """stdout's reader went away (``| head``): wind down like Ctrl-C, exit 141."""
        if self.count:
            return
        self.count += 1
        self.code = EXIT_PIPE_CLOSED
        self.console.note("stdout was closed: canceling the rest of the batch on the server")
        self.task.cancel()


@dataclass
class _Outcome:
    """What became of each item: result, saved files, position in the batch."""

    results: dict[int, WorkflowResult] = field(default_factory=dict)
    files: dict[int, list[Path]] = field(default_factory=dict)
    unsaved: int = 0
    """Images that could not be downloaded."""
    fatal: str | None = None
    """Why saving had to stop (the output folder cannot be written)."""


async def run_batch(plan: Plan, url: str, client_options: dict[str, Any], console: Console) -> int:
    """Run ``plan`` against the server at ``url``; the exit code."""
    task = asyncio.current_task()
    assert task is not None
    interrupt = _Interrupt(task, console)
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, interrupt)
            handled.append(sig)
    console.on_out_closed = interrupt.out_closed
    try:
        return await _run(plan, url, client_options, console, interrupt)
    finally:
        console.on_out_closed = None
        for sig in handled:
            loop.remove_signal_handler(sig)


async def _run(
    plan: Plan,
    url: str,
    client_options: dict[str, Any],
    console: Console,
    interrupt: _Interrupt,
) -> int:
    """Submit ``plan`` as one batch and follow it to the end (or an interrupt); the exit code."""
    batch: BatchRun | None = None
    outcome = _Outcome()
    started = time.monotonic()
    with _cli_errors(url):
        async with AsyncClient(url, **client_options) as client:
            try:
                handle, sweep = await _load(client, plan, console)
                batch = await _submit(client, handle, sweep, plan)
                console.note(
                    f"{handle.name!r} from {plan.workflow_source}: {len(batch)} item"
                    f"{'' if len(batch) == 1 else 's'} in one batch ({batch.batch_id}), "
                    f"images to {plan.out}/"
                )
                started = time.monotonic()
                async with handle:  # deletes the images it uploaded (local --set files)
                    await _follow(batch, handle, plan, console, outcome)
            except asyncio.CancelledError:
                if not interrupt.count:
                    raise
                _uncancel()
                await _cancel(batch, console)
                await _write_manifest(plan, url, batch, outcome)
                _summary(console, plan, batch, outcome, time.monotonic() - started,
                         interrupt.code)
                return interrupt.code
    await _write_manifest(plan, url, batch, outcome)
    counts = batch.counts if batch is not None else None
    ok = counts is not None and counts.completed == counts.total and not outcome.unsaved
    code = EXIT_OK if ok else EXIT_ITEMS_FAILED
    _summary(console, plan, batch, outcome, time.monotonic() - started, code)
    return code


@contextlib.contextmanager
def _cli_errors(url: str) -> Iterator[None]:
    """Turn the client's errors a user can fix (server, credentials, inputs) into CliErrors."""
    try:
        yield
    except errors.ConnectionError as exc:
        raise CliError(
            f"cannot reach an InvokeAI server at {url}: {one_line(str(exc))}", EXIT_UNREACHABLE
        ) from None
    except errors.AuthenticationError as exc:
        raise CliError(
            f"{url} refused the credentials ({one_line(str(exc))}); multi-user servers need "
            "--token or --email/--password"
        ) from None
    except errors.BoardNotFoundError as exc:
        raise CliError(f"--board: {one_line(str(exc))} (--create-board creates it)") from None
    except (errors.ValidationError, errors.WorkflowError, errors.BoardError) as exc:
        raise CliError(one_line(str(exc))) from None


async def _load(
    client: AsyncClient, plan: Plan, console: Console
) -> tuple[WorkflowHandle, dict[int | str, list[Any]]]:
    """Load the plan's workflow typed by the server, set its values; the handle and sweep."""
    info = await client.server_info()
    mode = "multi-user" if info.multiuser else "single-user"
    console.note(f"InvokeAI {info.version} at {client.base_url} ({mode})")
    handle = await client.workflows.load(plan.definition)
    sweep = apply(handle, plan)
    if handle.model_fields():  # GUI exports name models of the machine they came from
        report = await handle.sync_models()
        for entry in report.changed:
            name = (entry.model or {}).get("name", "?")
            console.note(f"model input {entry.key}: using {name} ({entry.matched_by})")
    return handle, sweep


async def _submit(
    client: AsyncClient, handle: WorkflowHandle, sweep: dict[int | str, list[Any]], plan: Plan
) -> BatchRun:
    """Resolve the board, make the output folder and enqueue the batch."""
    board: str | None = plan.board
    if board is not None and plan.create_board:
        board = await client.boards.resolve(board, create=True)
    created = await _make_folder(plan.out)
    try:
        return await handle.submit_batch(sweep, runs=plan.runs, board=board)
    except BaseException:
        if created:  # leave no empty folder behind a run that never started
            with contextlib.suppress(OSError):
                await anyio.Path(plan.out).rmdir()
        raise


async def _follow(
    batch: BatchRun, handle: WorkflowHandle, plan: Plan, console: Console, outcome: _Outcome
) -> None:
    """Show progress from the batch's events and save each item's images as it finishes."""
    positions = {run.item_id: index for index, run in enumerate(batch.runs)}
    node_labels = {
        node.id: node.label or node.type for node in handle.definition.nodes.values()
    }

    def failure(result: WorkflowResult) -> str:
        where = ""
        if result.error_node_id:
            label = node_labels.get(result.error_node_id, result.error_node_id)
            where = f"in node {label!r}"
        what = one_line(": ".join(p for p in (result.error_type, result.error_message) if p))
        return ": ".join(p for p in (where, what[:300]) if p)

    limiter = anyio.Semaphore(SAVE_CONCURRENCY)

    async def finish(result: WorkflowResult) -> None:
        index = positions.get(result.item_id, len(positions))
        if result.images:
            async with limiter:
                await _save_images(result, index, len(batch), plan, console, outcome)
            if outcome.fatal is not None:
                group.cancel_scope.cancel()
                return
        if plan.json:
            entry = _entry(index, result.item_id, result, plan, outcome)
            console.result(json.dumps({"type": "item", **entry}, default=str))

    display = ProgressDisplay(console, total=len(batch), title=handle.name or "batch")
    with display:
        progress = BatchProgress(
            display, batch, node_labels=node_labels,
            describe=lambda result: _describe_values(result, plan), failure=failure,
        )

        async def show_progress() -> None:
            async for event in batch.events():
                progress.on_event(event)

        async with anyio.create_task_group() as group:
            group.start_soon(show_progress)
            async for result in batch.as_completed():
                outcome.results[result.item_id] = result
                progress.finished(result)
                group.start_soon(finish, result)
    if outcome.fatal is not None:
        await _cancel(batch, console)
        raise CliError(outcome.fatal, EXIT_ERROR)


async def _save_images(
    result: WorkflowResult, index: int, total: int, plan: Plan, console: Console,
    outcome: _Outcome,
) -> None:
    """Download the item's images into the output folder; paths on stdout (not with
    ``--json``, whose item line lists them)."""
    stem = f"{index + 1:0{len(str(total))}d}" + _values_slug(result, plan)
    paths = outcome.files.setdefault(result.item_id, [])
    for number, image in enumerate(result.images):
        suffix = f"-{number + 1}" if len(result.images) > 1 else ""
        try:
            path = await image.save(plan.out, name=safe_file_name(f"{stem}{suffix}.png"))
        except errors.FileWriteError as exc:  # disk full, no permission: the next fails too
            outcome.fatal = f"cannot save images into {plan.out}/: {exc.strerror or exc}"
            return
        except errors.InvokeAIError as exc:
            outcome.unsaved += 1
            console.note(
                f"item {result.item_id}: could not download {image.image_name}: "
                f"{one_line(str(exc))}"
            )
            continue
        paths.append(path)
        if not plan.json:
            console.result(str(path))


async def _make_folder(folder: Path) -> bool:
    """Create the output folder; True if it did not exist before."""
    path = anyio.Path(folder)
    existed = await path.is_dir()
    try:
        await path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
    return not existed


async def _cancel(batch: BatchRun | None, console: Console) -> None:
    """Cancel what is left of ``batch`` on the server and wait (bounded) for it to settle."""
    if batch is None:
        console.note("canceled before the batch was enqueued (anything it made is canceled)")
        return
    try:
        await asyncio.wait_for(batch.cancel(), CANCEL_TIMEOUT)
        with contextlib.suppress(errors.RunTimeoutError):
            await batch.results(timeout=CANCEL_TIMEOUT)
    except (asyncio.TimeoutError, errors.InvokeAIError) as exc:
        console.note(f"could not confirm the cancellation of batch {batch.batch_id}: {exc}")


def _uncancel() -> None:
    """Forget the handled cancellation so later awaits (the clean-up) run normally."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


# -- naming ------------------------------------------------------------------------------

_SLUG = re.compile(r"[^a-z0-9.]+")


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        name = value.get("image_name") or value.get("video_name")
        if isinstance(name, str):
            return Path(name).stem[:12]
        return json.dumps(value, sort_keys=True)
    return str(value)


def _swept_values(result: WorkflowResult, plan: Plan) -> list[tuple[str, Any]]:
    return [
        (plan.labels.get(key, key.rsplit(".", 1)[-1]), value)
        for key, value in result.field_values.items()
    ]


def _describe_values(result: WorkflowResult, plan: Plan) -> str:
    return ", ".join(f"{label}={_value_text(v)}" for label, v in _swept_values(result, plan))


def _values_slug(result: WorkflowResult, plan: Plan) -> str:
    parts = []
    for label, value in _swept_values(result, plan):
        name = _SLUG.sub("-", label.casefold()).strip("-")[:24]
        text = _SLUG.sub("-", _value_text(value).casefold()).strip("-")[:24]
        parts.append(f"_{name}-{text}")
    return "".join(parts)


# -- results.json and the summary --------------------------------------------------------


def _entry(
    index: int, item_id: int, result: WorkflowResult | None, plan: Plan, outcome: _Outcome,
    status: str | None = None,
) -> dict[str, Any]:
    """One item as results.json and ``--json`` show it."""
    entry: dict[str, Any] = {
        "index": index,
        "item_id": item_id,
        "status": result.status if result is not None else status,
        "values": dict(_swept_values(result, plan)) if result is not None else {},
        "files": [str(p) for p in outcome.files.get(item_id, [])],
        "images": [i.image_name for i in result.images] if result is not None else [],
    }
    if result is not None and not result.ok:
        entry["error"] = {
            "node_id": result.error_node_id,
            "type": result.error_type,
            "message": result.error_message,
        }
    return entry


def _manifest(
    plan: Plan, url: str, batch: BatchRun | None, outcome: _Outcome
) -> dict[str, Any]:
    items = []
    runs = batch.runs if batch is not None else []
    for index, run in enumerate(runs):
        result = outcome.results.get(run.item_id) or run.result_nowait()
        items.append(_entry(index, run.item_id, result, plan, outcome, run.status))
    return {
        "workflow": plan.definition.name,
        "source": plan.workflow_source,
        "server": url,
        "batch_id": batch.batch_id if batch is not None else None,
        "items": items,
    }


async def _write_manifest(
    plan: Plan, url: str, batch: BatchRun | None, outcome: _Outcome
) -> None:
    """``results.json`` in the output folder: every item, its values, files and status."""
    if batch is None:
        return
    text = json.dumps(_manifest(plan, url, batch, outcome), indent=2, default=str) + "\n"
    # In a worker thread that finishes even if a second Ctrl-C arrives: never half a file
    # (atomic, never through a symlink planted in the folder; disk errors: FileWriteError).
    await anyio.to_thread.run_sync(_write_text, plan.out / "results.json", text)


def _write_text(path: Path, text: str) -> None:
    make_folder(path.parent, input="--out")
    write_file(path, text.encode())


def _summary(
    console: Console, plan: Plan, batch: BatchRun | None, outcome: _Outcome, seconds: float,
    code: int,
) -> None:
    if batch is None:
        return
    counts = batch.counts
    saved = sum(len(files) for files in outcome.files.values())
    rate = f", {counts.completed / seconds:.1f} items/s" if seconds > 0 and counts.completed else ""
    line = (
        f"{counts.total} items: {counts.completed} completed, {counts.failed} failed, "
        f"{counts.canceled} canceled"
    )
    unfinished = counts.pending + counts.in_progress
    if unfinished:
        line += f", {unfinished} unfinished"
    console.note(f"{line} in {seconds:.1f}s{rate}")
    missed = f", {outcome.unsaved} could not be downloaded" if outcome.unsaved else ""
    console.note(f"{saved} image{'' if saved == 1 else 's'} saved to {plan.out}/{missed} "
                 "(results.json lists every item)")
    if plan.json:
        summary = {
            "type": "summary", "batch_id": batch.batch_id, "total": counts.total,
            "completed": counts.completed, "failed": counts.failed,
            "canceled": counts.canceled, "unfinished": unfinished, "images_saved": saved,
            "not_downloaded": outcome.unsaved, "seconds": round(seconds, 3),
            "out": str(plan.out), "results": str(plan.out / "results.json"),
            "exit_code": code,
        }
        console.result(json.dumps(summary))
