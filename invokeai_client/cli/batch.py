"""``invokeai-client batch``: one durable job over one or more servers.

    invokeai-client batch flow.json --sweep "Seed=1..1000" --server URL [--server URL ...] \\
        --out renders [--resume]

The variations come from ``--sweep`` (every combination), ``--csv FILE`` (one variation per
row, columns named by input labels) or ``--jsonl FILE`` (one JSON object per line). The job is
recorded in ``OUT/job.sqlite`` and its images saved into ``OUT``; Ctrl-C (or a crash) leaves
a job that ``--resume`` continues without running a finished variation again. See
docs/cli.md and docs/pool.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import errors
from .._http_wire import check_base_url
from ..errors import InvokeAIError, ValidationError
from ..fields import InvocationSchemas
from ..pool import JobLock, Manifest, PoolJob, PoolResult, Progress, ServerPool
from ..workflows import WorkflowDefinition, WorkflowHandle
from ._console import EXIT_ITEMS_FAILED, EXIT_OK, CliError, Console
from ._interrupt import interruptible
from ._listing import (
    RESULTS_JSONL,
    ResultsLog,
    item_entry,
    open_results_log,
    print_item,
    print_summary,
)
from ._options import (
    add_command,
    add_output_options,
    add_values_options,
    board_options,
    runs_option,
)
from ._plan import out_folder, read_workflow
from ._progress import ProgressDisplay
from ._server import add_auth_options, client_options
from ._values import find_input, one_line, parse_sweep, parse_value, split_assignment

MANIFEST = "job.sqlite"
REFRESH = 0.5
ENDED = ("completed", "failed", "canceled")
"""How a variation ends (its one result's status)."""
LOG_EVERY = 10.0
"""Seconds between progress lines when stderr is not a terminal."""


def add_batch_parser(sub: Any) -> None:
    """The ``batch`` sub-command's options."""
    batch = add_command(sub, "batch")
    batch.add_argument("workflow", metavar="WORKFLOW", help="workflow JSON exported by the GUI")
    source = batch.add_mutually_exclusive_group()
    add_values_options(batch, sweep=source)
    source.add_argument("--csv", metavar="FILE", help="one variation per row; header = labels")
    source.add_argument("--jsonl", metavar="FILE", help="one variation per line: {label: value}")
    batch.add_argument("--server", action="append", required=True, metavar="URL",
                       help="an InvokeAI server (repeatable)")
    add_output_options(batch, required=True,
                       what="the images, results.jsonl and the job (job.sqlite)")
    batch.add_argument("--resume", action="store_true", help="continue the job in --out")
    batch.add_argument("--no-workflow-json", action="store_true",
                       help="leave the workflow JSON off the batches (less server work; the "
                       "gallery cannot reopen the workflow from an image)")
    add_auth_options(batch)


@dataclass
class BatchPlan:
    """The checked options of one ``batch``: everything knowable without a server."""

    servers: list[str]
    out: Path
    resume: bool
    runs: int
    attach_workflow: bool
    options: dict[str, Any]
    board: str | None = None
    """``--board``: every server must have it (a server without it is left out)."""
    create_board: bool = False
    """``--create-board``: make the board on every server that has none of that name."""
    json: bool = False
    """``--json``: one JSON object per finished variation on stdout, then a summary."""
    arguments: dict[str, str] = field(default_factory=dict)
    """Digests of the variation arguments given (see :func:`_job_arguments`)."""
    definition: WorkflowDefinition | None = None
    """The workflow (None on ``--resume``: the job carries its own)."""
    sets: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)
    rows: list[tuple[int, Any]] | None = None
    """``--csv`` / ``--jsonl`` rows as (line number, row), read once."""
    source: str = ""
    """How to name where the rows came from (``--csv FILE``)."""
    text_rows: bool = False

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST


