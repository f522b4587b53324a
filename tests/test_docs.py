"""The Python in README.md, docs/*.md and examples/ stays true to the code.

Every ```python block and every example script must compile (top-level ``await`` allowed,
as the docs use it), every name imported from ``invokeai_client`` must exist, every
attribute chain rooted at ``client`` (``client.images.download``) must exist on the real
client (the sync ``Client`` inside ``with Client(...)`` blocks and in docs/sync.md, else
``AsyncClient``), and every keyword argument of such a call must be a parameter of the
method it reaches. A renamed method or parameter therefore fails here. No server is needed:
nothing is sent.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import invokeai_client
from invokeai_client import AsyncClient, Client
from invokeai_client._deprecated import is_alias
from invokeai_client.sync._proxy import Method

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
SYNC_DOCS = {"sync.md"}
"""Pages whose ``client`` is the sync Client unless a block says otherwise."""

_MISSING = object()


@dataclass
class Block:
    path: Path
    line: int
    source: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of one Markdown file (indented ones in list items too)."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        blocks.append(Block(path, line, textwrap.dedent(match.group(2))))
    return blocks


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
BLOCKS = [block for path in DOCS for block in python_blocks(path)] + [
    Block(path, 1, path.read_text(encoding="utf-8")) for path in EXAMPLES
]


def parse(block: Block) -> ast.Module:
    tree = compile(
        block.source,
        block.where,
        "exec",
        flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    assert isinstance(tree, ast.Module)
    return tree


# -- the real objects the docs talk about --------------------------------------------------

# Constructing sends nothing: the session and the socket open on ``async with`` / ``with``.
ASYNC_CLIENT = AsyncClient("http://127.0.0.1:9")
SYNC_CLIENT = Client("http://127.0.0.1:9")


def is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def chain_of(node: ast.expr) -> list[str] | None:
    """``client.a.b`` as ``["a", "b"]`` when rooted at the name ``client``, else None."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "client":
        return names[::-1]
    return None


def lookup(obj: Any, name: str) -> Any:
    """``obj.name`` without running properties or proxies (the descriptor when static)."""
    try:
        found = inspect.getattr_static(obj, name)
    except AttributeError:
        return _MISSING
    if isinstance(found, (staticmethod, classmethod)):
        return getattr(obj, name)
    if inspect.isfunction(found) or isinstance(found, (property, Method)):
        return found
    if type(found).__name__ == "member_descriptor":  # a __slots__ attribute: its value
        return getattr(obj, name, _MISSING)
    return getattr(obj, name) if not inspect.isclass(obj) else found


def signature_of(target: Any, async_twin: Any) -> inspect.Signature | None:
    """The parameters a call of ``target`` takes (a sync Method takes its async twin's)."""
    if isinstance(target, Method):
        target = async_twin
    if target is _MISSING or not callable(target):
        return None
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def typed_keywords(target: Any) -> set[str] | None:
    """The keywords a ``**options: Unpack[SomeTypedDict]`` parameter of ``target`` takes (PEP
    692), or None for a plain ``**kwargs``."""
    function = inspect.unwrap(target)
    for param in inspect.signature(function).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            found = re.fullmatch(r"(?:\w+\.)*Unpack\[(\w+)\]", str(param.annotation))
            if found is None:
                return None
            typed_dict = function.__globals__[found.group(1)]
            return set(typed_dict.__annotations__)  # a TypedDict lists its bases' keys too
    return None


@dataclass
class Finding:
    problems: list[str] = field(default_factory=list)
    checked: int = 0


