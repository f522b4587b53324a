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
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio

from .. import AsyncClient, errors
from ..runs import BatchRun, WorkflowResult
from ..runs.results import safe_file_name
from ..workflows import WorkflowHandle
from ._console import EXIT_ERROR, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_UNREACHABLE, CliError, Console
from ._interrupt import Interrupt, interruptible
from ._listing import Outcome, item_entry, print_item, summarize, write_results_json
from ._plan import Plan, apply
from ._progress import BatchProgress, ProgressDisplay
from ._values import one_line

SAVE_CONCURRENCY = 4
"""Images downloaded at once."""

CANCEL_TIMEOUT = 15.0
"""How long an interrupted run waits for the server to confirm the cancellation."""

CANCELING = "canceling the batch on the server"
"""What ``run`` and ``generate`` do when interrupted (see :mod:`._interrupt`)."""


async def run_batch(plan: Plan, url: str, client_options: dict[str, Any], console: Console) -> int:
    """Run ``plan`` against the server at ``url``; the exit code."""
    with interruptible(console, CANCELING) as interrupt:
        return await _run(plan, url, client_options, console, interrupt)


async def _run(
    plan: Plan,
    url: str,
    client_options: dict[str, Any],
    console: Console,
    interrupt: Interrupt,
) -> int:
    """Submit ``plan`` as one batch and follow it to the end (or an interrupt); the exit code."""
    batch: BatchRun | None = None
    outcome = Outcome()
    started = time.monotonic()
    with cli_errors(url):
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
                if not interrupt.caught():
                    raise
                await cancel_batch(batch, console)
                await _finish(plan, url, batch, outcome, started, interrupt.code, console)
                return interrupt.code
    assert batch is not None
    counts = batch.counts
    ok = counts.completed == counts.total and not outcome.unsaved
    code = EXIT_OK if ok else EXIT_ITEMS_FAILED
    await _finish(plan, url, batch, outcome, started, code, console)
    return code


async def _finish(
    plan: Plan, url: str, batch: BatchRun | None, outcome: Outcome, started: float, code: int,
    console: Console,
) -> None:
    """``results.json`` and the summary (nothing when no batch was enqueued)."""
    if batch is None:
        return
    header = {"workflow": plan.definition.name, "source": plan.workflow_source, "server": url}
    await write_results_json(plan.out, header, batch, outcome, lambda r: _values(r, plan))
    summarize(console, plan.out, batch, outcome, time.monotonic() - started, code,
              as_json=plan.json)


@contextlib.contextmanager
def cli_errors(url: str) -> Iterator[None]:
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
    batch: BatchRun, handle: WorkflowHandle, plan: Plan, console: Console, outcome: Outcome
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
            stem = f"{index + 1:0{len(str(len(batch)))}d}" + _values_slug(result, plan)
            async with limiter:
                await save_images(result, plan.out, stem, console, outcome,
                                  print_paths=not plan.json)
            if outcome.fatal is not None:
                group.cancel_scope.cancel()
                return
        if plan.json:
            files = outcome.files.get(result.item_id, ())
            entry = item_entry(index, result.item_id, result, lambda r: _values(r, plan), files)
            print_item(console, entry)

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
        await cancel_batch(batch, console)
        raise CliError(outcome.fatal, EXIT_ERROR)


async def save_images(
    result: WorkflowResult, out: Path, stem: str, console: Console, outcome: Outcome, *,
    print_paths: bool,
) -> None:
    """Download the item's images into ``out`` as ``<stem>.png`` (``-1``, ``-2``... when
    several); their paths on stdout if ``print_paths`` (not with ``--json``, whose item line
    lists them). A folder that cannot be written stops saving (``outcome.fatal``)."""
    paths = outcome.files.setdefault(result.item_id, [])
    for number, image in enumerate(result.images):
        suffix = f"-{number + 1}" if len(result.images) > 1 else ""
        try:
            path = await image.save(out, name=safe_file_name(f"{stem}{suffix}.png"))
        except errors.FileWriteError as exc:  # disk full, no permission: the next fails too
            outcome.fatal = f"cannot save images into {out}/: {exc.strerror or exc}"
            return
        except errors.InvokeAIError as exc:
            outcome.unsaved += 1
            console.note(
                f"item {result.item_id}: could not download {image.image_name}: "
                f"{one_line(str(exc))}"
            )
            continue
        paths.append(path)
        if print_paths:
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


async def cancel_batch(batch: BatchRun | None, console: Console) -> None:
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


def _values(result: WorkflowResult, plan: Plan) -> Mapping[str, Any]:
    return dict(_swept_values(result, plan))


def _describe_values(result: WorkflowResult, plan: Plan) -> str:
    return ", ".join(f"{label}={_value_text(v)}" for label, v in _swept_values(result, plan))


def _values_slug(result: WorkflowResult, plan: Plan) -> str:
    parts = []
    for label, value in _swept_values(result, plan):
        name = _SLUG.sub("-", label.casefold()).strip("-")[:24]
        text = _SLUG.sub("-", _value_text(value).casefold()).strip("-")[:24]
        parts.append(f"_{name}-{text}")
    return "".join(parts)
