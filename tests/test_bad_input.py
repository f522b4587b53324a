"""Bad input across the public API: a clear InvokeAIError naming the input and the rule,
raised before any request when the problem can be known locally.

Each case is one realistic mistake. The table says which error class it raises, a pattern
its message must match, and whether the problem is local (then the double must have
received no request for it). ValidationErrors must also carry ``input`` and ``rule``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from invokeai_client import (
    AsyncClient,
    BoardNotFoundError,
    Client,
    InvokeAIError,
    NotFoundError,
    ValidationError,
    WorkflowError,
)
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle

from .conftest import Peer
from .helpers import BUNDLED, example, png

pytestmark = pytest.mark.anyio

ARITH = "arithmetic-form.json"  # inputs: 0 'A' int, 1 'B' int, 2 'Operation' enum, 3 'Factor'
NOISE = "noise-sweep.json"  # 'Canvas width', 'Output width', 'Color', 'Board', ...
IMAGE = "image-input.json"  # 0 'Image' (unset), 1 'Scale Factor'
UUID0 = "00000000-0000-0000-0000-000000000000"


@dataclass
class Ctx:
    """What a case may use: a client of the double, the double, and a temp folder."""

    client: AsyncClient
    double: InvokeAIDouble
    tmp: Path
    baseline: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def handle(self, name: str = ARITH, data: dict[str, Any] | None = None) -> WorkflowHandle:
        """A handle typed by the bundled schemas, bound to the client (made without requests)."""
        definition = WorkflowDefinition.from_dict(data or example(name))
        return WorkflowHandle(definition, schemas=BUNDLED, client=self.client)

    def reset(self) -> None:
        """Count requests from here on (after a case's own setup)."""
        self.baseline = len(self.double.requests)


Call = Callable[[Ctx], Awaitable[Any]]


@dataclass
class Case:
    id: str
    call: Call
    error: type[BaseException]
    message: str  # a regex the message must match (re.search)
    input: str | None = None  # ValidationError.input must contain this
    local: bool = True  # no request may reach the server


CASES: list[Case] = []


def case(
    id: str, error: type[BaseException], message: str, input: str | None = None, *,
    local: bool = True,
) -> Callable[[Call], Call]:
    def add(call: Call) -> Call:
        CASES.append(Case(id, call, error, message, input, local))
        return call

    return add


def ctor(id: str, message: str, input: str, **kwargs: Any) -> None:
    async def call(ctx: Ctx) -> None:
        base = kwargs.pop("base_url", ctx.double.url)
        AsyncClient(base, **kwargs)

    CASES.append(Case(f"constructor: {id}", call, ValidationError, message, input))


# -- AsyncClient(...) ----------------------------------------------------------------------

ctor("not a URL", r"base_url 'not a url' must be an absolute http\(s\) URL", "base_url",
     base_url="not a url")
ctor("ftp scheme", r"must use http or https, not 'ftp'", "base_url", base_url="ftp://host")
ctor("URL is an int", r"base_url must be a string", "base_url", base_url=9090)
ctor("port out of range", r"base_url .* is not a valid URL", "base_url",
     base_url="http://127.0.0.1:99999")
ctor("broken IPv6 host", r"is not a valid URL", "base_url", base_url="http://[::1")
ctor("negative timeout", r"timeout must be .*> 0, got -1", "timeout", timeout=-1)
ctor("zero timeout", r"timeout must be .*> 0, got 0", "timeout", timeout=0)
ctor("timeout as text", r"timeout must be .*got '30'", "timeout", timeout="30")
ctor("max_retries=-1", r"max_retries must be an integer >= 0, got -1", "max_retries",
     max_retries=-1)
ctor("max_retries as text", r"max_retries must be an integer >= 0, got '3'", "max_retries",
     max_retries="3")
ctor("max_concurrency=0", r"max_concurrency must be a positive int", "max_concurrency",
     max_concurrency=0)
ctor("token and password", r"either token= or email=/password=, not both", "token",
     token="t", email="a@example.com", password="p")
ctor("email without password", r"email and password must be given together", "password",
     email="a@example.com")
ctor("empty token", r"token must be a non-empty string", "token", token="")
ctor("empty queue_id", r"queue_id must be a non-empty string", "queue_id", queue_id="")
ctor("queue_id with a slash", r"queue_id 'a/b' cannot be used in a URL path", "queue_id",
     queue_id="a/b")
ctor("verify_ssl as text", r"verify_ssl must be True or False, got 'no'", "verify_ssl",
     verify_ssl="no")


# -- workflows.load ------------------------------------------------------------------------


@case("load: missing file", WorkflowError, r"cannot read workflow file '/nope/flow.json'")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.load("/nope/flow.json", typed=False)


@case("load: malformed JSON file", WorkflowError, r"bad\.json: workflow JSON is malformed at line")
async def _(ctx: Ctx) -> None:
    (ctx.tmp / "bad.json").write_text("{not json")
    await ctx.client.workflows.load(ctx.tmp / "bad.json", typed=False)


@case("load: JSON text with an error", WorkflowError, r"malformed at line 1 column \d+")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.load('{"nodes": [}', typed=False)


@case("load: a JSON list", WorkflowError, r"a workflow must be a JSON object, got list")
async def _(ctx: Ctx) -> None:
    (ctx.tmp / "list.json").write_text("[1, 2]")
    await ctx.client.workflows.load(ctx.tmp / "list.json", typed=False)


@case("load: an int", WorkflowError, r"a workflow source is a path, a dict, .* got int")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.load(42, typed=False)  # type: ignore[arg-type]


@case("load: a folder", WorkflowError, r"cannot read workflow file .*: Is a directory")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.load(ctx.tmp, typed=False)


# -- handle.set / get / update / set_node --------------------------------------------------


@case("set: text into an int", ValidationError, r"input 'A' .*expected an integer, got str", "'A'")
async def _(ctx: Ctx) -> None:
    ctx.handle().set("A", "six")


@case("set: bool into an int", ValidationError, r"expected an integer, got a boolean", "'A'")
async def _(ctx: Ctx) -> None:
    ctx.handle().set("A", True)


@case("set: unknown label", ValidationError, r"has no input 'Nope'", "Nope")
async def _(ctx: Ctx) -> None:
    ctx.handle().set("Nope", 1)


@case("set: index out of range", ValidationError, r"input index 99 is out of range", "99")
async def _(ctx: Ctx) -> None:
    ctx.handle().set(99, 1)


@case("set: key of the wrong type", ValidationError, r"an input key is an index, a label")
async def _(ctx: Ctx) -> None:
    ctx.handle().set(1.5, 1)  # type: ignore[arg-type]


@case("set: unknown field of a node", ValidationError, r"Did you mean '.*\.value'", "nofield")
async def _(ctx: Ctx) -> None:
    ctx.handle().set("1de9ea66-70d3-4a1f-8735-df5ef7697fb9.nofield", 1)


@case("set: enum value not offered", ValidationError, r"'POW' is not one of", "Operation")
async def _(ctx: Ctx) -> None:
    ctx.handle().set("Operation", "POW")


@case("set: NaN", ValidationError, r"finite", "Factor")
async def _(ctx: Ctx) -> None:
    ctx.handle().set("Factor", float("nan"))


@case("set: color channel 300", ValidationError, r"color channel 300 is outside 0\.\.255", "Color")
async def _(ctx: Ctx) -> None:
    ctx.handle(NOISE).set("Color", (300, 0, 0))


@case("set: board as an int", ValidationError, r"expected 'auto', 'none', a board id", "Board")
async def _(ctx: Ctx) -> None:
    ctx.handle(NOISE).set("Board", 5)


@case("set: bytes that are no image", ValidationError, r"the bytes are not an image", "Image")
async def _(ctx: Ctx) -> None:
    ctx.handle(IMAGE).set("Image", b"hello")


@case("set: ambiguous label", ValidationError, r"label 'Canvas width' is ambiguous",
      "Canvas width")
async def _(ctx: Ctx) -> None:
    data = example(NOISE)
    for node in data["nodes"]:
        for spec in node["data"].get("inputs", {}).values():
            if spec.get("label") == "Output width":
                spec["label"] = "Canvas width"
    ctx.handle(data=data).set("Canvas width", 5)


@case("get: unknown label", ValidationError, r"has no input 'zzz'", "zzz")
async def _(ctx: Ctx) -> None:
    ctx.handle().get("zzz")


@case("update: one bad value", ValidationError, r"input 'B' .*expected an integer", "'B'")
async def _(ctx: Ctx) -> None:
    handle = ctx.handle()
    try:
        handle.update({"A": 1, "B": "x"})
    finally:
        assert handle.get("A") == 6  # nothing changed


@case("set_node: flag as text", ValidationError, r"use_cache must be True or False", "use_cache")
async def _(ctx: Ctx) -> None:
    ctx.handle().set_node("1de9ea66-70d3-4a1f-8735-df5ef7697fb9", use_cache="no")  # type: ignore[arg-type]


# -- handle.submit / submit_batch ----------------------------------------------------------


@case("submit: required image unset", ValidationError, r"cannot run as it is:.*'Image'", "Image")
async def _(ctx: Ctx) -> None:
    await ctx.handle(IMAGE).submit()


@case("submit: image unset, with a board name", ValidationError, r"cannot run as it is",
      "Image")
async def _(ctx: Ctx) -> None:
    await ctx.handle(IMAGE).submit(board="renders")  # no board lookup for a doomed submit


@case("submit: board as an int", ValidationError, r"board must be a board id, a Board or",
      "board")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit(board=5)  # type: ignore[arg-type]


@case("submit: unknown board name", BoardNotFoundError, r"board 'no such board' not found",
      local=False)
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit(board="no such board")


@case("submit: prepend as text", ValidationError, r"prepend must be True or False", "prepend")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit(prepend="yes")  # type: ignore[arg-type]


@case("submit: detach as text", ValidationError, r"detach must be True or False", "detach")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit(detach="no")  # type: ignore[arg-type]


@case("submit_batch: runs=0", ValidationError, r"runs must be an integer >= 1, got 0", "runs")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1, 2]}, runs=0)


