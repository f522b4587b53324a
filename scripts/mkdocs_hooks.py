"""mkdocs hook: the API reference pages, generated from the package's public names.

Every name in ``invokeai_client.__all__`` and in the ``__all__`` of the public subpackages
gets a mkdocstrings entry (``::: invokeai_client.Name``) on the page of the room it lives
in, so a new public name is in the reference without anyone editing a page, and a name
whose docstring or signature cannot be rendered fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib
from typing import Any

from mkdocs.structure.files import File, Files

ROOMS = {
    "client": ("The client", "AsyncClient, its configuration and the blocking Client."),
    "workflows": ("Workflows", "Workflow definitions, handles, inputs and model sync."),
    "runs": ("Runs", "Runs, batches, their typed events and results."),
    "repositories": ("Repositories", "Boards, images, models and the queue."),
    "web": ("Web apps", "Tie a run to an HTTP request and stream its events."),
    "notebook": ("Notebooks", "Progress and images in Jupyter."),
    "fields": ("Fields", "Typed workflow inputs (IvkField and its kinds)."),
    "types": ("Wire types", "The server's DTOs (queue items, boards, images, models)."),
    "pool": ("Server pool", "Many servers: routing, failover, durable jobs."),
    "errors": ("Errors", "The InvokeAIError tree."),
    "testing": ("Testing", "The in-process double and the local real server."),
}
"""Reference pages, in order: ``invokeai_client.<room>`` -> (title, one line)."""

ROOM_OF_MODULE = {"client": "client", "sync": "client", "_config": "client"}


def room_of(obj: Any) -> str:
    """The room an object lives in, from its module (``invokeai_client.runs._run`` -> runs)."""
    module = getattr(obj, "__module__", None) or "invokeai_client.client"
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 else "client"
    return ROOM_OF_MODULE.get(room, room if room in ROOMS else "client")


def reference() -> dict[str, list[str]]:
    """Room -> the dotted paths documented on its page (top-level names first)."""
    package = importlib.import_module("invokeai_client")
    pages: dict[str, list[str]] = {room: [] for room in ROOMS}
    seen: set[int] = set()
    for name in package.__all__:
        obj = getattr(package, name)
        if name.startswith("__"):
            continue
        pages[room_of(obj)].append(f"invokeai_client.{name}")
        seen.add(id(obj))
    for room in ROOMS:
        try:
            module = importlib.import_module(f"invokeai_client.{room}")
        except ImportError:
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if id(obj) not in seen and not isinstance(obj, (str, int, float, frozenset)):
                pages[room].append(f"invokeai_client.{room}.{name}")
                seen.add(id(obj))
    return {room: paths for room, paths in pages.items() if paths}


def page_text(room: str, paths: list[str]) -> str:
    title, line = ROOMS[room]
    body = [f"# {title}", "", line, ""]
    for path in paths:
        body += [f"::: {path}", ""]
    return "\n".join(body)


def on_files(files: Files, config: Any) -> Files:
    """Add ``reference/<room>.md`` pages and their index."""
    pages = reference()
    index = ["# API reference", "", "Generated from the docstrings of every public name.", ""]
    for room, paths in pages.items():
        title, line = ROOMS[room]
        index.append(f"- [{title}]({room}.md): {line} ({len(paths)} names)")
        files.append(File.generated(config, f"reference/{room}.md", content=page_text(room, paths)))
    files.append(File.generated(config, "reference/index.md", content="\n".join(index) + "\n"))
    return files
