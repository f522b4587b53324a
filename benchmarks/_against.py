"""Another version of the SDK to measure side by side with this one (``--against``).

``--against REV`` (a commit, tag or branch of this repository) checks REV out into a
temporary git worktree for the length of the run and removes it after; ``--against DIR``
uses an existing checkout as it is. The benchmark scripts are always this tree's: only the
``invokeai_client`` package they import differs (``PYTHONPATH`` puts the other tree's first).

Benchmarks that time the SDK in their own process measure each version in a child process
(:func:`in_child`: the script's hidden one-round mode, whose last output line is JSON), the
two versions taking turns round by round against the same server (:func:`turns`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["HERE", "checkout", "env_for", "in_child", "label", "trees", "turns"]

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


@contextlib.contextmanager
def trees(spec: str | None) -> Iterator[list[tuple[str, Path]]]:
    """(label, root) of this tree, and of ``spec``'s when given (see :func:`checkout`)."""
    if spec is None:
        yield [(label(HERE), HERE)]
        return
    with checkout(spec) as other:
        yield [(label(HERE), HERE), (label(other), other)]


def in_child(tree: Path, script: str, *args: str) -> Any:
    """Run benchmark ``script`` (this tree's) with ``args`` in a child process that imports
    the SDK of ``tree``; the JSON value on the last line it printed."""
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env=env_for(tree))
    if done.returncode != 0:
        raise RuntimeError(f"{Path(script).name} {' '.join(args)} with the SDK of {tree} "
                           f"failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def turns(index: int, items: list[Any]) -> list[Any]:
    """``items`` in the order of round ``index``: as given, then reversed, and so on, so that
    a drift in the machine's load hits every version alike."""
    return items if index % 2 == 0 else items[::-1]
