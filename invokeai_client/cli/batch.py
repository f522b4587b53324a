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
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from ..errors import InvokeAIError, ValidationError
from ..pool import PoolJob, Progress, ServerPool
from ..workflows import WorkflowHandle
from ._console import EXIT_ITEMS_FAILED, EXIT_OK, CliError, Console
from ._progress import ProgressDisplay
from ._server import add_auth_options, client_options
from ._values import find_input, one_line, parse_sweep, parse_value, split_assignment

MANIFEST = "job.sqlite"
REFRESH = 0.5
LOG_EVERY = 10.0
"""Seconds between progress lines when stderr is not a terminal."""


def add_batch_parser(sub: Any) -> None:
    """The ``batch`` sub-command's options."""
    batch = sub.add_parser(
        "batch",
        help="run a sweep over one or more servers as a durable, resumable job",
        description="Spread every variation of a workflow over the --server(s), save the "
        "images into --out and record the job in OUT/job.sqlite (--resume continues it).",
    )
    batch.add_argument("workflow", metavar="WORKFLOW", help="workflow JSON exported by the GUI")
    source = batch.add_mutually_exclusive_group()
    source.add_argument("--sweep", action="append", metavar='"LABEL=V1,V2,..."',
                        help="vary an input (repeatable: every combination runs)")
    source.add_argument("--csv", metavar="FILE", help="one variation per row; header = labels")
    source.add_argument("--jsonl", metavar="FILE", help="one variation per line: {label: value}")
    batch.add_argument("--set", action="append", metavar='"LABEL=VALUE"',
                       help="set an input for every variation (repeatable)")
    batch.add_argument("--runs", type=int, default=1, help="repeat every variation N times")
    batch.add_argument("--server", action="append", required=True, metavar="URL",
                       help="an InvokeAI server (repeatable)")
    batch.add_argument("--out", required=True, metavar="DIR", help="folder for images + job")
    batch.add_argument("--resume", action="store_true", help="continue the job in --out")
    batch.add_argument("--no-workflow-json", action="store_true",
                       help="leave the workflow JSON off the batches (less server work; the "
                       "gallery cannot reopen the workflow from an image)")
    add_auth_options(batch)


def run_batch_command(args: argparse.Namespace, console: Console) -> int:
    """Run ``batch`` (checks the options first); returns the exit code."""
    out = Path(args.out).expanduser()
    manifest = out / MANIFEST
    if args.resume and not manifest.is_file():
        raise CliError(f"--resume: no job in {out} ({MANIFEST} is missing)")
    if not args.resume and manifest.exists():
        raise CliError(f"--out {out} holds a job already: add --resume to continue it, or "
                       "choose another folder")
    if args.runs < 1:
        raise CliError(f"--runs {args.runs}: must be 1 or more")
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: not a folder")
    options = client_options(args)
    return asyncio.run(_batch(args, out, manifest, options, console))


async def _batch(args: argparse.Namespace, out: Path, manifest: Path, options: dict[str, Any],
                 console: Console) -> int:
    started = time.monotonic()
    async with ServerPool(args.server, **options) as pool:
        for url, state in pool.states().items():
            if state != "up":
                console.note(f"{url}: {state} (retried while the job runs)")
        if args.resume:
            job = await pool.resume(manifest)
            console.note(f"resuming {manifest}: {job.progress().done} of {job.total} done")
        else:
            job = await _submit(pool, args, out, manifest)
        for url, why in job.excluded.items():
            console.note(f"left out {url}: {one_line(why)}")
        await _follow(job, console)
    _summary(job, console, time.monotonic() - started)
    return EXIT_OK if all(r.ok for r in job.results.values()) else EXIT_ITEMS_FAILED


