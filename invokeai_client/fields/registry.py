"""Which field class handles which input: the open registry, schema mapping and inference.

A field's class is chosen, first match wins, by:

1. a class registered for the node type and field name (:func:`register_field`),
2. a class registered for the schema's ``ui_type`` or the component schema it refers to
   (``ImageField``, ``ModelIdentifierField``, a custom node pack's own field type ...),
3. the JSON Schema of the input (``integer``, ``number``, ``string``, ``enum``, arrays ...),
4. with no schema (an offline handle, or a node type the server does not know), the value
   found in the workflow.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from ._base import UNSET, IvkField
from .collections import CollectionField
from .models import (
    MODEL_KEYS,
    CLIPField,
    ControlField,
    IPAdapterField,
    LoRAField,
    ModelCarrierField,
    ModelIdentifierField,
    T2IAdapterField,
    T5EncoderField,
    TransformerField,
    UNetField,
    VAEField,
)
from .primitives import (
    AnyField,
    BooleanField,
    DictField,
    EnumField,
    FloatField,
    IntegerField,
    NumberField,
    StringField,
)
from .resources import (
    BoardField,
    ColorField,
    ConditioningField,
    DenoiseMaskField,
    ImageField,
    LatentsField,
    MetadataField,
    StructField,
    TensorField,
    VideoField,
)

F = TypeVar("F", bound=type[IvkField[Any]])

_NULL = {"type": "null"}


class FieldRegistry:
    """Maps node inputs to field classes. :data:`default_registry` is the one the SDK uses;
    register your own classes there (see :func:`register_field`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_node_field: dict[tuple[str, str], type[IvkField[Any]]] = {}
        self._by_node: dict[str, type[IvkField[Any]]] = {}
        self._by_schema: dict[str, type[IvkField[Any]]] = {}

    def register(
        self,
        cls: type[IvkField[Any]],
        *,
        schema: str | None = None,
        node_type: str | None = None,
        field_name: str | None = None,
    ) -> None:
        """Use ``cls`` for inputs whose schema type (component name or ``ui_type``) is
        ``schema``, or for ``field_name`` of ``node_type`` (every field of the node type when
        ``field_name`` is None)."""
        if not (isinstance(cls, type) and issubclass(cls, IvkField)):
            from ..errors import ValidationError

            raise ValidationError(
                f"register_field needs an IvkField subclass, got {cls!r}",
                input="cls",
                rule="IvkField subclass",
            )
        if schema is None and node_type is None:
            from ..errors import ValidationError

            raise ValidationError(
                "register_field needs schema= or node_type=", input="schema", rule="a target"
            )
        with self._lock:
            if schema is not None:
                self._by_schema[schema] = cls
            if node_type is not None:
                if field_name is None:
                    self._by_node[node_type] = cls
                else:
                    self._by_node_field[(node_type, field_name)] = cls

    def for_node_field(self, node_type: str, field_name: str) -> type[IvkField[Any]] | None:
        return self._by_node_field.get((node_type, field_name)) or self._by_node.get(node_type)

    def for_schema(self, name: str) -> type[IvkField[Any]] | None:
        return self._by_schema.get(name)

    # -- building fields ---------------------------------------------------------------------

    def from_schema(
        self,
        prop: Mapping[str, Any],
        components: Mapping[str, Any],
        **meta: Any,
    ) -> IvkField[Any]:
        """The field for one input property of an invocation schema."""
        meta = dict(meta)
        meta.setdefault("title", str(prop.get("title") or ""))
        meta.setdefault("description", str(prop.get("description") or ""))
        meta["required"] = bool(prop.get("orig_required", False))
        meta["default"] = prop.get("default", prop.get("orig_default"))
        input_kind = prop.get("input")
        if input_kind in ("any", "direct", "connection"):
            meta["input_kind"] = input_kind
        meta["ui"] = {k: v for k, v in prop.items() if k.startswith("ui_")}
        meta["origin"] = "schema"
        node_type = str(meta.get("node_type") or "")
        registered = self.for_node_field(node_type, str(meta.get("name") or ""))
        if registered is not None:
            return _make(registered, {"origin": "registered"}, meta)
        ui_type = prop.get("ui_type")
        if isinstance(ui_type, str) and (cls := self.for_schema(ui_type)) is not None:
            return _make(cls, {"origin": "registered"}, meta)
        alternatives, nullable = _alternatives(prop)
        meta["nullable"] = nullable
        return self._build(alternatives, components, meta)

    def _build(
        self,
        alternatives: list[Mapping[str, Any]],
        components: Mapping[str, Any],
        meta: dict[str, Any],
    ) -> IvkField[Any]:
        if len(alternatives) == 1:
            cls, kwargs = self._single(alternatives[0], components)
            return _make(cls, kwargs, meta)
        if len(alternatives) == 2:
            arrays = [a for a in alternatives if a.get("type") == "array"]
            singles = [a for a in alternatives if a.get("type") != "array"]
            if len(arrays) == 1 and len(singles) == 1:
                items = arrays[0].get("items") or {}
                if _same_type(items, singles[0]):
                    cls, kwargs = self._single(singles[0], components)
                    kwargs["accepts_list"] = True
                    return _make(cls, kwargs, meta)
        return _make(AnyField, {}, meta)

    def _single(
        self, schema: Mapping[str, Any], components: Mapping[str, Any]
    ) -> tuple[type[IvkField[Any]], dict[str, Any]]:
        ref = _ref_name(schema)
        if ref is not None:
            return self._component(ref, components)
        if "enum" in schema:
            return EnumField, {"options": list(schema["enum"])}
        if "const" in schema:
            return EnumField, {"options": [schema["const"]]}
        kind = schema.get("type")
        if kind == "integer":
            return IntegerField, _numeric_rules(schema)
        if kind == "number":
            return FloatField, _numeric_rules(schema)
        if kind == "string":
            return StringField, {
                "min_length": schema.get("minLength"),
                "max_length": schema.get("maxLength"),
            }
        if kind == "boolean":
            return BooleanField, {}
        if kind == "array":
            alternatives, nullable = _alternatives(schema.get("items") or {})
            item = self._build(alternatives, components, {"nullable": nullable, "origin": "schema"})
            return CollectionField, {
                "item": item,
                "min_items": schema.get("minItems"),
                "max_items": schema.get("maxItems"),
            }
        if kind == "object":
            return DictField, {}
        return AnyField, {}

    def _component(
        self, name: str, components: Mapping[str, Any]
    ) -> tuple[type[IvkField[Any]], dict[str, Any]]:
        resolved = components.get(name)
        resolved = resolved if isinstance(resolved, Mapping) else {}
        cls = self.for_schema(name)
        if cls is None:
            if "enum" in resolved:
                return EnumField, {"options": list(resolved["enum"])}
            if resolved.get("type") == "object" or "properties" in resolved:
                cls = ModelCarrierField if _carries_models(resolved, components) else StructField
            else:
                return AnyField, {}
        kwargs: dict[str, Any] = {}
        if issubclass(cls, StructField):
            shape, required = _shape(resolved, components)
            kwargs = {"schema_name": name, "shape": shape, "required_keys": required}
        return cls, kwargs

    # -- inference (no schema) ---------------------------------------------------------------

    def infer(self, value: Any, **meta: Any) -> IvkField[Any]:
        """A field guessed from a workflow value (used when no schema describes the input)."""
        meta = dict(meta)
        meta.setdefault("nullable", True)
        meta["origin"] = "inferred"
        registered = self.for_node_field(
            str(meta.get("node_type") or ""), str(meta.get("name") or "")
        )
        if registered is not None:
            return _make(registered, {"origin": "registered"}, meta)
        cls, kwargs = _infer(value, str(meta.get("name") or ""))
        return _make(cls, kwargs, meta)


def _infer(value: Any, name: str) -> tuple[type[IvkField[Any]], dict[str, Any]]:
    if value is UNSET or value is None:
        return AnyField, {}
    if isinstance(value, bool):
        return BooleanField, {}
    if isinstance(value, int):
        return NumberField, {}
    if isinstance(value, float):
        return FloatField, {}
    if isinstance(value, str):
        if name == "board" and value in ("auto", "none"):
            return BoardField, {}
        return StringField, {}
    if isinstance(value, dict):
        keys = set(value)
        if "image_name" in keys:
            return ImageField, {}
        if "board_id" in keys:
            return BoardField, {}
        if "video_name" in keys:
            return VideoField, {}
        if set(MODEL_KEYS) <= keys:
            return ModelIdentifierField, {}
        if {"r", "g", "b"} <= keys and keys <= {"r", "g", "b", "a"}:
            return ColorField, {}
        if "latents_name" in keys:
            return LatentsField, {"schema_name": "LatentsField"}
        if "tensor_name" in keys:
            return TensorField, {"schema_name": "TensorField"}
        if "conditioning_name" in keys:
            return ConditioningField, {"schema_name": "ConditioningField"}
        if any(isinstance(v, dict) and set(MODEL_KEYS) <= set(v) for v in value.values()):
            return ModelCarrierField, {}
        return DictField, {}
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if value and len(numbers) == len(value):
            item_cls: type[IvkField[Any]] = (
                FloatField if any(isinstance(v, float) for v in numbers) else NumberField
            )
            return CollectionField, {"item": item_cls(origin="inferred")}
        first = next((v for v in value if v is not None), None)
        item_type, item_kwargs = _infer(first, "")
        return CollectionField, {"item": item_type(origin="inferred", **item_kwargs)}
    return AnyField, {}


def _make(
    cls: type[IvkField[Any]], kwargs: Mapping[str, Any], meta: Mapping[str, Any]
) -> IvkField[Any]:
    merged = {**meta, **kwargs}
    known = cls.model_fields
    return cls(**{k: v for k, v in merged.items() if k in known and v is not None})


def _alternatives(prop: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    """The non-null alternatives of a property (anyOf flattened) and whether null is allowed."""
    if "anyOf" in prop or "oneOf" in prop:
        options = prop.get("anyOf") or prop.get("oneOf") or []
        result: list[Mapping[str, Any]] = []
        nullable = False
        for option in options:
            if not isinstance(option, Mapping):
                continue
            if option == _NULL or option.get("type") == "null":
                nullable = True
                continue
            inner, inner_null = _alternatives(option)
            result.extend(inner)
            nullable = nullable or inner_null
        return result or [{}], nullable
    if "allOf" in prop and len(prop["allOf"]) == 1 and isinstance(prop["allOf"][0], Mapping):
        merged = {k: v for k, v in prop.items() if k != "allOf"}
        merged.update(prop["allOf"][0])
        return [merged], False
    return [prop], False


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    return None


def _same_type(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    ref_a, ref_b = _ref_name(a), _ref_name(b)
    if ref_a or ref_b:
        return ref_a == ref_b
    return a.get("type") == b.get("type") and a.get("type") is not None


def _numeric_rules(schema: Mapping[str, Any]) -> dict[str, Any]:
    def num(key: str) -> float | None:
        value = schema.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return {
        "ge": num("minimum"),
        "le": num("maximum"),
        "gt": num("exclusiveMinimum"),
        "lt": num("exclusiveMaximum"),
        "multiple_of": num("multipleOf"),
    }


def _kind_of(schema: Mapping[str, Any], components: Mapping[str, Any]) -> str:
    alternatives, _ = _alternatives(schema)
    kinds = set()
    for alt in alternatives:
        ref = _ref_name(alt)
        if ref is not None:
            target = components.get(ref)
            target = target if isinstance(target, Mapping) else {}
            kinds.add(
                "string"
                if "enum" in target and target.get("type") == "string"
                else "object"
                if target.get("type") == "object" or "properties" in target
                else "any"
            )
        else:
            kinds.add(str(alt.get("type") or "any"))
    return kinds.pop() if len(kinds) == 1 else "any"


def _shape(
    resolved: Mapping[str, Any], components: Mapping[str, Any]
) -> tuple[dict[str, str], list[str]]:
    properties = resolved.get("properties")
    if not isinstance(properties, Mapping):
        return {}, []
    shape = {
        str(key): _kind_of(prop, components)
        for key, prop in properties.items()
        if isinstance(prop, Mapping)
    }
    required = [str(r) for r in resolved.get("required", []) if isinstance(r, str)]
    return shape, required


def _carries_models(resolved: Mapping[str, Any], components: Mapping[str, Any]) -> bool:
    text = repr(resolved.get("properties", {}))
    return "ModelIdentifierField" in text or any(
        f"/{name}'" in text for name in ("UNetField", "CLIPField", "VAEField", "TransformerField")
    )


default_registry = FieldRegistry()
"""The registry the SDK uses. Built-in mappings are registered below; add yours with
:func:`register_field`."""

# The built-in classes are named after the server component schemas they stand for.
for _cls in (
    ImageField, BoardField, ColorField, VideoField, LatentsField, TensorField, DenoiseMaskField,
    ConditioningField, MetadataField, ModelIdentifierField, UNetField, CLIPField, VAEField,
    TransformerField, T5EncoderField, LoRAField, ControlField, IPAdapterField, T2IAdapterField,
):
    default_registry.register(_cls, schema=_cls.__name__)
for _name in (
    "FluxConditioningField",
    "SD3ConditioningField",
    "CogView4ConditioningField",
    "ZImageConditioningField",
    "QwenImageConditioningField",
    "AnimaConditioningField",
    "WanConditioningField",
    "Krea2ConditioningField",
    "ErnieImageConditioningField",
    "FluxKontextConditioningField",
    "FluxReduxConditioningField",
    "FluxFillConditioningField",
    "Ideogram4ConditioningField",
):
    default_registry.register(ConditioningField, schema=_name)


def register_field(
    cls: F | None = None,
    *,
    schema: str | None = None,
    node_type: str | None = None,
    field_name: str | None = None,
    registry: FieldRegistry | None = None,
) -> Any:
    """Register a field class for a custom node's inputs or a custom field type.

    ``register_field(MyField, node_type="my_node", field_name="strength")`` uses ``MyField`` for
    that input; ``schema="MyPackField"`` for every input whose schema refers to that component
    (or ``ui_type``). Also usable as a class decorator: ``@register_field(schema="...")``.
    Handles created afterwards use it.
    """
    target = registry or default_registry

    def apply(klass: F) -> F:
        target.register(klass, schema=schema, node_type=node_type, field_name=field_name)
        return klass

    if cls is None:
        return apply
    return apply(cls)

