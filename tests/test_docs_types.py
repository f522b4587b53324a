"""Every ```python block of README.md and docs/ passes ``mypy --strict``.

A block is type-checked as the body of an ``async def`` (so top-level ``await``, as the docs
write it in notebooks and REPLs, is fine), in a module whose prelude declares the names the
docs use without defining them: ``client`` (the sync ``Client`` on the sync page, else
``AsyncClient``), ``wf``, ``run``, ``batch``, ``url`` and a few placeholders. Blocks that are
whole programs (they import what they use) get the same wrapping; it changes nothing for
them. One mypy run checks them all. Together with tests/test_docs.py (names and keywords
exist) and the examples run by tests/test_examples.py, no code shown to users rots.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import invokeai_client

from .test_docs import DOCS, ROOT, SYNC_DOCS, Block, python_blocks

PRELUDE = '''\
# ruff: noqa
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from invokeai_client import (
    AsyncClient, BatchRun, Client, InvokeAIError, WorkflowHandle, WorkflowResult,
    WorkflowRun,
)
from invokeai_client.sync import SyncBatchRun, SyncWorkflowHandle, SyncWorkflowRun
from invokeai_client.testing import InvokeAIDouble

url: str
graph: dict[str, Any]
double: InvokeAIDouble
# placeholders the prose around a block explains
png_bytes: bytes
pil_image: Any
pil: Any
batch_id: str
item_id: int
workflow_id: str
key: str
names: list[str]
prompts: list[str]
a: Any
b: Any
submit_one: Any
MyLatentsField: Any
'''

ASYNC_NAMES = '''\
client: AsyncClient
wf: WorkflowHandle
run: WorkflowRun
batch: BatchRun
result: WorkflowResult
'''

SYNC_NAMES = '''\
client: Client
wf: SyncWorkflowHandle
run: SyncWorkflowRun
batch: SyncBatchRun
'''


def module_of(block: Block) -> str:
    """The block as a module mypy can check (see the module doc)."""
    names = SYNC_NAMES if block.path.name in SYNC_DOCS else ASYNC_NAMES
    body = textwrap.indent(block.source, "    ")
    return f"{PRELUDE}{names}\n\nasync def _block() -> None:\n{body}\n"


def test_every_python_block_passes_mypy_strict(tmp_path: Path) -> None:
    blocks = [block for path in DOCS for block in python_blocks(path)]
    assert blocks
    # A canary: the check must find a mistake where there is one.
    blocks.append(Block(ROOT / "README.md", 0, "result = await run\nresult.image.no_such\n"))
    # Every public name of the package root as a type checker sees it: the root re-exports
    # whole packages by star imports, which a type checker reads differently from Python.
    root_names = ", ".join(invokeai_client.__all__)
    blocks.append(Block(ROOT / "invokeai_client" / "__init__.py", 0,
                        f"from invokeai_client import ({root_names})\n"))
    where: dict[str, str] = {}
    for number, block in enumerate(blocks):
        name = f"block_{number:03d}.py"
        (tmp_path / name).write_text(module_of(block))
        where[name] = block.where
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), "--no-error-summary", "--follow-imports",
         "silent", *sorted(where)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    problems = []
    for line in done.stdout.splitlines():
        match = re.match(r"(block_\d+\.py):(\d+): error: (.*)", line)
        if match:
            block_line = int(match.group(2)) - module_of(Block(ROOT, 1, "")).count("\n") + 1
            problems.append(f"{where[match.group(1)]} (+{block_line}): {match.group(3)}")
    canary = [p for p in problems if p.startswith("README.md:0 ")]
    assert canary == ['README.md:0 (+2): "ImageRef" has no attribute "no_such"  [attr-defined]']
    problems = [p for p in problems if p not in canary]
    assert problems == [], "\n".join(problems)