def plan_batch(args: argparse.Namespace) -> BatchPlan:
    """Read and check every local input of ``batch`` (no server is asked): the servers' URLs,
    the output folder, the workflow file, ``--set`` values and every variation (``--sweep``,
    ``--csv``, ``--jsonl``), typed by the bundled node schemas."""
    runs = runs_option(args)
    for url in args.server:
        try:
            check_base_url(url)
        except ValidationError as exc:
            raise CliError(f"--server {url}: {one_line(str(exc))}") from None
    board, create_board = board_options(args)
    plan = BatchPlan(
        servers=list(args.server), out=out_folder(args.out, "--out"), resume=args.resume,
        runs=runs, attach_workflow=not args.no_workflow_json,
        options=client_options(args), board=board, create_board=create_board,
        json=bool(args.json),
    )
    plan.arguments = _job_arguments(args)
    if plan.resume:
        return plan  # the job's manifest holds its workflow and variations
    plan.definition, _ = read_workflow(args.workflow, option="WORKFLOW")
    plan.sets = list(args.set or ())
    plan.sweeps = list(args.sweep or ())
    if args.csv:
        plan.rows, plan.source, plan.text_rows = _csv_rows(args.csv), f"--csv {args.csv}", True
    elif args.jsonl:
        plan.rows, plan.source = _jsonl_rows(args.jsonl), f"--jsonl {args.jsonl}"
    offline = WorkflowHandle(plan.definition, schemas=InvocationSchemas.bundled())
    sweep, zipped = apply_batch(offline, plan)
    try:
        groups = offline.sweep_groups(sweep, zip=zipped)
        offline.build_batch(data=groups, runs=plan.runs)
    except ValidationError as exc:
        if exc.rule != "uploaded":  # local image files: uploaded to each server later
            raise CliError(f"workflow {offline.name!r} cannot run: {one_line(str(exc))}"
                           ) from None
    return plan


def _job_arguments(args: argparse.Namespace) -> dict[str, str]:
    """What makes the job's variations, as given (file contents by digest): stored in a new
    job's manifest; a ``--resume`` that gives any of them must give the same."""
    given: dict[str, str] = {}
    for option, path in (("WORKFLOW", args.workflow), ("--csv", args.csv),
                         ("--jsonl", args.jsonl)):
        if path:
            with contextlib.suppress(OSError):  # unreadable: a new job says so later
                given[option] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    for option, values in (("--sweep", args.sweep), ("--set", args.set)):
        if values:
            given[option] = json.dumps(list(values))
    if args.runs != 1:
        given["--runs"] = str(args.runs)
    return given


def _check_resume(plan: BatchPlan, stored: Mapping[str, Any]) -> None:
    """A ``--resume`` giving variation arguments other than the job's is refused (exit 3)
    naming them; one giving none (or the job's own) continues the job as recorded."""
    if not stored:
        return  # a job made before its arguments were recorded
    keys = set(plan.arguments) - ({"WORKFLOW"} if "WORKFLOW" not in stored else set())
    differ = sorted(k for k in keys if stored.get(k) != plan.arguments[k])
    if differ:
        raise CliError(
            f"--resume: {', '.join(differ)} differ from the job in {plan.out}; --resume "
            "continues the job as it was started: give the same arguments, none of them, "
            "or another --out for a new job"
        )


def run_batch_command(args: argparse.Namespace, console: Console) -> int:
    """Run ``batch``: local inputs checked, the job locked, then the servers asked; the exit
    code."""
    plan = plan_batch(args)
    lock = lock_job(plan)
    try:
        return asyncio.run(_batch(plan, lock, console))
    finally:
        lock.release()


def lock_job(plan: BatchPlan) -> JobLock:
    """Take the job's lock (a second run of it fails here), then check that ``--resume``
    finds a job and a new job finds none."""
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
        lock = JobLock.acquire(plan.manifest)
    except OSError as exc:
        raise CliError(f"--out {plan.out}: cannot create it: {exc.strerror or exc}") from None
    except ValidationError as exc:  # JobBusyError, or a folder that cannot be written
        raise CliError(f"--out {plan.out}: {one_line(str(exc))}") from None
    if plan.resume and not plan.manifest.is_file():
        lock.release()
        raise CliError(f"--resume: no job in {plan.out} ({MANIFEST} is missing)")
    if not plan.resume and plan.manifest.exists():
        lock.release()
        raise CliError(f"--out {plan.out} holds a job already: add --resume to continue it, "
                       "or choose another folder")
    return lock


