"""Files the SDK writes: one home for their names and for safe, atomic writes.

Every download written to disk (``images.download(image, folder)``, ``ImageRef.save``,
thumbnails, bulk download archives, the CLI's outputs) goes through here, so all of them follow
the same rules:

- **Names.** A name that is already a plain portable file name (ASCII letters, digits, ``._-``,
  not starting with a dot, at most 255 bytes) is kept verbatim. Any other name is cleaned
  (separators, spaces, control, bidi and non-ASCII characters become ``_``, leading dots go)
  and gets a short hash of the original, so two different names never become one file
  (``a b.png`` -> ``a_b-<hash>.png``, which differs from ``a_b.png``).
- **Place.** The file is created inside the folder through a directory handle with
  ``O_NOFOLLOW | O_EXCL``: a symlink planted in the folder is never followed.
- **No overwrite unless asked.** An existing file (or symlink) of that name is refused before
  the download starts and again when the file is put in place, unless ``overwrite=True``
  (which replaces the directory entry, never writes through a link).
- **Atomic.** Bytes go to a short temporary name (``.invokeai-<hex>.part``, whatever the final
  name's length) and are renamed into place complete, or removed.
- **Checked content.** Bytes meant to be an image must start like one (PNG, JPEG, WebP, GIF,
  BMP, TIFF), an archive like a zip, before anything is written.
- **Disk errors in the tree.** No space, no permission, a read-only file system, too many
  open files, a name too long: :class:`~invokeai_client.errors.FileWriteError` naming the
  path and the cause (a file in the way of a folder is a ``ValidationError``); the temporary
  file is removed, so nothing partial is left.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import errors

__all__ = [
    "AtomicFile",
    "Content",
    "check_content",
    "make_folder",
    "plan_target",
    "safe_file_name",
    "write_file",
]

NAME_MAX = 255
"""Longest file name (in bytes) the common file systems accept."""

Content = Literal["image", "zip"]

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_HASH_CHARS = 10
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}
"""link() errors that mean "no hard links here": fall back to rename."""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FD = os.open in os.supports_dir_fd and os.replace in os.supports_dir_fd


def safe_file_name(name: str, *, default: str = "image.png") -> str:
    """The file name a download called ``name`` gets (see the module doc): plain names kept
    verbatim, others cleaned and made distinct by a short hash of ``name``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if _SAFE.fullmatch(base) and len(base.encode()) <= NAME_MAX:
        return base
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    # Accents keep their base letter (é -> e); everything else unsafe becomes "_".
    ascii_form = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE_RUN.sub("_", ascii_form).lstrip("._-")
    match = _SUFFIX.search(cleaned)
    suffix = match.group(0) if match else Path(default).suffix
    stem = cleaned[: match.start()] if match else cleaned
    stem = stem.rstrip("._-") or Path(default).stem
    room = NAME_MAX - len(suffix) - _HASH_CHARS - 1
    return f"{stem[:room]}-{digest}{suffix}"


_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image": (
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",  # JPEG
        b"GIF87a",
        b"GIF89a",
        b"BM",
        b"II*\x00",  # TIFF, little-endian
        b"MM\x00*",  # TIFF, big-endian
    ),
    "zip": (b"PK\x03\x04", b"PK\x05\x06"),
}


def check_content(kind: Content, head: bytes, *, method: str, path: str) -> None:
    """Refuse a body that does not start like ``kind`` (an image, a zip archive)."""
    if any(head.startswith(magic) for magic in _MAGIC[kind]):
        return
    if kind == "image" and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return
    shown = head[:16]
    raise errors.UnexpectedResponseError(
        f"{method} {path}: expected {'an image' if kind == 'image' else 'a zip archive'} "
        f"from InvokeAI but the body starts with {shown!r}; nothing was saved",
        method=method,
        path=path,
    )


@dataclass(frozen=True, slots=True)
class Target:
    """Where a download goes: an existing ``folder`` and a plain file ``name`` in it."""

    folder: Path
    name: str

    @property
    def path(self) -> Path:
        return self.folder / self.name


def write_error(exc: OSError, path: Path | str) -> errors.FileWriteError:
    """The tree's error for an OS error met while writing ``path``: names both."""
    code = errno.errorcode.get(exc.errno or 0, "")
    cause = exc.strerror or str(exc) or type(exc).__name__
    return errors.FileWriteError(
        f"cannot write {str(path)!r}: {cause}{f' ({code})' if code else ''}",
        path=str(path),
        errno=exc.errno,
        strerror=exc.strerror,
    )


@contextmanager
def _writing(path: Path | str) -> Iterator[None]:
    """OS errors inside become :func:`write_error` (errors of the tree pass unchanged)."""
    try:
        yield
    except errors.InvokeAIError:
        raise
    except OSError as exc:
        raise write_error(exc, path) from exc


