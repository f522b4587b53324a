"""Another version of the SDK to measure side by side with this one (``--against``).

``--against REV`` (a commit, tag or branch of this repository) checks REV out into a
temporary git worktree for the length of the run and removes it after; ``--against DIR``
uses an existing checkout as it is. The benchmark scripts are always this tree's: only the
``invokeai_client`` package they import differs (``PYTHONPATH`` puts the other tree's first).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["HERE", "checkout", "env_for", "label"]

HERE = Path(__file__).resolve().parent.parent
"""This tree (the checkout the benchmark scripts are run from)."""


@contextlib.contextmanager
def checkout(spec: str) -> Iterator[Path]:
    """The root of a tree holding the SDK at ``spec`` (a directory, or a git revision checked
    out into a temporary worktree that is removed afterwards)."""
    if Path(spec, "invokeai_client", "__init__.py").is_file():
        yield Path(spec).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="invokeai-client-against-") as parent:
        tree = Path(parent, "tree")
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", "--quiet",
                        str(tree), spec], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(tree)],
                           check=False)


def env_for(tree: Path) -> dict[str, str]:
    """The environment of a child process that imports the SDK from ``tree``."""
    paths = [str(tree), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def label(tree: Path) -> str:
    """The short commit of ``tree`` (with ``+`` when its files differ from it)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "invokeai_client")
    return git("rev-parse", "--short", "HEAD") + ("+" if dirty else "")