async def _batch(plan: BatchPlan, lock: JobLock, console: Console) -> int:
    """The job from submit (or resume) to its end; Ctrl-C, SIGTERM or a closed stdout stop
    following it and leave it to ``--resume`` (see :mod:`._interrupt`)."""
    started = time.monotonic()
    if plan.resume:  # a file that is not a job is named before any server is asked
        store = await Manifest.open(plan.manifest)
        try:
            _check_resume(plan, (await store.meta())["settings"].get("arguments") or {})
        finally:
            await store.close()
    running = _Running()
    doing = (f"stopping; the job stays in {plan.out} (items already on the servers finish "
             "there): run the same command with --resume to continue it")
    with interruptible(console, doing) as interrupt:
        try:
            await _run_job(plan, lock, console, running)
        except asyncio.CancelledError:
            if not interrupt.caught() or running.job is None:
                raise
            _summary(running.job, plan, console, time.monotonic() - started, interrupt.code)
            return interrupt.code
    assert running.job is not None
    job = running.job
    code = EXIT_OK if all(r.ok for r in job.results.values()) else EXIT_ITEMS_FAILED
    _summary(job, plan, console, time.monotonic() - started, code)
    return code


@dataclass
class _Running:
    """The job once submitted or resumed (an interrupted command still sums it up)."""

    job: PoolJob | None = None


async def _run_job(plan: BatchPlan, lock: JobLock, console: Console, running: _Running) -> None:
    async with ServerPool(plan.servers, **plan.options) as pool:
        for url, state in pool.states().items():
            if state != "up":
                console.note(f"{url}: {state} (retried while the job runs)")
        if plan.resume:
            job = await pool.resume(plan.manifest, lock=lock)
            console.note(f"resuming {plan.manifest}: {job.progress().done} of {job.total} done")
        else:
            if plan.create_board:
                await _create_board(pool, plan)
            job = await _submit(pool, plan, lock)
            _note_repeats(job, plan, console)
        running.job = job
        for url, why in job.excluded.items():
            console.note(f"left out {url}: {one_line(why)}")
        with open_results_log(plan.out, resume=plan.resume) as log:
            await _follow(job, plan, console, log)


async def _create_board(pool: ServerPool, plan: BatchPlan) -> None:
    """``--create-board``: the board on every server that answers, made where missing."""
    assert plan.board is not None
    for url, state in pool.states().items():
        if state == "up":
            try:
                await pool.client(url).boards.resolve(plan.board, create=True)
            except (errors.ConnectionError, errors.TimeoutError):
                continue  # left out when the job is compiled
            except errors.BoardError as exc:
                raise CliError(f"--board: {url}: {one_line(str(exc))}") from None


async def _submit(pool: ServerPool, plan: BatchPlan, lock: JobLock) -> PoolJob:
    """Load the workflow typed by a server, apply the plan again with the server's types,
    submit the durable job."""
    assert plan.definition is not None
    try:
        wf = await pool.load(plan.definition)
    except (errors.ConnectionError, errors.TimeoutError):
        raise
    except InvokeAIError as exc:
        raise CliError(f"WORKFLOW: {one_line(str(exc))}") from None
    sweep, zipped = apply_batch(wf, plan)
    try:
        return await pool.submit_batch(
            wf, sweep, zip=zipped, runs=plan.runs, manifest=plan.manifest, save_to=plan.out,
            attach_workflow=plan.attach_workflow, lock=lock, board=plan.board,
            arguments=plan.arguments,
        )
    except errors.BoardError as exc:
        raise CliError(f"--board: {one_line(str(exc))}") from None
    except ValidationError as exc:
        raise CliError(one_line(str(exc))) from None