class DocChecker(ast.NodeVisitor):
    """Walks one block, knowing which client ``client`` is in each scope."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.sync = [block.path.name in SYNC_DOCS]
        self.found = Finding()

    # which client --------------------------------------------------------------------------

    def _client_kind(self, items: list[ast.withitem]) -> bool | None:
        for item in items:
            call = item.context_expr
            if (
                isinstance(item.optional_vars, ast.Name)
                and item.optional_vars.id == "client"
                and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in ("Client", "AsyncClient")
            ):
                return call.func.id == "Client"
        return None

    def _scoped(self, sync: bool | None, body: list[ast.stmt]) -> None:
        self.sync.append(self.sync[-1] if sync is None else sync)
        for stmt in body:
            self.visit(stmt)
        self.sync.pop()

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            self.visit(item)
        self._scoped(self._client_kind(node.items), node.body)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item)
        self._scoped(self._client_kind(node.items), node.body)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        sync: bool | None = None
        for arg in node.args.args + node.args.kwonlyargs:
            if arg.arg == "client" and isinstance(arg.annotation, ast.Name):
                sync = arg.annotation.id == "Client"
        self._scoped(sync, node.body)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    # imports -------------------------------------------------------------------------------

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if not (module == "invokeai_client" or module.startswith("invokeai_client.")):
            return
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            self.problem(node, f"cannot import {module}: {exc}")
            return
        for alias in node.names:
            self.found.checked += 1
            if module == "invokeai_client" and alias.name not in invokeai_client.__all__:
                self.problem(node, f"invokeai_client exports no {alias.name!r}")
            elif not hasattr(imported, alias.name) and not is_module(f"{module}.{alias.name}"):
                self.problem(node, f"{module} has no {alias.name!r}")

    # client.<chain> and its keywords --------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        names = chain_of(node.func)
        if names:
            target, twin = self.resolve(node, names)
            if target is not _MISSING:
                self.check_keywords(node, names, target, twin)
            self.visit_args(node)
            return
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        names = chain_of(node)
        if names:
            self.resolve(node, names)
            return
        self.generic_visit(node)

    def visit_args(self, node: ast.Call) -> None:
        for arg in node.args:
            self.visit(arg)
        for keyword in node.keywords:
            self.visit(keyword.value)

    def resolve(self, node: ast.AST, names: list[str]) -> tuple[Any, Any]:
        """The object ``client.<names>`` reaches, and its async twin (for sync chains)."""
        self.found.checked += 1
        sync = self.sync[-1]
        obj: Any = SYNC_CLIENT if sync else ASYNC_CLIENT
        twin: Any = ASYNC_CLIENT
        for depth, name in enumerate(names):
            found = lookup(obj, name)
            if found is _MISSING:
                kind = "Client" if sync else "AsyncClient"
                path = ".".join(["client", *names[: depth + 1]])
                self.problem(node, f"{path} does not exist on {kind}")
                return _MISSING, _MISSING
            if twin is not _MISSING:
                twin_name = found.target_name if isinstance(found, Method) else name
                twin = getattr(twin, twin_name, _MISSING) if sync else found
            obj = found
        return obj, twin

    def check_keywords(self, node: ast.Call, names: list[str], target: Any, twin: Any) -> None:
        signature = signature_of(target, twin)
        if signature is None:
            return
        params = signature.parameters.values()
        accepted = {
            p.name for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            typed = typed_keywords(twin if isinstance(target, Method) else target)
            if typed is None:
                return  # a plain **kwargs takes anything
            accepted |= typed
        for keyword in node.keywords:
            if keyword.arg is not None and keyword.arg not in accepted:
                call = ".".join(["client", *names])
                self.problem(node, f"{call}() has no parameter {keyword.arg!r}")

    def problem(self, node: ast.AST, message: str) -> None:
        line = self.block.line + getattr(node, "lineno", 1) - 1
        self.found.problems.append(f"{self.block.path.relative_to(ROOT)}:{line}: {message}")


def check(block: Block) -> Finding:
    checker = DocChecker(block)
    checker.visit(parse(block))
    return checker.found


def ids() -> Iterator[str]:
    for block in BLOCKS:
        yield block.where


# -- tests -----------------------------------------------------------------------------------


def test_the_docs_have_python_blocks() -> None:
    pages = {block.path.name for block in BLOCKS}
    assert {"README.md", "client.md", "repositories.md", "runs.md", "sync.md"} <= pages
    assert {"quickstart.py", "sync_script.py"} <= pages


@pytest.mark.parametrize("block", BLOCKS, ids=list(ids()))
def test_block_compiles(block: Block) -> None:
    parse(block)


@pytest.mark.parametrize("block", BLOCKS, ids=list(ids()))
def test_block_names_exist(block: Block) -> None:
    assert check(block).problems == []


def test_the_checker_catches_a_renamed_method_and_keyword() -> None:
    """The checker itself: a wrong name, a wrong keyword and a wrong import are found."""
    source = textwrap.dedent(
        """
        from invokeai_client import AsyncClient, NoSuchThing
        async with AsyncClient(url) as client:
            await client.images.download_everything(img)
            await client.boards.delete(board, delete_all=True)
            await client.images.download(img, "out/", thumbnail=True)
        with Client(url) as client:
            client.runs.submit(graph, board="x").wait()
            client.queue.nope()
        """
    )
    problems = check(Block(ROOT / "README.md", 1, source)).problems
    assert problems == [
        "README.md:2: invokeai_client exports no 'NoSuchThing'",
        "README.md:4: client.images.download_everything does not exist on AsyncClient",
        "README.md:5: client.boards.delete() has no parameter 'delete_all'",
        "README.md:8: client.runs.submit() has no parameter 'board'",  # the async twin's
        "README.md:9: client.queue.nope does not exist on Client",
    ]


# -- the docs site: mkdocs build --strict and a reference of every public name -------------


def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: ``$INVOKEAI_DOCS_SITE`` (scripts/test.sh builds it) or a fresh build."""
    import os
    import subprocess
    import sys

    given = os.environ.get("INVOKEAI_DOCS_SITE")
    if given:
        return Path(given)
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return site


