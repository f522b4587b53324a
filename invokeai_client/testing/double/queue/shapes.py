"""The request bodies of the queue routes as pydantic models, with the rules InvokeAI's own
models hold (FastAPI turns their errors into the 422s; see ``validation``)."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from ....types.batch import MIN_RUNS, mixed_kinds, ragged, repeated

MAX_IDS_PER_REQUEST = 1000


class Conn(BaseModel):
    node_id: str
    field: str


class Edge(BaseModel):
    source: Conn
    destination: Conn


class Datum(BaseModel):
    node_path: str
    field_name: str
    items: list[Any] = Field(default_factory=list)


class GraphIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    nodes: dict[str, Any] = Field(default_factory=dict)
    edges: list[Edge] = Field(default_factory=list)


class ExposedField(BaseModel):
    nodeId: str
    fieldName: str


_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


class WorkflowMeta(BaseModel):
    version: str
    category: Literal["user", "default"]

    @field_validator("version")
    @classmethod
    def _semver(cls, version: str) -> str:
        if not _SEMVER.match(version):
            raise ValueError(f"Invalid workflow meta version: {version}")
        return version


class Workflow(BaseModel):
    """A workflow as ``Batch.workflow`` takes it (the server's WorkflowWithoutID rules)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    author: str
    description: str
    version: str
    contact: str
    tags: str
    notes: str
    exposedFields: list[ExposedField]
    meta: WorkflowMeta
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    form: dict[str, Any] | None = None

    @field_validator("nodes")
    @classmethod
    def _one_return_node(cls, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        returns = sum(
            1
            for node in nodes
            if node.get("type") == "invocation"
            and isinstance(node.get("data"), dict)
            and node["data"].get("type") == "workflow_return"
        )
        if returns > 1:
            raise ValueError("A workflow may not contain more than one workflow_return node.")
        return nodes


class BatchIn(BaseModel):
    batch_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    origin: str | None = None
    destination: str | None = None
    data: list[list[Datum]] | None = None
    graph: GraphIn
    workflow: Workflow | None = None
    runs: int = Field(default=1, ge=MIN_RUNS)

    # The client's rules (types.batch), reported in InvokeAI's words and order.

    @field_validator("data")
    @classmethod
    def _zipped_lengths(cls, data: list[list[Datum]] | None) -> list[list[Datum]] | None:
        for group in data or ():
            if ragged([len(datum.items) for datum in group]) is not None:
                raise ValueError("Zipped batch items must all have the same length")
        return data

    @field_validator("data")
    @classmethod
    def _item_types(cls, data: list[list[Datum]] | None) -> list[list[Datum]] | None:
        for group in data or ():
            for datum in group:
                if mixed_kinds(datum.items):
                    raise ValueError("All items in a batch must have the same type")
        return data

    @field_validator("data")
    @classmethod
    def _unique_fields(cls, data: list[list[Datum]] | None) -> list[list[Datum]] | None:
        if repeated((d.node_path, d.field_name) for group in data or () for d in group):
            raise ValueError("Each batch data must have unique node_id and field_name")
        return data


class EnqueueBody(BaseModel):
    batch: BatchIn
    prepend: bool = False


class ItemIds(BaseModel):
    item_ids: list[int] = Field(max_length=MAX_IDS_PER_REQUEST)


class BatchIds(BaseModel):
    batch_ids: list[str]


INT_LIST: TypeAdapter[list[int]] = TypeAdapter(list[int])