def _note_repeats(job: PoolJob, plan: BatchPlan, console: Console) -> None:
    """Say so when variations repeat one another (a CSV row given twice): each runs."""
    if plan.runs != 1:
        return  # --runs repeats on purpose
    seen = Counter(json.dumps(v.values, sort_keys=True, default=str)
                   for v in job.variations.variations)
    repeats = sum(n - 1 for n in seen.values())
    if repeats:
        console.note(f"note: {repeats} variation{'s repeat' if repeats > 1 else ' repeats'} "
                     "an earlier one; each runs and is saved on its own (drop the repeated "
                     "rows to run them once)")


def apply_batch(wf: WorkflowHandle, plan: BatchPlan) -> tuple[dict[int | str, Any], bool]:
    """Set ``--set`` values on ``wf``; the sweep (``key -> values``) and whether it is zipped
    (rows) or crossed (``--sweep``). Used offline and again on the server-typed handle."""
    for text in plan.sets:
        key, value = split_assignment(text, "--set")
        found = find_input(wf, key, f"--set {text}")
        try:
            wf.set(found, parse_value(found.field, value, f"--set {text}"))
        except ValidationError as exc:
            raise CliError(f"--set {text}: {one_line(str(exc))}") from None
    if plan.rows is not None:
        return _columns(wf, plan.rows, plan.source, text=plan.text_rows), True
    sweep: dict[int | str, Any] = {}
    seen: set[str] = set()
    for text in plan.sweeps:
        key, value = split_assignment(text, "--sweep")
        found = find_input(wf, key, f"--sweep {text}")
        if found.key in seen:
            raise CliError(f"--sweep {text}: input {found.label!r} is swept twice")
        seen.add(found.key)
        sweep[_as_given(key)] = parse_sweep(found.field, value, f"--sweep {text}")
    return sweep, False


def _as_given(key: str) -> int | str:
    """A sweep key as the user wrote it (an index as a number): results name the input so."""
    return int(key) if key.isdigit() else key


def _csv_rows(path: str) -> list[tuple[int, Any]]:
    text = _read_text(path, "--csv")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return [(n + 2, row) for n, row in enumerate(reader)]
    except csv.Error as exc:
        raise CliError(f"--csv {path}: not CSV ({exc})") from None


