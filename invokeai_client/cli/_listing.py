"""What the commands write about their items: one entry shape for every command, in a
listing file inside the output folder and, with ``--json``, one JSON object a line on stdout.

- ``run`` and ``generate`` (ONE batch, settled in one go) write ``OUT/results.json`` when
  the batch ends or is interrupted: one document, written atomically.
- ``batch`` (a durable job that may take days and be resumed) appends ``OUT/results.jsonl``,
  one line per variation as it finishes, so the listing survives a crash; a ``--resume``
  appends only variations the file does not list yet (:class:`ResultsLog`).

An entry is ``{"index", "item_id", "status", "values", "files", "images"}`` (+ ``"error"``
for a failed item; ``batch`` adds ``"server"`` and ``"may_have_run_twice"``). ``files`` are
the paths the plain output prints, except in ``results.jsonl``: there they are names inside
the output folder, as a job is resumed from anywhere (its ``--json`` lines print the paths).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .._files import make_folder, write_error, write_file
from ..errors import FileWriteError
from ..runs import BatchRun, WorkflowResult
from ._console import Console

RESULTS_JSON = "results.json"
RESULTS_JSONL = "results.jsonl"


@dataclass
class Outcome:
    """What became of each item of one batch: result and saved files, by item id."""

    results: dict[int, WorkflowResult] = field(default_factory=dict)
    files: dict[int, list[Path]] = field(default_factory=dict)
    unsaved: int = 0
    """Images that could not be downloaded."""
    fatal: str | None = None
    """Why saving had to stop (the output folder cannot be written)."""


Values = Callable[[WorkflowResult], Mapping[str, Any]]
"""An item's swept values, keyed as the user named the inputs."""


def item_entry(
    index: int, item_id: int, result: WorkflowResult | None, values: Values,
    files: Iterable[str | Path] = (), status: str | None = None,
) -> dict[str, Any]:
    """One item as the listings and ``--json`` show it (``status`` when no result yet)."""
    entry: dict[str, Any] = {
        "index": index,
        "item_id": item_id,
        "status": result.status if result is not None else status,
        "values": dict(values(result)) if result is not None else {},
        "files": [str(p) for p in files],
        "images": [i.image_name for i in result.images] if result is not None else [],
    }
    if result is not None and not result.ok:
        entry["error"] = {
            "node_id": result.error_node_id,
            "type": result.error_type,
            "message": result.error_message,
        }
    return entry


def print_item(console: Console, entry: Mapping[str, Any], out: Path | None = None) -> None:
    """``--json``: the entry on stdout (its files, when names inside ``out``, as paths)."""
    files = entry["files"] if out is None else [str(out / name) for name in entry["files"]]
    console.result(json.dumps({"type": "item", **entry, "files": files}, default=str))


def print_summary(console: Console, summary: Mapping[str, Any]) -> None:
    """``--json``: the command's last line on stdout."""
    console.result(json.dumps({"type": "summary", **summary}, default=str))


# -- run, generate: results.json ----------------------------------------------------------


async def write_results_json(
    out: Path, header: Mapping[str, Any], batch: BatchRun, outcome: Outcome, values: Values
) -> None:
    """``OUT/results.json``: ``header`` and every item of ``batch`` (finished or not)."""
    items = []
    for index, run in enumerate(batch.runs):
        result = outcome.results.get(run.item_id) or run.result_nowait()
        items.append(item_entry(index, run.item_id, result, values,
                                outcome.files.get(run.item_id, ()), run.status))
    document = {**header, "batch_id": batch.batch_id, "items": items}
    text = json.dumps(document, indent=2, default=str) + "\n"
    # In a worker thread that finishes even if a second Ctrl-C arrives: never half a file
    # (atomic, never through a symlink planted in the folder; disk errors: FileWriteError).
    await anyio.to_thread.run_sync(_write_text, out / RESULTS_JSON, text)


def _write_text(path: Path, text: str) -> None:
    make_folder(path.parent, input="--out")
    write_file(path, text.encode())


def summarize(
    console: Console, out: Path, batch: BatchRun, outcome: Outcome, seconds: float, code: int,
    *, as_json: bool,
) -> None:
    """The last lines of ``run`` and ``generate``: counts, rate, where the images went (and
    the ``--json`` summary object)."""
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
    console.note(f"{saved} image{'' if saved == 1 else 's'} saved to {out}/{missed} "
                 f"({RESULTS_JSON} lists every item)")
    if as_json:
        print_summary(console, {
            "batch_id": batch.batch_id, "total": counts.total,
            "completed": counts.completed, "failed": counts.failed,
            "canceled": counts.canceled, "unfinished": unfinished, "images_saved": saved,
            "not_downloaded": outcome.unsaved, "seconds": round(seconds, 3),
            "out": str(out), "results": str(out / RESULTS_JSON), "exit_code": code,
        })


# -- batch: results.jsonl -----------------------------------------------------------------


class ResultsLog:
    """``OUT/results.jsonl`` of a ``batch`` job: one line per finished variation, appended
    (and flushed to the file) as each finishes, never twice for one variation.

    :func:`open_results_log` reads what the file lists already (a resumed job: those
    variations are not written again) and drops a line cut short by a crash; a new job
    starts it empty. The file is opened without following a symlink planted in its place.
    """

    def __init__(self, path: Path, fd: int, listed: set[int]) -> None:
        self.path = path
        self._fd = fd
        self.listed = listed
        """Indexes of the variations the file lists."""

    def add(self, entry: Mapping[str, Any]) -> bool:
        """Append ``entry`` unless its variation is listed already; whether it was."""
        index = entry["index"]
        if index in self.listed:
            return False
        data = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode()
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            raise _write_failed(self.path, exc) from None
        self.listed.add(index)
        return True


@contextlib.contextmanager
def open_results_log(folder: Path, *, resume: bool) -> Iterator[ResultsLog]:
    """The :class:`ResultsLog` in ``folder`` for the block: continued (``resume``) or
    started empty (a new job)."""
    path = folder / RESULTS_JSONL
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | (0 if resume else os.O_TRUNC), 0o644)
    except OSError as exc:
        raise _write_failed(path, exc) from None
    try:
        yield ResultsLog(path, fd, _listed(path, fd) if resume else set())
    finally:
        os.close(fd)


def _listed(path: Path, fd: int) -> set[int]:
    """The variation indexes ``path`` lists; a last line without its newline (the writer
    died mid-line) is cut off so the next line starts clean."""
    with open(fd, "rb", closefd=False) as handle:
        handle.seek(0)
        text = handle.read()
    end = text.rfind(b"\n") + 1
    if end < len(text):
        try:
            os.ftruncate(fd, end)
        except OSError as exc:
            raise _write_failed(path, exc) from None
    listed = set()
    for line in text[:end].splitlines():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            listed.add(int(json.loads(line)["index"]))
    return listed


def _write_failed(path: Path, exc: OSError) -> FileWriteError:
    """The tree's error for ``path`` (a symlink in its place: ELOOP); the job itself stays
    resumable."""
    return write_error(exc, path)
