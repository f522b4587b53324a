"""The durable record of a pool job: a SQLite file (standard library, off the event loop).

One row per variation: its inputs, status (``pending`` -> ``sent`` -> ``completed`` /
``failed`` / ``canceled``), the server and batch it was sent to, its position in that
batch, its item id, its image names and saved paths, and its earlier attempts. The job's
enqueue bodies (one per distinct server compile) are stored too, so a resumed job sends
exactly what the first one would have.

Write order is what makes resume exact: a chunk is recorded as ``sent`` (server, batch id,
positions) *before* its enqueue request leaves, item ids as soon as the server answers, and
a result only after it was delivered (and its images saved). The file uses WAL journaling,
so a reader (``invokeai-client batch --resume``, a progress display) never blocks the job.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from .._files import make_folder, write_error
from ..errors import FileWriteError, ValidationError
from .results import PoolResult
from .variations import Variation, VariationSet

__all__ = ["Manifest", "Row"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variations (
    idx INTEGER PRIMARY KEY,
    vals TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    server TEXT,
    batch_id TEXT,
    pos INTEGER,
    item_id INTEGER,
    images TEXT,
    saved TEXT,
    attempts TEXT
);
CREATE INDEX IF NOT EXISTS by_status ON variations (status);
"""


@dataclass(frozen=True)
class Row:
    """One variation as the manifest holds it."""

    index: int
    values: tuple[Any, ...]
    status: str
    server: str | None
    batch_id: str | None
    pos: int | None
    item_id: int | None
    images: tuple[str, ...]
    saved: tuple[str, ...]
    attempts: tuple[dict[str, Any], ...]


