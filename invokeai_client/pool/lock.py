"""One run at a time per job: an exclusive lock held for the life of a durable pool job.

Two runs of one job (two ``--resume``, or a resume and a fresh run on the same ``--out``)
would each send the variations the manifest lists as pending: every one of them would run
twice. So whoever writes a job's manifest first takes an exclusive, non-blocking lock on the
file ``<manifest>.lock`` beside it (``flock``; ``msvcrt.locking`` on Windows) and keeps it
until the job ends. The operating system drops the lock when the process dies (crash,
``kill -9``), so a job is never left locked by a run that is gone. The lock file itself stays
(removing it would let a third run lock a file nobody else sees); it holds the holder's pid.

Readers (``Manifest.open`` to show progress) take no lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from types import TracebackType

from ..errors import JobBusyError, ValidationError

__all__ = ["JobLock"]


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

class JobLock:
    """The exclusive lock of the job whose manifest is ``path``: :meth:`acquire` it before
    anything is sent, :meth:`release` it when the job ends (also a context manager)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"<JobLock {str(self.path)!r} {state}>"

    @property
    def held(self) -> bool:
        return self._fd is not None

    @classmethod
    def acquire(cls, manifest: str | Path) -> JobLock:
        """Lock the job of ``manifest`` (the file need not exist yet).

        Raises :class:`~invokeai_client.errors.JobBusyError` naming the job's folder when
        another run holds it, and :class:`~invokeai_client.errors.ValidationError` when the
        folder cannot be written (a job there could not record anything).
        """
        target = Path(manifest).expanduser()
        lock_path = target.with_name(target.name + ".lock")
        try:
            # Never through a symlink planted in the job folder: the holder is written here.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as exc:
            raise ValidationError(
                f"cannot lock the job {target}: {lock_path.parent} is not a writable folder "
                f"({exc.strerror or exc})",
                input=str(target), rule="writable job folder",
            ) from None
        if not _try_lock(fd):
            holder = _read_holder(fd)
            os.close(fd)
            raise JobBusyError(
                f"the job in {target.parent} is in use by another run"
                + (f" ({holder})" if holder else "")
                + ": one run at a time per job; wait for it to end or stop it, then --resume",
                input=str(target), holder=holder,
            )
        _write_holder(fd)
        return cls(lock_path, fd)

    def release(self) -> None:
        """Give the job up (idempotent); closing the descriptor drops the OS lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> JobLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(fd: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # no pwrite on Windows
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)


def _read_holder(fd: int) -> str | None:
    with contextlib.suppress(OSError, AttributeError, UnicodeDecodeError):
        text = os.pread(fd, 200, 0).decode().strip()
        return text or None
    return None
