"""The package's shape, checked from its source with the standard library's ``ast``.

- No import cycle between modules of ``invokeai_client``, counting imports under
  ``if TYPE_CHECKING:`` and imports inside functions: a cycle of type-only imports still ties
  the modules together for a reader.
- No module outside ``invokeai_client/testing/`` over :data:`MAX_MODULE_LINES` lines, and no
  function or method anywhere over :data:`MAX_FUNCTION_LINES` lines (the span of its ``def``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "invokeai_client"
NAME = PACKAGE.name
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60

# Today's offenders, so the checks could land before the splits. These lists must only
# shrink: never add to them; remove an entry as soon as its module or function is split.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
KNOWN_LONG_MODULES: frozenset[str] = frozenset()
KNOWN_LONG_FUNCTIONS: frozenset[str] = frozenset(
    {
        "_socket.py:_handle_events_inline",
    }
)


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package by dotted name: its file and whether it is a package."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its source."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in known:  # import a.b.c as x: the deepest module
                    name = name.rpartition(".")[0]
                if name:
                    targets.add(name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if source != NAME and not source.startswith(NAME + "."):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
    targets.discard(module)
    return {target for target in targets if target in known}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (type-only and function-local included)."""
    modules = _modules()
    known = set(modules)
    return {
        name: _imported(ast.parse(path.read_text(encoding="utf-8")), name, is_package, known)
        for name, (path, is_package) in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _short(name: str) -> str:
    return name.removeprefix(NAME + ".")


def _path_in(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One import loop through ``members``, to name in the failure message."""
    start, inside = members[0], set(members)
    trail = [start]
    seen = {start}
    while True:
        nxt = sorted(graph[trail[-1]] & inside)
        back = [m for m in nxt if m == start]
        if back and len(trail) > 1:
            return [*trail, start]
        fresh = [m for m in nxt if m not in seen]
        if not fresh:
            return [*trail, nxt[0]] if nxt else trail
        trail.append(fresh[0])
        seen.add(fresh[0])


def test_the_cycle_finder_sees_type_only_and_local_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .b import B\n"
        "def f():\n    from . import c\n"
    )
    tree = ast.parse(source)
    known = {f"{NAME}.a", f"{NAME}.b", f"{NAME}.c"}
    assert _imported(tree, f"{NAME}.a", False, known) == {f"{NAME}.b", f"{NAME}.c"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert graph.get(f"{NAME}.client"), "the import graph is empty"
    problems = []
    for component in cycles(graph):
        short = frozenset(_short(name) for name in component)
        if short in KNOWN_CYCLES:
            continue
        loop = " -> ".join(_short(name) for name in _path_in(graph, component))
        problems.append(f"{len(component)} modules import each other: {loop}")
    assert not problems, "import cycles in the package:\n" + "\n".join(problems)


def test_known_cycles_are_still_there() -> None:
    """The allow-list only shrinks: an entry whose cycle is gone must be deleted."""
    found = {frozenset(_short(name) for name in c) for c in cycles(import_graph())}
    stale = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in found]
    assert not stale, f"remove these from KNOWN_CYCLES, they are fixed: {stale}"


def _functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method with its qualified name (Class.method, outer.inner)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, Any]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    long_modules: dict[str, int] = {}
    long_functions: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES and not relative.startswith("testing/"):
            long_modules[relative] = lines
        for name, node in _functions(ast.parse(text)):
            span = (node.end_lineno or node.lineno) - node.lineno + 1
            if span > MAX_FUNCTION_LINES:
                long_functions[f"{relative}:{name}"] = span
    return long_modules, long_functions


def test_modules_and_functions_are_short() -> None:
    long_modules, long_functions = _sizes()
    problems = [
        f"{name} has {lines} lines (at most {MAX_MODULE_LINES})"
        for name, lines in long_modules.items()
        if name not in KNOWN_LONG_MODULES
    ] + [
        f"{name} spans {lines} lines (at most {MAX_FUNCTION_LINES})"
        for name, lines in long_functions.items()
        if name not in KNOWN_LONG_FUNCTIONS
    ]
    assert not problems, "split these:\n" + "\n".join(problems)


def test_known_long_ones_are_still_long() -> None:
    """The allow-lists only shrink: an entry that is short now must be deleted."""
    long_modules, long_functions = _sizes()
    stale = sorted(KNOWN_LONG_MODULES - set(long_modules)) + sorted(
        KNOWN_LONG_FUNCTIONS - set(long_functions)
    )
    assert not stale, f"remove these from the allow-lists, they are short now: {stale}"