async def _submit(pool: ServerPool, args: argparse.Namespace, out: Path,
                  manifest: Path) -> PoolJob:
    try:
        wf = await pool.load(args.workflow)
    except InvokeAIError as exc:
        raise CliError(f"{args.workflow}: {one_line(str(exc))}") from None
    for text in args.set or ():
        key, value = split_assignment(text, "--set")
        found = find_input(wf, key, f"--set {text}")
        wf.set(found, parse_value(found.field, value, f"--set {text}"))
    sweep, zipped = read_variations(wf, args)
    try:
        return await pool.submit_batch(
            wf, sweep, zip=zipped, runs=args.runs, manifest=manifest, save_to=out,
            attach_workflow=not args.no_workflow_json,
        )
    except ValidationError as exc:
        raise CliError(one_line(str(exc))) from None


def read_variations(wf: WorkflowHandle, args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """The sweep (``key -> values``) and whether it is zipped (rows) or crossed."""
    if args.csv:
        text = _read_text(args.csv, "--csv")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = [(n + 2, row) for n, row in enumerate(reader)]
        return _columns(wf, rows, f"--csv {args.csv}", text=True), True
    if args.jsonl:
        rows = []
        for n, line in enumerate(_read_text(args.jsonl, "--jsonl").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except ValueError as exc:
                    raise CliError(f"--jsonl {args.jsonl} line {n}: {exc}") from None
        return _columns(wf, rows, f"--jsonl {args.jsonl}", text=False), True
    sweep: dict[str, Any] = {}
    for text in args.sweep or ():
        key, value = split_assignment(text, "--sweep")
        found = find_input(wf, key, f"--sweep {text}")
        sweep[found.key] = parse_sweep(found.field, value, f"--sweep {text}")
    return sweep, False


def _read_text(path: str, option: str) -> str:
    """The whole UTF-8 text of a variations file, or a CliError naming it."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise CliError(f"{option} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                       ) from None
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None


def _columns(wf: WorkflowHandle, rows: list[tuple[int, Any]], source: str, *,
             text: bool) -> dict[str, Any]:
    if not rows:
        raise CliError(f"{source}: no variations")
    for line, row in rows:
        if not isinstance(row, dict):
            raise CliError(f"{source} line {line}: a variation must be a JSON object "
                           "{\"Input label\": value, ...}")
    labels = list(rows[0][1])
    columns: dict[str, list[Any]] = {}
    for label in labels:
        found = find_input(wf, label, f"{source} column {label!r}")
        columns[found.key] = []
    for line, row in rows:
        if not isinstance(row, dict) or list(row) != labels:
            raise CliError(f"{source} line {line}: every variation must name the same inputs "
                           f"({', '.join(labels)})")
        for label, key in zip(labels, columns, strict=True):
            field = wf.field(key)
            where = f"{source} line {line} {label}"
            if text and row[label] is None:
                raise CliError(f"{where}: no value (the row is shorter than the header)")
            columns[key].append(parse_value(field, row[label], where) if text else row[label])
    return columns


async def _follow(job: PoolJob, console: Console) -> None:
    """The live display (rich on a terminal: bar, rate, ETA, and per server its items/s and
    queue depth), else a status line every LOG_EVERY seconds."""
    last_line = time.monotonic()
    with ProgressDisplay(console, total=job.total, title="batch") as display:
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
        display.update(done=job.progress().done)
    await job.wait()


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


def _summary(job: PoolJob, console: Console, wall: float) -> None:
    progress = job.progress()
    counts = ", ".join(f"{n} {status}" for status, n in sorted(progress.counts.items()) if n)
    console.note(f"{job.total} variations in {wall:.1f}s: {counts}")
    for url, n in job.per_server().items():
        console.note(f"  {url}: {n}")
    if job.duplicates:
        console.note(f"  {len(job.duplicates)} items also ran on a server that went away")
    failed = [r for r in job.results.values() if not r.ok]
    for r in failed[:5]:
        console.note(f"  variation {r.index} {r.status}: {one_line(r.result.error_message or '')}")
    for r in sorted(job.results.values(), key=lambda r: r.index):
        for path in r.saved:
            console.result(path)
