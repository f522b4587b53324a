"""One sweep on a Ray cluster: async actors, each owning a ServerPool, take shards of it.

``pip install 'invokeai-client[ray]'``. The driver expands the sweep offline (typed by the
bundled 6.14.2 schemas, so bad values fail before any actor starts), cuts it into shards of
consecutive variations, and hands the shards to ``actors`` Ray actors. Each actor keeps one
:class:`~invokeai_client.pool.ServerPool` open (its own clients, scheduling and failover) and
runs each shard as one pool job whose data is the shard's variations as a single zipped
group; its results come back as plain dicts (picklable) and are put in sweep order.

Why Ray Core actors and not Ray Data: the work is I/O on servers, not data transformation;
an async actor drives hundreds of items concurrently on one event loop, and Ray Core needs
no pyarrow/pandas. See docs/ray.md for when to use Ray at all.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ValidationError
from ..fields import InvocationSchemas
from ..runs import FieldValues, ImageRef
from ..workflows import WorkflowDefinition, WorkflowHandle
from ._bodies import compile_body, sweep_groups, swept_names
from .results import PoolResult
from .variations import VariationSet, expand

__all__ = ["plain_result", "run_on_ray", "shard_data"]


def plain_result(
    result: PoolResult, offset: int = 0, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A pool result as plain data (picklable, JSON-able): index (plus ``offset``), inputs
    (named by ``names``, ``"node_id.field_name"`` -> the sweep's name, when given), server,
    status, item id, outputs (images by name), image names, attempts, error."""
    inputs = result.inputs
    if names:
        inputs = FieldValues(inputs.by_node(), names)
    return {
        "index": result.index + offset,
        "inputs": dict(inputs),
        "server": result.server,
        "status": result.status,
        "item_id": result.item_id,
        "outputs": _plain(dict(result.result.outputs)),
        "images": [image.image_name for image in result.result.images],
        "may_have_run_twice": result.may_have_run_twice,
        "attempts": [a.__dict__ for a in result.attempts],
        "error": result.result.error_message,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, ImageRef):
        return value.image_name
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def shard_data(
    variations: VariationSet, start: int, stop: int
) -> list[list[dict[str, Any]]] | None:
    """``Batch.data`` (one zipped group) making variations ``start:stop`` in order (None
    when nothing varies: the shard is then ``runs=len``)."""
    chunk = variations.variations[start:stop]
    if not variations.fields:
        return None
    return [[
        {"node_path": node, "field_name": name, "items": [v.values[i] for v in chunk]}
        for i, (node, name) in enumerate(variations.fields)
    ]]


def _expand_offline(workflow: Mapping[str, Any], values: Mapping[Any, Any] | None,
                    sweep: Mapping[Any, Iterable[Any]] | None, zip: bool | Sequence[Any],
                    runs: int) -> VariationSet:
    handle = WorkflowHandle(WorkflowDefinition.from_dict(dict(workflow)),
                            schemas=InvocationSchemas.bundled())
    handle.update({key: value for key, value in (values or {}).items()})
    groups = sweep_groups(handle, sweep, zip, None)
    body = compile_body(handle, groups, board_id=None, attach_workflow=False)
    return expand(body["batch"].get("data"), runs, swept_names(handle, sweep, zip))


class _PoolWorker:
    """The body of a Ray actor: one ServerPool, kept open, running shards as pool jobs."""

    def __init__(self, servers: list[str], options: dict[str, Any]) -> None:
        self.servers = servers
        self.options = options
        self.pool: Any = None
        self.lock = asyncio.Lock()

    async def run(self, workflow: dict[str, Any], values: dict[Any, Any] | None,
                  data: list[list[dict[str, Any]]] | None, runs: int, offset: int,
                  attach_workflow: bool, names: dict[str, str]) -> list[dict[str, Any]]:
        from .pool import ServerPool

        async with self.lock:
            if self.pool is None:
                self.pool = ServerPool(self.servers, **self.options)
                await self.pool.open()
        handle = await self.pool.load(workflow)
        handle.update(values or {})
        job = await self.pool.submit_batch(handle, data=data, runs=runs,
                                           attach_workflow=attach_workflow)
        return [plain_result(r, offset, names) for r in await job]

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
            self.pool = None


def run_on_ray(
    workflow: Mapping[str, Any],
    servers: Sequence[str],
    sweep: Mapping[Any, Iterable[Any]] | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    zip: bool | Sequence[Any] = False,
    runs: int = 1,
    actors: int = 2,
    shard_size: int | None = None,
    attach_workflow: bool = True,
    **client_options: Any,
) -> list[dict[str, Any]]:
    """Run every variation of ``sweep`` on ``servers`` from Ray actors; plain results in
    sweep order (see :func:`plain_result`). Call after ``ray.init()`` (a local cluster or
    ``ray.init(address=...)``); ``values`` are set on the workflow first (``{label: value}``).
    """
    import ray

    if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
        raise ValidationError(f"actors must be an int >= 1, got {actors!r}", input="actors",
                              rule=">= 1")
    variations = _expand_offline(workflow, values, sweep, zip, runs)
    size = shard_size or max(1, math.ceil(len(variations) / actors))
    worker: Any = ray.remote(_PoolWorker)
    handles: list[Any] = [worker.remote(list(servers), client_options) for _ in range(actors)]
    pending = []
    for n, start in enumerate(range(0, len(variations), size)):
        data = shard_data(variations, start, start + size)
        count = len(variations.variations[start : start + size])
        actor = handles[n % actors]
        pending.append(actor.run.remote(dict(workflow), dict(values or {}), data,
                                        1 if data else count, start, attach_workflow,
                                        dict(variations.names)))
    try:
        shards = ray.get(pending)
    finally:
        ray.get([actor.close.remote() for actor in handles])
        for actor in handles:
            ray.kill(actor)
    return sorted((r for shard in shards for r in shard), key=lambda r: r["index"])
