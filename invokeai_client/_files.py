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
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import unicodedata
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import errors

__all__ = ["AtomicFile", "Content", "check_content", "plan_target", "safe_file_name"]

NAME_MAX = 255
"""Longest file name (in bytes) the common file systems accept."""

Content = Literal["image", "zip"]

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_HASH_CHARS = 10
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
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


def plan_target(dest: Path, file_name: str, *, overwrite: bool) -> Target:
    """Where a download named ``file_name`` goes for ``dest`` (a folder, or a file path in an
    existing folder); refuses an existing file unless ``overwrite``. Blocking: run it in a
    worker thread."""
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
        if _DIR_FD:
            self._dir_fd = os.open(target.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0)
        try:
            self._fd: int | None = os.open(self._where(self._part), flags, 0o644, **self._at())
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
        while view:
            view = view[os.write(self._fd, view) :]

    def commit(self, *, overwrite: bool) -> Path:
        """Put the complete file in place under its name and return its path; without
        ``overwrite``, an entry that appeared meanwhile is kept and this file removed."""
        assert self._fd is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        name, part = self._where(self.target.name), self._where(self._part)
        at = {"src_dir_fd": self._dir_fd, "dst_dir_fd": self._dir_fd}
        if self._dir_fd is None:
            at = {}
        try:
            if overwrite:
                self._refuse_directory()
                os.replace(part, name, **at)
            else:
                try:
                    os.link(part, name, follow_symlinks=False, **at)
                except FileExistsError:
                    _refuse_existing(self.target)
                    raise
                except OSError:  # no hard links here (FAT, some network file systems)
                    _refuse_existing(self.target)
                    os.rename(part, name, **at)
        finally:
            self.discard()
        return self.target.path

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
        """Remove the temporary file (if still there) and release the handles."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with suppress(FileNotFoundError):
            os.unlink(self._where(self._part), **self._at())
        self._close_dir()

    def _close_dir(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