class Manifest:
    """A job's SQLite file. Use :meth:`create` for a new job and :meth:`open` to resume."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.Lock()
        self._order = asyncio.Lock()  # writes land in the order they were asked for
        self.closed = False
        """Whether the connection is closed (a job closes it when it ends)."""

    def __repr__(self) -> str:
        return f"<Manifest {str(self.path)!r}>"

    # -- opening --------------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        path: str | Path,
        variations: VariationSet,
        workflow: Mapping[str, Any],
        *,
        bodies: Mapping[str, Mapping[str, Any]],
        settings: Mapping[str, Any],
    ) -> Manifest:
        """A new manifest holding every variation as ``pending``; refuses an existing file."""
        target = Path(path)
        if await anyio.Path(target).exists():
            raise ValidationError(
                f"the job manifest {target} exists already: resume it (pool.resume / "
                "--resume) or choose another file",
                input="manifest",
                rule="new file",
            )
        manifest: Manifest | None = None
        meta = {
            "fields": json.dumps(variations.fields),
            "names": json.dumps(dict(variations.names)),
            "given": json.dumps(dict(variations.given)),
            "workflow": json.dumps(workflow),
            "settings": json.dumps(settings, default=str),
            "bodies": json.dumps(dict(bodies)),
            "total": str(len(variations)),
        }
        rows = [(v.index, json.dumps(v.values)) for v in variations.variations]
        # Written whole under a temporary name, then linked into place: a reader (or a
        # resume) never sees a half-made job, and a crash leaves none behind.
        draft = target.with_name(target.name + ".new")
        try:
            await anyio.to_thread.run_sync(_remove, None, draft)
            manifest = cls(target, await _open(draft, create=True, shown=target))
            await manifest._run(_create, meta, rows)
            await manifest.close()
            await anyio.to_thread.run_sync(_publish, draft, target)
        except BaseException:  # disk full...: no half manifest that a retry would refuse
            with anyio.CancelScope(shield=True):
                db = None if manifest is None else manifest._db
                await anyio.to_thread.run_sync(_remove, db, draft)
            raise
        return cls(target, await _open(target, create=False))

    @classmethod
    async def open(cls, path: str | Path) -> Manifest:
        """An existing manifest (to resume its job)."""
        target = Path(path)
        if not await anyio.Path(target).is_file():
            raise ValidationError(
                f"no job manifest at {target}", input="manifest", rule="existing file"
            )
        return cls(target, await _open(target, create=False))

    async def close(self) -> None:
        """Close the file's connection (after the writes asked for before); idempotent."""
        async with self._order:
            await anyio.to_thread.run_sync(self.close_now)

    def close_now(self) -> None:
        """Close the connection at once (waits for a write in progress); idempotent. A job
        calls it when nothing is left to write: success, error or cancel, then close."""
        with self._lock:
            self._db.close()
            self.closed = True

    async def _run(self, function: Any, *args: Any) -> Any:
        def call() -> Any:
            with self._lock, _manifest_errors(self.path):
                return function(self._db, *args)

        async with self._order:
            return await anyio.to_thread.run_sync(call)

    # -- writing --------------------------------------------------------------------------

    async def sent(self, indexes: Sequence[int], server: str, batch_id: str) -> None:
        """Record a chunk about to be enqueued (before the request leaves)."""
        rows = [(server, batch_id, pos, index) for pos, index in enumerate(indexes)]
        await self._run(_write, "UPDATE variations SET status='sent', server=?, batch_id=?, "
                        "pos=?, item_id=NULL WHERE idx=?", rows)

    async def item_ids(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Record the item id the server gave each variation."""
        rows = [(item_id, index) for index, item_id in pairs]
        await self._run(_write, "UPDATE variations SET item_id=? WHERE idx=?", rows)

    async def back(self, indexes: Sequence[int], attempts: Mapping[int, Sequence[Any]]) -> None:
        """Variations sent back to the line (their server is down, or cut them)."""
        rows = [
            (json.dumps([a.__dict__ for a in attempts.get(i, ())]), i) for i in indexes
        ]
        await self._run(_write, "UPDATE variations SET status='pending', server=NULL, "
                        "batch_id=NULL, pos=NULL, item_id=NULL, attempts=? WHERE idx=?", rows)

    async def finished(self, result: PoolResult) -> None:
        """Record a variation's one result (after its images were saved)."""
        row = (
            result.status, result.server, result.result.batch_id, result.item_id,
            json.dumps([image.image_name for image in result.result.images]),
            json.dumps(list(result.saved)),
            json.dumps([a.__dict__ for a in result.attempts]),
            result.index,
        )
        await self._run(_write, "UPDATE variations SET status=?, server=?, batch_id=?, "
                        "item_id=?, images=?, saved=?, attempts=? WHERE idx=?", [row])

    async def joined(self, server: str, body: Mapping[str, Any], uploads: Mapping[str, str]
                     ) -> None:
        """Record the body (and image names) of a server that joined the job after it
        started: a resume sends it what this run did."""
        await self._run(_join, server, json.dumps(dict(body)), dict(uploads))

    # -- reading --------------------------------------------------------------------------

    async def meta(self) -> dict[str, Any]:
        """The job's fields, workflow, settings, bodies and total."""
        raw: dict[str, str] = await self._run(
            lambda db: dict(db.execute("SELECT key, value FROM meta").fetchall())
        )
        return {key: (int(v) if key == "total" else json.loads(v)) for key, v in raw.items()}

    async def rows(self) -> list[Row]:
        """Every variation, in sweep order."""
        raw = await self._run(lambda db: db.execute(
            "SELECT idx, vals, status, server, batch_id, pos, item_id, images, saved, attempts "
            "FROM variations ORDER BY idx").fetchall())
        return [_row(r) for r in raw]

    async def counts(self) -> dict[str, int]:
        """Variations per status (readable while the job runs, from any process)."""
        raw = await self._run(lambda db: db.execute(
            "SELECT status, COUNT(*) FROM variations GROUP BY status").fetchall())
        return {status: n for status, n in raw}

    async def variation_set(self) -> VariationSet:
        """The job's variations as they were expanded when it was created."""
        meta = await self.meta()
        fields = tuple((node, name) for node, name in meta["fields"])
        rows = await self.rows()
        variations = tuple(Variation(r.index, r.values) for r in rows)
        return VariationSet(fields, variations, meta.get("names", {}), meta.get("given", {}))


async def _open(path: Path, *, create: bool, shown: Path | None = None) -> sqlite3.Connection:
    """A connection to ``path`` (errors name ``shown``, the job's file, when given)."""
    def connect() -> sqlite3.Connection:
        if create:
            make_folder(path.parent, input="manifest")
        with _manifest_errors(shown or path):
            return _connect(path, create)

    return await anyio.to_thread.run_sync(connect)


@contextmanager
def _manifest_errors(path: Path) -> Iterator[None]:
    """SQLite and OS errors on the manifest become errors of the tree naming its file: a
    file that is no manifest is a ValidationError, anything else (disk full, read-only,
    no permission) a FileWriteError."""
    try:
        yield
    except FileWriteError:
        raise
    except OSError as exc:
        raise write_error(exc, path) from exc
    except sqlite3.DatabaseError as exc:
        name = getattr(exc, "sqlite_errorname", "") or "sqlite"
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise ValidationError(
                f"{path} is not a job manifest: {exc}",
                input="manifest",
                rule="a manifest written by the pool",
            ) from exc
        raise FileWriteError(
            f"cannot write the job manifest {str(path)!r}: {exc} ({name})",
            path=str(path), errno=None, strerror=str(exc),
        ) from exc


def _remove(db: sqlite3.Connection | None, path: Path) -> None:
    """Close ``db`` and delete its files (best effort: another error is on its way)."""
    if db is not None:
        with suppress(sqlite3.Error):
            db.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(OSError):
            path.with_name(path.name + suffix).unlink()


def _publish(draft: Path, target: Path) -> None:
    """Give the finished ``draft`` its name, never over an existing file."""
    with _manifest_errors(target):
        try:
            os.link(draft, target)
        except FileExistsError:
            raise ValidationError(
                f"the job manifest {target} exists already: another job was created there",
                input="manifest", rule="new file",
            ) from None
        draft.unlink()


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        if not create:
            _check_job(db, path)  # first: never add tables to a file that is not a job's
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if create:
            db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _check_job(db: sqlite3.Connection, path: Path) -> None:
    """ValidationError naming ``path`` unless it holds a pool job (its meta and variations)."""
    try:
        keys = {key for (key,) in db.execute("SELECT key FROM meta")}
        db.execute("SELECT idx, vals, status FROM variations LIMIT 1")
        missing = sorted({"fields", "bodies", "total", "settings"} - keys)
        why = f"its meta table lacks {', '.join(missing)}" if missing else None
    except sqlite3.DatabaseError as exc:
        why = str(exc)
    if why is not None:
        raise ValidationError(
            f"{path} is not a job manifest: {why}", input="manifest",
            rule="a manifest written by the pool",
        )


def _create(db: sqlite3.Connection, meta: Mapping[str, str], rows: list[tuple[int, str]]) -> None:
    with db:
        db.execute("BEGIN")
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(meta.items()))
        db.executemany("INSERT INTO variations (idx, vals) VALUES (?, ?)", rows)


def _join(db: sqlite3.Connection, server: str, body: str, uploads: dict[str, str]) -> None:
    with db:
        db.execute("BEGIN")
        meta = dict(db.execute(
            "SELECT key, value FROM meta WHERE key IN ('bodies', 'settings')").fetchall())
        bodies, settings = json.loads(meta["bodies"]), json.loads(meta["settings"])
        bodies[server] = json.loads(body)
        if uploads:
            settings.setdefault("uploads", {})[server] = uploads
        db.executemany("UPDATE meta SET value=? WHERE key=?", [
            (json.dumps(bodies), "bodies"), (json.dumps(settings), "settings")])


def _write(db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with db:
        db.execute("BEGIN")
        db.executemany(sql, rows)


def _row(raw: tuple[Any, ...]) -> Row:
    index, vals, status, server, batch_id, pos, item_id, images, saved, attempts = raw
    return Row(
        index, tuple(json.loads(vals)), status, server, batch_id, pos, item_id,
        tuple(json.loads(images or "[]")), tuple(json.loads(saved or "[]")),
        tuple(json.loads(attempts or "[]")),
    )
