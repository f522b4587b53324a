"""client.queue: status, items (6.8+ listing), cancel, retry, prune, pause/resume, cache."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from invokeai_client import AsyncClient, NotFoundError, PermissionDeniedError, ValidationError
from invokeai_client.types import BatchStatus, EnqueueBatchResult

from .conftest import ADMIN, USER, Peer

pytestmark = pytest.mark.anyio

T = TypeVar("T")

INTEGER = {"nodes": {"a": {"id": "a", "type": "integer", "value": 3}}, "edges": []}
FAILING = {
    "nodes": {
        "a": {"id": "a", "type": "integer", "value": 1},
        "d": {"id": "d", "type": "div", "a": 1, "b": 0},
    },
    "edges": [],
}


async def eventually(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 30.0
) -> T:
    """Poll ``read`` until ``done`` holds (fails the test after ``timeout`` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not done within {timeout}s: {value!r}")
        await asyncio.sleep(0.05)


async def enqueue(
    client: AsyncClient, graph: dict[str, Any], *, destination: str, runs: int = 1
) -> EnqueueBatchResult:
    answer = await client._request(
        "POST",
        f"/api/v1/queue/{client.queue_id}/enqueue_batch",
        json={
            "batch": {"graph": graph, "runs": runs, "origin": "sdk-tests",
                      "destination": destination},
            "prepend": False,
        },
    )
    return EnqueueBatchResult.model_validate(answer)


async def finished(client: AsyncClient, batch_id: str) -> BatchStatus:
    return await eventually(lambda: client.queue.batch_status(batch_id), lambda s: s.is_done)


@pytest.fixture
async def destination(client: AsyncClient) -> AsyncIterator[str]:
    """A destination of this test's own; its items are deleted afterwards."""
    name = f"sdk-queue-{uuid.uuid4().hex[:8]}"
    yield name
    await client.queue.delete_destination(name)


@pytest.fixture
async def paused(client: AsyncClient) -> AsyncIterator[AsyncClient]:
    """The processor paused for the test; always resumed afterwards."""
    await client.queue.pause()
    try:
        yield client
    finally:
        await client.queue.resume()


async def test_status_items_and_outputs(client: AsyncClient, destination: str) -> None:
    result = await enqueue(client, INTEGER, destination=destination, runs=2)
    assert result.enqueued == 2
    done = await finished(client, result.batch_id)
    assert (done.completed, done.total, done.destination) == (2, 2, destination)

    status = await client.queue.status()
    assert status.processor.is_started
    assert status.queue.completed >= 2
    counts = await client.queue.counts_by_destination(destination)
    assert (counts.completed, counts.total) == (2, 2)

    item = await client.queue.get(result.item_ids[0])
    assert item.status == "completed"
    assert item.batch_id == result.batch_id
    assert [output["value"] for output in item.outputs_of("a")] == [3]
    assert item.completed_at is not None
    assert item.started_at is not None
    assert item.completed_at >= item.started_at

    ids = await client.queue.item_ids()
    assert set(result.item_ids) <= set(ids)
    assert ids == sorted(ids, reverse=True)
    assert await client.queue.item_ids(order="asc") == sorted(ids)
    full = await client.queue.get_many(result.item_ids)
    assert [i.item_id for i in full] == result.item_ids
    summaries = await client.queue.get_summaries(result.item_ids)
    assert {s.item_id for s in summaries} == set(result.item_ids)
    assert all(s.destination == destination for s in summaries)


async def test_listing_yields_each_item_once_and_filters(
    paused: AsyncClient, destination: str
) -> None:
    client = paused
    result = await enqueue(client, INTEGER, destination=destination, runs=5)
    mine = [s async for s in client.queue.list(destination=destination, page_size=2)]
    assert [s.item_id for s in mine] == sorted(result.item_ids, reverse=True)
    assert all(s.status == "pending" for s in mine)
    oldest_first = await client.queue.list(
        destination=destination, order="asc", page_size=1000
    ).collect()
    assert [s.item_id for s in oldest_first] == sorted(result.item_ids)
    by_batch = await client.queue.list_full(batch_id=result.batch_id).collect()
    assert len(by_batch) == 5
    assert all(i.session for i in by_batch)
    assert await client.queue.list(destination=destination, status="completed").collect() == []
    first = await client.queue.list(page_size=3)
    assert len(first) == 3
    assert first.has_more
    assert await client.queue.cancel_destination(destination) == 5
    canceled = await client.queue.batch_status(result.batch_id)
    assert canceled.canceled == 5


async def test_pause_stops_processing_and_resume_restarts_it(
    client: AsyncClient, destination: str
) -> None:
    paused = await client.queue.pause()
    try:
        assert not paused.is_started
        assert not (await client.queue.status()).processor.is_started
        result = await enqueue(client, INTEGER, destination=destination)
        await asyncio.sleep(0.5)  # a running processor finishes this graph in milliseconds
        assert (await client.queue.get(result.item_ids[0])).status == "pending"
        assert (await client.queue.batch_status(result.batch_id)).pending == 1
    finally:
        resumed = await client.queue.resume()
    assert resumed.is_started
    done = await finished(client, result.batch_id)
    assert done.completed == 1


async def test_cancel_item_batch_and_delete(paused: AsyncClient, destination: str) -> None:
    client = paused
    one = await enqueue(client, INTEGER, destination=destination)
    many = await enqueue(client, INTEGER, destination=destination, runs=3)
    canceled = await client.queue.cancel(one.item_ids[0])
    assert canceled.status == "canceled"
    assert await client.queue.cancel_batch(many.batch_id) == 3
    assert (await client.queue.batch_status(many.batch_id)).canceled == 3
    # canceling a finished item changes nothing
    assert (await client.queue.cancel(one.item_ids[0])).status == "canceled"

    await client.queue.delete(one.item_ids[0])
    with pytest.raises(NotFoundError, match=f"queue item {one.item_ids[0]}"):
        await client.queue.get(one.item_ids[0])
    assert await client.queue.delete_destination(destination) == 3
    assert (await client.queue.counts_by_destination(destination)).total == 0


async def test_retry_creates_a_new_item_in_the_same_batch(
    client: AsyncClient, destination: str
) -> None:
    result = await enqueue(client, FAILING, destination=destination)
    first = await finished(client, result.batch_id)
    assert first.failed == 1
    original = result.item_ids[0]
    failed = await client.queue.get(original)
    assert failed.error_type == "ZeroDivisionError"

    retried = await client.queue.retry([original])
    assert retried.retried_item_ids == [original]
    again = await eventually(
        lambda: client.queue.list_full(batch_id=result.batch_id).collect(),
        lambda items: len(items) == 2 and all(i.is_terminal for i in items),
    )
    new = next(i for i in again if i.item_id != original)
    assert new.item_id > original
    assert new.batch_id == result.batch_id
    assert new.retried_from_item_id == original
    assert new.status == "failed"
    assert (await client.queue.get(original)).status == "failed"  # the original is untouched


async def test_prune_and_clear(client: AsyncClient, destination: str) -> None:
    result = await enqueue(client, INTEGER, destination=destination, runs=2)
    await finished(client, result.batch_id)
    assert await client.queue.prune() >= 2
    assert (await client.queue.counts_by_destination(destination)).total == 0
    await client.queue.pause()
    try:
        await enqueue(client, INTEGER, destination=destination, runs=2)
        assert await client.queue.clear() >= 2
        assert (await client.queue.status()).queue.pending == 0
    finally:
        await client.queue.resume()


async def test_unknown_items_and_bad_input(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError, match="queue item 987654"):
        await client.queue.get(987654)
    with pytest.raises(NotFoundError, match="queue item 987654"):
        await client.queue.cancel(987654)
    with pytest.raises(NotFoundError, match="queue item 987654"):
        await client.queue.delete(987654)
    assert (await client.queue.batch_status("no-such-batch")).total == 0
    assert (await client.queue.retry([987654])).retried_item_ids == []
    sent = client._http.request_count
    with pytest.raises(ValidationError, match="item_id"):
        await client.queue.get("12")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="destination"):
        await client.queue.cancel_destination("a/b")
    assert client._http.request_count == sent


async def test_invocation_cache_control(real_server: Peer) -> None:
    destination = f"sdk-cache-{uuid.uuid4().hex[:8]}"
    async with real_server.client() as client:
        await client.queue.clear_cache()
        status = await client.queue.cache_status()
        assert status.size == 0
        await client.queue.disable_cache()
        try:
            assert not (await client.queue.cache_status()).enabled
        finally:
            await client.queue.enable_cache()
        assert (await client.queue.cache_status()).enabled
        before = await client.queue.cache_status()
        result = await enqueue(client, INTEGER, destination=destination, runs=2)
        await finished(client, result.batch_id)
        after = await client.queue.cache_status()
        assert after.hits + after.misses >= before.hits + before.misses + 2
        assert await client.queue.delete_destination(destination) == 2


async def test_only_admins_pause_the_processor(multiuser_peer: Peer) -> None:
    async with multiuser_peer.client(email=USER[0], password=USER[1]) as user:
        with pytest.raises(PermissionDeniedError, match="Admin privileges required"):
            await user.queue.pause()
        assert (await user.queue.status()).processor.is_started
    async with multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as admin:
        try:
            assert not (await admin.queue.pause()).is_started
        finally:
            assert (await admin.queue.resume()).is_started
