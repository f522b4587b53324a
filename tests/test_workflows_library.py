"""The server's workflow library through client.workflows, on the real server and the double."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from invokeai_client import AsyncClient, NotFoundError, PermissionDeniedError, ValidationError
from invokeai_client.workflows import examples

from .conftest import ADMIN, USER, Peer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def library(peer: Peer) -> AsyncIterator[AsyncClient]:
    async with peer.client(events=False) as client:
        yield client


def named(name: str) -> dict[str, Any]:
    data = json.loads(examples.path("arithmetic-form").read_text())
    data["name"] = name
    data["tags"] = "sdk-test,arithmetic"
    return data


async def test_create_get_update_delete(library: AsyncClient) -> None:
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    record = await library.workflows.create(named(name))
    try:
        assert record.workflow_id
        assert record.name == name
        assert record.workflow["id"] == record.workflow_id
        handle = await library.workflows.get(record.workflow_id)
        assert handle.definition.id == record.workflow_id
        assert [i.label for i in handle.inputs] == ["A", "B", "Operation", "Factor", "Multiplier"]
        handle.set("A", 99)
        updated = await library.workflows.update(handle)
        assert updated.workflow_id == record.workflow_id
        again = await library.workflows.get(record.workflow_id)
        assert again.get("A") == 99
        fetched = await library.workflows.get_record(record.workflow_id)
        assert fetched.category == "user"
        assert fetched.updated_at is not None
    finally:
        await library.workflows.delete(record.workflow_id)
    with pytest.raises(NotFoundError, match=record.workflow_id):
        await library.workflows.get(record.workflow_id)
    with pytest.raises(NotFoundError, match=record.workflow_id):
        await library.workflows.delete(record.workflow_id)


async def test_list_finds_by_category_query_and_tags(library: AsyncClient) -> None:
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    record = await library.workflows.create(named(name))
    try:
        mine = [w async for w in library.workflows.list(category="user", query=name)]
        assert [w.workflow_id for w in mine] == [record.workflow_id]
        assert mine[0].tag_list == ["sdk-test", "arithmetic"]
        assert mine[0].category == "user"
        tagged = [w.workflow_id async for w in library.workflows.list(tags="sdk-test")]
        assert record.workflow_id in tagged
        assert "sdk-test" in await library.workflows.tags()
        counts = await library.workflows.counts_by_category()
        assert counts["user"] >= 1
    finally:
        await library.workflows.delete(record.workflow_id)


async def test_default_workflows_page_by_page(library: AsyncClient) -> None:
    first = await library.workflows.list(category="default", page_size=3)
    assert first.total is not None
    assert first.total >= 2
    assert len(first) == min(3, first.total)
    everything = [w async for w in library.workflows.list(category="default", page_size=3)]
    assert len(everything) == first.total
    assert len({w.workflow_id for w in everything}) == first.total
    assert all(w.category == "default" for w in everything)
    names = [w.name for w in everything]
    assert names == sorted(names, key=str.lower)
    handle = await library.workflows.get(everything[0].workflow_id)
    assert handle.definition.category == "default"


async def test_sharing_a_workflow(library: AsyncClient) -> None:
    record = await library.workflows.create(named(f"sdk-{uuid.uuid4().hex[:8]}"))
    try:
        private = await library.workflows.set_public(record.workflow_id, False)
        assert private.is_public is False
        shared = await library.workflows.set_public(record.workflow_id, True)
        assert shared.is_public is True
    finally:
        await library.workflows.delete(record.workflow_id)


async def test_bad_library_input_fails_before_any_request(library: AsyncClient) -> None:
    data = named("x")
    del data["contact"]
    with pytest.raises(ValidationError, match="contact"):
        await library.workflows.create(data)
    with pytest.raises(ValidationError, match="category"):
        library.workflows.list(category="project")
    with pytest.raises(ValidationError, match="workflow_id"):
        await library.workflows.update(named("no id"))
    with pytest.raises(ValidationError, match="workflow id"):
        await library.workflows.get("../images")
    with pytest.raises(NotFoundError, match="no-such-workflow"):
        await library.workflows.get("no-such-workflow")


async def test_users_see_only_their_own_or_shared_workflows(multiuser_peer: Peer) -> None:
    async with (
        multiuser_peer.client(email=ADMIN[0], password=ADMIN[1], events=False) as admin,
        multiuser_peer.client(email=USER[0], password=USER[1], events=False) as user,
    ):
        record = await admin.workflows.create(named(f"sdk-{uuid.uuid4().hex[:8]}"))
        try:
            assert record.is_public is False  # multi-user saves are private
            with pytest.raises(PermissionDeniedError, match=record.workflow_id):
                await user.workflows.get(record.workflow_id)
            with pytest.raises(PermissionDeniedError):
                await user.workflows.delete(record.workflow_id)
            listed = [w.workflow_id async for w in user.workflows.list(category="user")]
            assert record.workflow_id not in listed
            await admin.workflows.set_public(record.workflow_id, True)
            handle = await user.workflows.get(record.workflow_id)
            assert handle.name == record.name
        finally:
            await admin.workflows.delete(record.workflow_id)
