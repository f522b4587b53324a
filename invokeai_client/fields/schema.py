"""The server's invocation catalog, read from its OpenAPI document.

InvokeAI describes every node type in ``GET /openapi.json`` under
``components.schemas.<Class>``: its inputs with their JSON Schema types and constraints, and
``ui_*`` hints. The GUI builds its node templates from that document; the SDK does the same to
type workflow inputs. :class:`InvocationSchemas` is that catalog, fetched once per client
(``await client.workflows.schemas()``) or built from a file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from ._base import IvkField
from .registry import FieldRegistry, default_registry

log = logging.getLogger("invokeai_client")

NODE_ATTRIBUTES = frozenset({"id", "type", "is_intermediate", "use_cache"})
BUNDLED_VERSION = "6.14.2"

# Nodes declared with pydantic ``extra="allow"``: inputs the schema does not list are kept.
NODES_ACCEPTING_EXTRA_INPUTS = frozenset({"core_metadata"})


@dataclass(frozen=True)
class NodeSchema:
    """One invocation type of the server: its inputs (raw JSON Schema properties) and flags."""

    type: str
    title: str = ""
    version: str = ""
    classification: str = "stable"
    use_cache: bool = True
    output: str | None = None
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def accepts_extra_inputs(self) -> bool:
        return self.type in NODES_ACCEPTING_EXTRA_INPUTS


class InvocationSchemas:
    """The node types a server offers and the schema of each input.

    Build it with :meth:`from_openapi` (a server's ``/openapi.json``), or use
    :meth:`bundled` (InvokeAI 6.14.2's catalog shipped with the SDK) to type workflows with no
    server at hand.
    """

    def __init__(
        self,
        nodes: Mapping[str, NodeSchema],
        components: Mapping[str, Any],
        *,
        source: str = "",
    ) -> None:
        self._nodes = dict(nodes)
        self._components = components
        self.source = source

    def __repr__(self) -> str:
        return f"<InvocationSchemas {len(self._nodes)} node types from {self.source or 'unknown'}>"

    @classmethod
    def from_openapi(cls, document: Mapping[str, Any], *, source: str = "") -> InvocationSchemas:
        """Read the invocation schemas of an OpenAPI document (tolerant of missing parts)."""
        components = document.get("components") if isinstance(document, Mapping) else None
        schemas = components.get("schemas") if isinstance(components, Mapping) else None
        if not isinstance(schemas, Mapping):
            log.warning("OpenAPI document has no components.schemas; no node types known")
            return cls({}, {}, source=source)
        nodes: dict[str, NodeSchema] = {}
        for schema in schemas.values():
            if not isinstance(schema, Mapping) or schema.get("class") != "invocation":
                continue
            node = _node_schema(schema)
            if node is not None:
                nodes[node.type] = node
        return cls(nodes, MappingProxyType(dict(schemas)), source=source)

    @classmethod
    def bundled(cls) -> InvocationSchemas:
        """The catalog of InvokeAI 6.14.2, shipped with the SDK (no server needed)."""
        return _bundled()

    # -- lookups ---------------------------------------------------------------------------

    def __contains__(self, node_type: object) -> bool:
        return node_type in self._nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, node_type: str) -> NodeSchema | None:
        """The schema of ``node_type``, or None if the server has no such node."""
        return self._nodes.get(node_type)

    @property
    def components(self) -> Mapping[str, Any]:
        return self._components

    def field(
        self,
        node_type: str,
        field_name: str,
        *,
        registry: FieldRegistry | None = None,
        **meta: Any,
    ) -> IvkField[Any] | None:
        """A new field for ``field_name`` of ``node_type`` (None if the schema lacks it)."""
        node = self._nodes.get(node_type)
        if node is None:
            return None
        prop = node.inputs.get(field_name)
        if prop is None:
            return None
        return (registry or default_registry).from_schema(
            prop, self._components, node_type=node_type, name=field_name, **meta
        )


def _node_schema(schema: Mapping[str, Any]) -> NodeSchema | None:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    type_prop = properties.get("type")
    node_type = None
    if isinstance(type_prop, Mapping):
        node_type = type_prop.get("const") or type_prop.get("default")
    if not isinstance(node_type, str) or not node_type:
        return None
    use_cache_prop = properties.get("use_cache")
    use_cache = True
    if isinstance(use_cache_prop, Mapping) and isinstance(use_cache_prop.get("default"), bool):
        use_cache = use_cache_prop["default"]
    inputs = {
        str(name): prop
        for name, prop in properties.items()
        if isinstance(prop, Mapping)
        and name not in NODE_ATTRIBUTES
        and prop.get("field_kind") != "node_attribute"
    }
    output = schema.get("output")
    output_name = None
    if isinstance(output, Mapping) and isinstance(output.get("$ref"), str):
        output_name = output["$ref"].rsplit("/", 1)[-1]
    return NodeSchema(
        type=node_type,
        title=str(schema.get("title") or ""),
        version=str(schema.get("version") or ""),
        classification=str(schema.get("classification") or "stable"),
        use_cache=use_cache,
        output=output_name,
        inputs=MappingProxyType(inputs),
    )


@lru_cache(maxsize=1)
def _bundled() -> InvocationSchemas:
    from importlib import resources

    text = (
        resources.files("invokeai_client.testing")
        .joinpath(f"openapi-{BUNDLED_VERSION}.min.json")
        .read_text(encoding="utf-8")
    )
    return InvocationSchemas.from_openapi(json.loads(text), source=f"bundled {BUNDLED_VERSION}")


def bundled_openapi_text() -> str:
    """The bundled OpenAPI extract as text (the double serves it at ``/openapi.json``)."""
    from importlib import resources

    return (
        resources.files("invokeai_client.testing")
        .joinpath(f"openapi-{BUNDLED_VERSION}.min.json")
        .read_text(encoding="utf-8")
    )