@case("submit_batch: runs=0 with a board name", ValidationError, r"runs must be .* got 0",
      "runs")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1]}, runs=0, board="renders")


@case("submit_batch: runs=0 with a local image", ValidationError, r"runs must be .* got 0",
      "runs")
async def _(ctx: Ctx) -> None:
    handle = ctx.handle(IMAGE).set("Image", png())
    await handle.submit_batch(runs=0)  # nothing uploaded for a doomed submit


@case("submit_batch: sweep is a list", ValidationError, r"sweep must map input keys", "sweep")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch([1, 2])  # type: ignore[arg-type]


@case("submit_batch: sweep value not a list", ValidationError,
      r"sweep values for .* must be a list of values, got int", ".value")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": 5})  # type: ignore[dict-item]


@case("submit_batch: empty sweep list", ValidationError, r"must not be empty", "'A'")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": []})


@case("submit_batch: bad item in sweep", ValidationError, r"item 1 for 'A' .*expected an integer",
      "'A'")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1, "x"]})


@case("submit_batch: unknown sweep key", ValidationError, r"has no input 'Zed'", "Zed")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"Zed": [1]})


@case("submit_batch: one input under two keys", ValidationError, r"sweep names one input twice",
      "sweep")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1], 0: [2]})


@case("submit_batch: zip lengths differ", ValidationError, r"different lengths", "data")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1, 2], "B": [1]}, zip=True)