def _jsonl_rows(path: str) -> list[tuple[int, Any]]:
    rows = []
    for n, line in enumerate(_read_text(path, "--jsonl").splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except ValueError as exc:
                raise CliError(f"--jsonl {path} line {n}: {exc}") from None
    return rows


def _read_text(path: str, option: str) -> str:
    """The whole UTF-8 text of a variations file, or a CliError naming it (a leading byte
    order mark, as Excel's "CSV UTF-8" writes, is dropped: it is no part of the header)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise CliError(f"{option} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                       ) from None
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None


def _columns(wf: WorkflowHandle, rows: list[tuple[int, Any]], source: str, *,
             text: bool) -> dict[int | str, Any]:
    if not rows:
        raise CliError(f"{source}: no variations")
    for line, row in rows:
        if not isinstance(row, dict):
            raise CliError(f"{source} line {line}: a variation must be a JSON object "
                           "{\"Input label\": value, ...}")
        if text and None in row:
            raise CliError(f"{source} line {line}: more cells than the header names")
    labels = list(rows[0][1])
    columns: dict[int | str, list[Any]] = {}
    fields = {}
    for label in labels:
        found = find_input(wf, label, f"{source} column {label!r}")
        if found.key in fields:
            raise CliError(f"{source}: columns {label!r} and another name the same input "
                           f"{found.label!r}")
        fields[found.key] = found.field
        columns[_as_given(label)] = []
    for line, row in rows:
        if list(row) != labels:
            raise CliError(f"{source} line {line}: every variation must name the same inputs "
                           f"({', '.join(labels)})")
        for label, key, typed in zip(labels, columns, fields.values(), strict=True):
            where = f"{source} line {line} {label}"
            if text and row[label] is None:
                raise CliError(f"{where}: no value (the row is shorter than the header)")
            value = parse_value(typed, row[label], where) if text else row[label]
            columns[key].append(value)
    return columns


async def _follow(job: PoolJob, plan: BatchPlan, console: Console, log: ResultsLog) -> None:
    """List each variation as it finishes (``results.jsonl``; stdout: its image paths, or
    with ``--json`` its entry) while the display shows the job's progress."""
    with ProgressDisplay(console, total=job.total, title="batch") as display:
        refresh = asyncio.get_running_loop().create_task(_show_progress(job, display, console))
        try:
            async for result in job.as_completed():
                entry = result_entry(result)
                log.add(entry)
                if plan.json:
                    print_item(console, entry, plan.out)
                else:
                    for name in entry["files"]:
                        console.result(str(plan.out / name))
        finally:
            refresh.cancel()
        display.update(done=job.progress().done)
    await job.wait()


def result_entry(result: PoolResult) -> dict[str, Any]:
    """One variation as ``results.jsonl`` and ``--json`` list it (see :mod:`._listing`)."""
    names = [Path(path).name for path in result.saved]  # saved into OUT itself
    entry = item_entry(result.index, result.item_id, result.result,
                       lambda _: result.inputs, names)
    entry["server"] = result.server
    entry["may_have_run_twice"] = result.may_have_run_twice
    return entry


async def _show_progress(job: PoolJob, display: ProgressDisplay, console: Console) -> None:
    """The live display (rich on a terminal: bar, rate, ETA, and per server its items/s and
    queue depth), else a status line every LOG_EVERY seconds."""
    last_line = time.monotonic()
    while not await job.settled(REFRESH):
        progress = job.progress()
        display.update(
            done=progress.done, running=progress.counts.get("sent", 0),
            failed=progress.counts.get("failed", 0),
            canceled=progress.counts.get("canceled", 0),
            activity=servers_line(progress),
        )
        if not console.live and time.monotonic() - last_line >= LOG_EVERY:
            console.note(status_line(progress))
            last_line = time.monotonic()


def status_line(progress: Progress) -> str:
    """One line: done/total, per server items/s and queue depth, ETA."""
    line = f"{progress.done}/{progress.total}  {servers_line(progress)}"
    if progress.eta is not None:
        line += f"  ETA {progress.eta:.0f}s"
    return line


def servers_line(progress: Progress) -> str:
    """Per server: its items/s and how many items it holds (or its state)."""
    parts = []
    for server in progress.servers:
        name = server.url.split("//")[-1]
        if server.state != "up":
            parts.append(f"{name} {server.state}")
            continue
        rate = f"{server.rate:.1f}/s" if server.rate else "-/s"
        parts.append(f"{name} {rate} q{server.in_flight}")
    return "  ".join(parts)


def _summary(job: PoolJob, plan: BatchPlan, console: Console, wall: float, code: int) -> None:
    progress = job.progress()
    counts = {status: progress.counts.get(status, 0) for status in ENDED}
    counts["unfinished"] = job.total - progress.done
    said = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    console.note(f"{job.total} variations in {wall:.1f}s: {said}")
    for url, n in job.per_server().items():
        console.note(f"  {url}: {n}")
    twice = sum(r.may_have_run_twice for r in job.results.values())
    if twice:
        console.note(f"  {twice} variation{'s' if twice > 1 else ''} may have run twice (a "
                     "server went away while running it: may_have_run_twice in "
                     f"{RESULTS_JSONL})")
    if job.duplicates:
        console.note(f"  {len(job.duplicates)} items also ran on a server that went away")
    failed = [r for r in job.results.values() if not r.ok]
    for r in failed[:5]:
        values = ", ".join(f"{name}={value}" for name, value in r.inputs.items())
        console.note(f"  variation {r.index} ({values}) {r.status}: "
                     f"{one_line(r.result.error_message or '')}")
    console.note(f"  {plan.out / RESULTS_JSONL} lists every finished variation")
    if plan.json:
        print_summary(console, {
            "total": job.total, **counts,
            "images_saved": sum(len(r.saved) for r in job.results.values()),
            "per_server": job.per_server(), "may_have_run_twice": twice,
            "ran_twice": len(job.duplicates), "seconds": round(wall, 3), "out": str(plan.out),
            "results": str(plan.out / RESULTS_JSONL), "exit_code": code,
        })