def make_folder(folder: Path, *, input: str = "folder") -> Path:
    """Create ``folder`` (and its parents) if needed. A file in the way is a
    ``ValidationError`` naming ``input``; any other OS error a ``FileWriteError``.
    Blocking: run it in a worker thread."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise errors.ValidationError(
            f"cannot save into {str(folder)!r}: {exc.strerror or exc} (a file is in the way)",
            input=input,
            rule="a folder that exists or can be created",
        ) from None
    except OSError as exc:
        raise write_error(exc, folder) from exc
    return folder


def write_file(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` (in an existing folder) by the rules of this module: atomic,
    no symlink followed, no overwrite unless ``overwrite``. Blocking: use a worker thread."""
    target = plan_target(path, path.name, overwrite=overwrite)
    out = AtomicFile(target)
    try:
        out.write(data)
    except BaseException:
        out.discard()
        raise
    return out.commit(overwrite=overwrite)


def plan_target(dest: Path, file_name: str, *, overwrite: bool) -> Target:
    """Where a download named ``file_name`` goes for ``dest`` (a folder, or a file path in an
    existing folder); refuses an existing file unless ``overwrite``. Blocking: run it in a
    worker thread."""
    with _writing(dest):
        return _plan_target(dest, file_name, overwrite=overwrite)


def _plan_target(dest: Path, file_name: str, *, overwrite: bool) -> Target:
    if dest.is_dir():
        target = Target(dest.resolve(), safe_file_name(file_name))
    else:
        if not dest.parent.is_dir():
            raise errors.ValidationError(
                f"cannot save to {str(dest)!r}: folder {str(dest.parent)!r} does not exist",
                input="dest",
                rule="an existing folder or a file in one",
            )
        if dest.name in ("", ".", ".."):
            raise errors.ValidationError(
                f"cannot save to {str(dest)!r}: it names no file",
                input="dest",
                rule="an existing folder or a file in one",
            )
        target = Target(dest.parent.resolve(), dest.name)
    if not overwrite:
        _refuse_existing(target)
    return target


def _refuse_existing(target: Target) -> None:
    try:
        os.lstat(target.path)
    except FileNotFoundError:
        return
    raise errors.ValidationError(
        f"{str(target.path)!r} already exists; pass overwrite=True to replace it",
        input="dest",
        rule="no overwrite unless overwrite=True",
    )


class AtomicFile:
    """A file being written under a temporary name in ``target.folder``; :meth:`commit` puts it
    in place, :meth:`discard` removes it. Blocking: call the methods from a worker thread."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._part = f".invokeai-{secrets.token_hex(8)}.part"
        self._dir_fd: int | None = None
        self._fd: int | None = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0)
        try:
            with _writing(target.path):
                if _DIR_FD:
                    self._dir_fd = os.open(target.folder, os.O_RDONLY | _DIRECTORY)
                self._fd = os.open(self._where(self._part), flags, 0o644, **self._at())
        except BaseException:
            self._close_dir()
            raise

    def _where(self, name: str) -> str:
        return name if self._dir_fd is not None else str(self.target.folder / name)

    def _at(self) -> dict[str, int]:
        return {"dir_fd": self._dir_fd} if self._dir_fd is not None else {}

    def write(self, data: bytes) -> None:
        """Append ``data`` to the temporary file."""
        assert self._fd is not None
        view = memoryview(data)
        with _writing(self.target.path):
            while view:
                view = view[os.write(self._fd, view) :]

    def commit(self, *, overwrite: bool) -> Path:
        """Put the complete file in place under its name and return its path; without
        ``overwrite``, an entry that appeared meanwhile is kept and this file removed."""
        try:
            with _writing(self.target.path):
                self._put_in_place(overwrite)
        finally:
            self.discard()
        return self.target.path

    def _put_in_place(self, overwrite: bool) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        name, part = self._where(self.target.name), self._where(self._part)
        at = {"src_dir_fd": self._dir_fd, "dst_dir_fd": self._dir_fd}
        if self._dir_fd is None:
            at = {}
        if overwrite:
            self._refuse_directory()
            os.replace(part, name, **at)
            return
        try:
            os.link(part, name, follow_symlinks=False, **at)
        except FileExistsError:
            _refuse_existing(self.target)
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            _refuse_existing(self.target)  # no hard links here (FAT, some network FS)
            os.rename(part, name, **at)

    def _refuse_directory(self) -> None:
        with suppress(FileNotFoundError):
            mode = os.stat(self._where(self.target.name), follow_symlinks=False, **self._at())
            if stat.S_ISDIR(mode.st_mode):
                raise errors.ValidationError(
                    f"{str(self.target.path)!r} is a folder; refusing to replace it",
                    input="dest",
                    rule="a file name, not a folder",
                )

    def discard(self) -> None:
        """Remove the temporary file (if still there) and release the handles; best effort
        (it never raises: it runs while another error is on its way)."""
        if self._fd is not None:
            with suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with suppress(OSError):
            os.unlink(self._where(self._part), **self._at())
        self._close_dir()

    def _close_dir(self) -> None:
        if self._dir_fd is not None:
            with suppress(OSError):
                os.close(self._dir_fd)
            self._dir_fd = None