@case("submit_batch: zip names a key not swept", ValidationError,
      r"zip names 'Factor', which is not a key of sweep", "Factor")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1, 2], "B": [3, 4]}, zip=[["A", "Factor"]])


@case("submit_batch: zip as a flat list", ValidationError, r"zip must be True or a list of groups",
      "zip")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1, 2], "B": [3, 4]}, zip=["A", "B"])


@case("submit_batch: zip=1", ValidationError, r"zip must be True or a list of groups", "zip")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch({"A": [1, 2]}, zip=1)  # type: ignore[arg-type]


@case("submit_batch: data is a dict", ValidationError, r"data must be a list of groups", "data")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch(data={"a": 1})  # type: ignore[arg-type]


@case("submit_batch: data names no node", ValidationError, r"node_path 'nope' is not a node",
      "nope")
async def _(ctx: Ctx) -> None:
    await ctx.handle().submit_batch(data=[[{"node_path": "nope", "field_name": "x", "items": [1]}]])


@case("submit_batch: no client", WorkflowError, r"cannot submit a batch: this handle has no client")
async def _(ctx: Ctx) -> None:
    handle = WorkflowHandle(WorkflowDefinition.from_dict(example(ARITH)), schemas=BUNDLED)
    await handle.submit_batch({"A": [1]})