@pytest.mark.filterwarnings("ignore:.* is deprecated. it moved to:DeprecationWarning")
def test_the_reference_documents_every_public_name(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every name in the ``__all__`` of every public module (the CLI program aside) is on a
    reference page, under some path, and renders there."""
    import pkgutil
    import sys

    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from mkdocs_hooks import reference
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    pages = reference()

    def resolve(path: str) -> object:
        module, name = path.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)

    documented = {id(resolve(path)) for paths in pages.values() for path in paths}
    documented_paths = {path for paths in pages.values() for path in paths}
    missing = []
    modules = ["invokeai_client"] + [
        info.name
        for info in pkgutil.walk_packages(invokeai_client.__path__, "invokeai_client.")
        if not any(part.startswith("_") for part in info.name.split(".")[1:])
        and info.name.split(".")[1] != "cli"
    ]
    for module_name in modules:
        module = importlib.import_module(module_name)
        if is_alias(module):  # a deprecated old path: documented at its new home
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if name.startswith("__") or inspect.ismodule(obj):
                continue
            if id(obj) not in documented and f"{module_name}.{name}" not in documented_paths:
                missing.append(f"{module_name}.{name}")
    assert missing == []
    for wanted in (  # names the guides tell users to import
        "invokeai_client.generate.text_to_image_graph",
        "invokeai_client.pool.distributed.run_on_ray",
        "invokeai_client.testing.tiny_models.install_tiny_models",
    ):
        assert id(resolve(wanted)) in documented, wanted
    site = built_site(tmp_path_factory)
    for room, paths in pages.items():
        html = (site / "reference" / room / "index.html").read_text(encoding="utf-8")
        missing = [path for path in paths if f'id="{path}"' not in html]
        assert missing == [], f"reference/{room}: not rendered: {missing}"


def test_the_testing_guide_fixture_snippet_runs_as_written(tmp_path: Path) -> None:
    """docs/testing.md's first block is a whole test module: pytest runs it, and it passes."""
    import os
    import subprocess
    import sys

    (block,) = [b for b in python_blocks(ROOT / "docs" / "testing.md") if "test_sum" in b.source]
    (tmp_path / "test_sum.py").write_text(block.source)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sum.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
