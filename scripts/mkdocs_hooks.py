"""mkdocs hook: the API reference pages, generated from the package's public names.

Every name in the ``__all__`` of ``invokeai_client`` and of each of its public modules
(no path part starting with ``_``; the ``cli`` program has its own page) gets a
mkdocstrings entry on the page of the room it lives in, documented once under the shortest
path it is exported from. So a new public name is in the reference without anyone editing a
page, and a name whose docstring or signature cannot be rendered fails
``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

from mkdocs.structure.files import File, Files

from invokeai_client._deprecated import is_alias

ROOMS = {
    "client": ("The client", "AsyncClient, its configuration and the blocking Client."),
    "workflows": (
        "Workflows", "Workflow definitions, handles, inputs, compile stage and model sync."
    ),
    "generate": ("One-call generation", "Text to image without a workflow file."),
    "runs": ("Runs", "Runs, batches, their typed events and results."),
    "repositories": ("Repositories", "Boards, images, models and the queue."),
    "web": ("Web apps", "Tie a run to an HTTP request and stream its events."),
    "notebook": ("Notebooks", "Progress and images in Jupyter."),
    "fields": ("Fields", "Typed workflow inputs (IvkField and its kinds)."),
    "types": ("Wire types", "The server's DTOs and socket events (queue items, boards, models)."),
    "pool": ("Server pool", "Many servers: routing, failover, durable jobs, Ray."),
    "errors": ("Errors", "The InvokeAIError tree."),
    "testing": ("Testing", "The in-process double, the local real server, tiny models."),
}
"""Reference pages, in order: ``invokeai_client.<room>`` -> (title, one line)."""

ROOM_OF_MODULE = {"client": "client", "sync": "client", "_config": "client"}
NOT_REFERENCE = ("cli",)
"""Public modules documented elsewhere (the command line has docs/cli.md)."""


def room_of(obj: Any) -> str:
    """The room an object lives in, from its module (``invokeai_client.runs._run`` -> runs)."""
    module = getattr(obj, "__module__", None) or "invokeai_client.client"
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 else "client"
    return ROOM_OF_MODULE.get(room, room if room in ROOMS else "client")


def public_modules() -> list[ModuleType]:
    """``invokeai_client`` and every public module below it that declares ``__all__``,
    parents before children (so a name is documented under its shortest path); deprecated
    aliases of moved modules are left out (their names are documented at their new home)."""
    package = importlib.import_module("invokeai_client")
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, "invokeai_client."):
        parts = info.name.split(".")[1:]
        if parts[0] in NOT_REFERENCE or any(part.startswith("_") for part in parts):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        if hasattr(module, "__all__") and not is_alias(module):
            modules.append(module)
    return sorted(modules, key=lambda module: module.__name__.count("."))


def public_names() -> dict[str, Any]:
    """Dotted path -> object, for every public name, each object under its shortest path."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if name.startswith("__") or id(obj) in seen or isinstance(obj, ModuleType):
                continue
            found[f"{module.__name__}.{name}"] = obj
            if not isinstance(obj, (str, int, float, bool, tuple, frozenset)):
                seen.add(id(obj))  # constants are told apart by path, not identity
    return found


def reference() -> dict[str, list[str]]:
    """Room -> the dotted paths documented on its page (top-level names first)."""
    pages: dict[str, list[str]] = {room: [] for room in ROOMS}
    for path, obj in public_names().items():
        parts = path.split(".")
        room = room_of(obj) if len(parts) == 2 else ROOM_OF_MODULE.get(parts[1], parts[1])
        pages[room if room in ROOMS else "client"].append(path)
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