@case("build_batch: runs=0", ValidationError, r"runs must be an integer >= 1", "runs")
async def _(ctx: Ctx) -> None:
    ctx.handle().build_batch(runs=0)


@case("build_graph: board as an int", ValidationError, r"board must be a board id", "board")
async def _(ctx: Ctx) -> None:
    ctx.handle().build_graph(board=7)  # type: ignore[arg-type]


# -- client.runs and run results -----------------------------------------------------------

GRAPH = {"nodes": {"a": {"id": "a", "type": "add", "a": 1, "b": 2}}, "edges": []}


@case("runs.submit: graph is text", ValidationError, r"graph object with a 'nodes' object", "graph")
async def _(ctx: Ctx) -> None:
    await ctx.client.runs.submit("graph")  # type: ignore[arg-type]


@case("runs.submit: no nodes", ValidationError, r"has no nodes: there is nothing to run", "graph")
async def _(ctx: Ctx) -> None:
    await ctx.client.runs.submit({"nodes": {}, "edges": []})


@case("runs.submit_batch: runs=0", ValidationError, r"runs must be an int >= 1, got 0", "runs")
async def _(ctx: Ctx) -> None:
    await ctx.client.runs.submit_batch(GRAPH, runs=0)


@case("runs.enqueue: no batch", ValidationError, r"an enqueue body is", "body")
async def _(ctx: Ctx) -> None:
    await ctx.client.runs.enqueue({"graph": GRAPH})


@case("runs.attach: id as text", ValidationError, r"item_id must be a queue item id", "item_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.runs.attach("abc")  # type: ignore[arg-type]


@case("runs.attach: negative id", ValidationError, r"item_id must be .*>= 1\), got -1", "item_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.runs.attach(-1)


@case("run.result(timeout=-1)", ValidationError, r"timeout must be .*>= 0, got -1", "timeout")
async def _(ctx: Ctx) -> None:
    run = await ctx.handle().submit()
    ctx.reset()
    try:
        await run.result(timeout=-1)
    finally:
        assert (await run.result()).ok  # the bad timeout did not cancel the run


@case("run.result(timeout='5')", ValidationError, r"timeout must be .* got '5'", "timeout")
async def _(ctx: Ctx) -> None:
    run = await ctx.handle().submit()
    ctx.reset()
    await run.result(timeout="5")  # type: ignore[arg-type]


@case("batch.results(timeout=-1)", ValidationError, r"timeout must be .*>= 0, got -1", "timeout")
async def _(ctx: Ctx) -> None:
    batch = await ctx.handle().submit_batch({"A": [1, 2]})
    ctx.reset()
    try:
        await batch.results(timeout=-1)
    finally:
        assert all(r.ok for r in await batch.results())  # nothing was canceled


@case("batch.field_values(99)", ValidationError, r"index must be an item position 0\.\.1", "index")
async def _(ctx: Ctx) -> None:
    batch = await ctx.handle().submit_batch({"A": [1, 2]})
    assert batch.field_values(1)  # the last item has its values
    ctx.reset()
    batch.field_values(99)


# -- client.boards -------------------------------------------------------------------------


@case("boards.create: empty name", ValidationError, r"board name must be a non-empty", "name")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.create("")


@case("boards.create: blank name", ValidationError, r"board name must be a non-empty", "name")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.create("   ")


@case("boards.create: 301 characters", ValidationError, r"at most 300 characters, got 301", "name")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.create("x" * 301)


@case("boards.get: unknown id", BoardNotFoundError, rf"board '{UUID0}' not found", local=False)
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.get(UUID0)


@case("boards.get: None", ValidationError, r"board must be a board id, a Board or a board name",
      "board")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.get(None)  # type: ignore[arg-type]


@case("boards.rename: to empty", ValidationError, r"board name must be a non-empty", "name")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.rename("anything", "")


@case("boards.update: unknown visibility", ValidationError, r"visibility must be one of",
      "visibility")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.update("b", visibility="everyone")


@case("boards.update: archived as text", ValidationError, r"archived must be True or False",
      "archived")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.update("b", archived="no")  # type: ignore[arg-type]


@case("boards.delete: delete_images as text", ValidationError,
      r"delete_images must be True or False", "delete_images")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.delete("b", delete_images="no")  # type: ignore[arg-type]


@case("boards.list: order_by unknown", ValidationError, r"order_by must be one of", "order_by")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.list(order_by="size")  # type: ignore[arg-type]


@case("boards.all: direction lower-case", ValidationError, r"direction must be one of", "direction")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.all(direction="asc")  # type: ignore[arg-type]


@case("boards.list: page_size=0", ValidationError, r"page_size must be between 1 and", "page_size")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.list(page_size=0)


@case("boards.add_images: path traversal", ValidationError, r"refusing image name '\.\./etc",
      "images")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.add_images("renders", "../etc/passwd")


@case("boards.image_names: unknown category", ValidationError, r"image category must be one of",
      "category")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.image_names("renders", categories="photo")


@case("boards.find: empty", ValidationError, r"board name must be a non-empty", "name")
async def _(ctx: Ctx) -> None:
    await ctx.client.boards.find("")


# -- client.images -------------------------------------------------------------------------


@case("images.get: path traversal", ValidationError, r"refusing image name '\.\./secret\.png'",
      "image")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.get("../secret.png")


@case("images.get: an int", ValidationError, r"image must be an image name or an image", "image")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.get(5)  # type: ignore[arg-type]


@case("images.get: unknown", NotFoundError, r"image 'nope\.png' not found", local=False)
async def _(ctx: Ctx) -> None:
    await ctx.client.images.get("nope.png")


@case("images.url: a slash", ValidationError, r"refusing image name 'a/b\.png'", "image")
async def _(ctx: Ctx) -> None:
    ctx.client.images.url("a/b.png")


@case("images.thumbnail: control character", ValidationError, r"refusing image name", "image")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.thumbnail("a\n.png")


@case("images.upload: bytes that are no image", ValidationError, r"is not an image", "image")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.upload(b"hello")


@case("images.upload: missing file", ValidationError, r"image file '/nope/x\.png' does not exist",
      "image")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.upload("/nope/x.png")


@case("images.upload: unknown category", ValidationError, r"image category must be one of",
      "category")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.upload(png(), category="photo")  # type: ignore[arg-type]


@case("images.upload: resize_to (0, 5)", ValidationError, r"resize_to must be \(width, height\)",
      "resize_to")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.upload(png(), resize_to=(0, 5))


@case("images.upload: metadata not JSON", ValidationError, r"metadata must be JSON-serializable",
      "metadata")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.upload(png(), metadata={"a": object()})


@case("images.upload: intermediate as text", ValidationError,
      r"intermediate must be True or False", "intermediate")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.upload(png(), intermediate="no")  # type: ignore[arg-type]


@case("images.download_zip: neither images nor board", ValidationError,
      r"either images or board", "board")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.download_zip()


@case("images.download_zip: 1001 images", ValidationError, r"1 to 1000 images, got 1001", "images")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.download_zip([f"{i}.png" for i in range(1001)])


@case("images.download_zip: timeout=-1", ValidationError, r"timeout must be .*> 0, got -1",
      "timeout")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.download_zip(["a.png"], timeout=-1)


@case("images.download: folder missing", ValidationError, r"folder '/nope' does not exist", "dest")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.download("a.png", "/nope/dir/")


@case("images.update: starred as text", ValidationError, r"starred must be True or False",
      "starred")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.update("a.png", starred="yes")  # type: ignore[arg-type]


@case("images.list: unknown origin", ValidationError, r"origin must be one of", "origin")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.list(origin="web")  # type: ignore[arg-type]


@case("images.list: bad order", ValidationError, r"order must be 'desc' or 'asc'", "order")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.list(order="up")  # type: ignore[arg-type]


@case("images.star: None", ValidationError, r"images must be an image name", "images")
async def _(ctx: Ctx) -> None:
    await ctx.client.images.star(None)  # type: ignore[arg-type]


# -- client.models -------------------------------------------------------------------------


@case("models.get: empty key", ValidationError, r"key must be a non-empty string", "key")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.get("")


@case("models.get: key with a slash", ValidationError, r"key 'a/b' cannot be used in a URL path",
      "key")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.get("a/b")


@case("models.get: unknown key", NotFoundError, r"model 'nokey' not found", local=False)
async def _(ctx: Ctx) -> None:
    await ctx.client.models.get("nokey")


@case("models.list: base as an int", ValidationError, r"base must be a base model name", "base")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.list(base=5)  # type: ignore[arg-type]


@case("models.list: type as a list", ValidationError, r"type must be a non-empty string", "type")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.list(type=["main"])  # type: ignore[arg-type]


@case("models.get_by_name: base None", ValidationError, r"base must be a non-empty string", "base")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.get_by_name("x", base=None, type="main")  # type: ignore[arg-type]


@case("models.install_job: id as text", ValidationError, r"job_id must be a model install job id",
      "job_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.install_job("abc")  # type: ignore[arg-type]


@case("models.cancel_install: None", ValidationError, r"job_id must be a model install job id",
      "job_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.cancel_install(None)  # type: ignore[arg-type]


@case("models.install: config a list", ValidationError, r"config must be a mapping", "config")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.install("x", config=[1])  # type: ignore[arg-type]


@case("models.install: empty source", ValidationError, r"source must be a non-empty", "source")
async def _(ctx: Ctx) -> None:
    await ctx.client.models.install("")


# -- client.queue --------------------------------------------------------------------------


@case("queue.get: id as text", ValidationError, r"item_id must be a queue item id", "item_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.get("abc")  # type: ignore[arg-type]


@case("queue.get: id 0", ValidationError, r"item_id must be .*>= 1\), got 0", "item_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.get(0)


@case("queue.get: unknown id", NotFoundError, r"queue item 999999 not found", local=False)
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.get(999999)


@case("queue.delete: a float id", ValidationError, r"item_id must be a queue item id", "item_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.delete(1.5)  # type: ignore[arg-type]


@case("queue.retry: ids as text", ValidationError, r"item_ids must be a queue item id", "item_ids")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.retry(["a"])  # type: ignore[list-item]


@case("queue.batch_status: a slash", ValidationError, r"batch_id 'a/b' cannot be used in a URL",
      "batch_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.batch_status("a/b")


@case("queue.cancel_batch: an int", ValidationError, r"batch_ids must be a batch id", "batch_ids")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.cancel_batch(5)  # type: ignore[arg-type]


@case("queue.list: unknown status", ValidationError, r"status must be one of .* got 'done'",
      "status")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.list(status="done")


@case("queue.list: British spelling", ValidationError, r"got 'cancelled'", "status")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.list(status=["failed", "cancelled"])


@case("queue.item_ids: bad order", ValidationError, r"order must be 'desc' or 'asc'", "order")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.item_ids(order="up")  # type: ignore[arg-type]


@case("queue.delete_destination: a slash", ValidationError, r"destination 'a/b' cannot be used",
      "destination")
async def _(ctx: Ctx) -> None:
    await ctx.client.queue.delete_destination("a/b")


# -- the workflow library ------------------------------------------------------------------


@case("workflows.get_record: path traversal", ValidationError, r"a workflow id is a non-empty",
      "workflow_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.get_record("../x")


@case("workflows.get: unknown id", NotFoundError, r"workflow 'nope' not found", local=False)
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.get("nope")


@case("workflows.list: unknown category", ValidationError, r"category must be one of", "category")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.list(category="mine")


@case("workflows.list: tags an int", ValidationError, r"tags must be a string or strings", "tags")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.list(tags=5)  # type: ignore[arg-type]


@case("workflows.tags: unknown category", ValidationError, r"category must be one of .*'mine'",
      "category")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.tags(category="mine")


@case("workflows.counts_by_category: unknown", ValidationError, r"category must be one of",
      "categories")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.counts_by_category(["mine"])


@case("workflows.set_public: text", ValidationError, r"is_public must be True or", "is_public")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.set_public("x", "yes")  # type: ignore[arg-type]


@case("workflows.update: no id", ValidationError, r"update needs workflow_id=", "workflow_id")
async def _(ctx: Ctx) -> None:
    await ctx.client.workflows.update(example(ARITH) | {"id": ""})


# -- the sync Client twins (run in a worker thread: no event loop there) -------------------


def sync_case(id: str, error: type[BaseException], message: str, input: str | None,
              body: Callable[[Client], Any]) -> None:
    async def call(ctx: Ctx) -> None:
        def work() -> None:
            with Client(ctx.double.url) as client:
                ctx.reset()
                body(client)

        await anyio.to_thread.run_sync(work)

    CASES.append(Case(f"sync: {id}", call, error, message, input))


def _sync_ctor(client: Client) -> None:
    Client(client.base_url, max_retries=-1)


sync_case("Client(max_retries=-1)", ValidationError, r"max_retries must be an integer >= 0",
          "max_retries", _sync_ctor)
sync_case("boards.create('')", ValidationError, r"board name must be a non-empty", "name",
          lambda c: c.boards.create(""))
sync_case("images.get traversal", ValidationError, r"refusing image name", "image",
          lambda c: c.images.get("../x.png"))
sync_case("queue.list bad status", ValidationError, r"status must be one of", "status",
          lambda c: c.queue.list(status="done").first_page())
sync_case("models.install_job text", ValidationError, r"job_id must be", "job_id",
          lambda c: c.models.install_job("abc"))  # type: ignore[arg-type]
sync_case("workflows.load + set bad", ValidationError, r"expected a number", "'A'",
          lambda c: c.workflows.load(example(ARITH), typed=False).set("A", "six"))


# -- the test ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
async def test_bad_input(bad: Case, double: Peer, tmp_path: Path) -> None:
    assert double.double is not None
    server = double.double
    async with AsyncClient(server.url) as client:
        ctx = Ctx(client, server, tmp_path)
        ctx.reset()
        with pytest.raises(InvokeAIError) as caught:
            await bad.call(ctx)
        sent = server.requests[ctx.baseline:]
    exc = caught.value
    assert type(exc) is bad.error, f"{type(exc).__name__}: {exc}"
    assert re.search(bad.message, str(exc), re.S), str(exc)
    if isinstance(exc, ValidationError):
        assert exc.input, exc
        assert exc.rule, exc
        if bad.input is not None:
            assert bad.input in exc.input, exc.input
    if bad.local:
        assert sent == [], sent


def test_the_table_is_wide() -> None:
    """At least 50 mistakes, over every area of the public API."""
    areas = {c.id.split(":")[0].split(".")[0].split("(")[0] for c in CASES}
    assert len(CASES) >= 100, len(CASES)
    assert {"constructor", "load", "set", "submit", "submit_batch", "runs", "boards", "images",
            "models", "queue", "workflows", "sync", "run", "batch"} <= areas, areas


async def test_uploads_wait_for_the_checks(double: Peer) -> None:
    """A doomed batch submit uploads nothing (no orphan images on the server)."""
    assert double.double is not None
    server = double.double
    async with AsyncClient(server.url) as client:
        definition = WorkflowDefinition.from_dict(example(IMAGE))
        handle = WorkflowHandle(definition, schemas=BUNDLED, client=client)
        handle.set("Image", png())
        with pytest.raises(ValidationError, match="runs must be"):
            await handle.submit_batch({"Scale Factor": [0.5, 0.25]}, runs=0)
        assert handle.uploads == []
        assert server.count("POST", "/api/v1/images/upload*") == 0
        run = await handle.submit()  # the same handle still works
        assert (await run.result()).ok
        assert json.dumps(handle.uploads)  # uploaded once, owned by the handle
