"""The form of a workflow: its inputs in GUI order, their typed fields and the values set.

A :class:`WorkflowForm` copies what it needs from its :class:`WorkflowDefinition` and never
writes back. Values go through the field system when set, so a wrong type or an out-of-range
value fails at ``set()`` with a :class:`~invokeai_client.errors.ValidationError` naming the
input. Keys are an input's index, its label, or ``"node_id.field_name"`` (which reaches any
node input, in the form or not). The values live in a :class:`WorkflowValues`, which is what
the compile stage reads.
"""

from __future__ import annotations

import builtins
import copy
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._limits import short_repr
from ..errors import ValidationError
from ..fields._base import UNSET, IvkField
from ..fields.collections import CollectionField
from ..fields.models import ModelIdentifierField, ModelName
from ..fields.primitives import FloatField, IntegerField, NumberField, StringField
from ..fields.registry import FieldRegistry
from ..fields.resources import ImageField, LocalImage
from ..fields.schema import InvocationSchemas
from ._topology import topology_of
from .definition import ExposedField, WorkflowDefinition, WorkflowNode

InputKey = int | str
"""An input key: its index in the form, its label, or ``"node_id.field_name"``."""


@dataclass(frozen=True)
class IvkWorkflowInput:
    """One input of the workflow's form: where it lives and its typed field.

    ``index`` is its position in GUI order, ``label`` what the GUI shows, ``field`` the
    :class:`~invokeai_client.fields.IvkField` holding the value (``field.value``).
    """

    index: int
    label: str
    node_id: str
    field_name: str
    field: IvkField[Any]
    required: bool
    description: str
    connected: bool = False
    """Fed by an edge: a literal value would be ignored, so setting one is refused."""

    @property
    def key(self) -> str:
        """``"node_id.field_name"``, the input's unambiguous key."""
        return f"{self.node_id}.{self.field_name}"

    @property
    def value(self) -> Any:
        return self.field.value

    @property
    def type_name(self) -> str:
        return type(self.field).__name__

    def __repr__(self) -> str:
        return (
            f"IvkWorkflowInput({self.index}, {self.label!r}, {self.key}, "
            f"{self.type_name}, value={self.field.value!r})"
        )


@dataclass
class WorkflowValues:
    """The values of one handle, as the compile stage reads them.

    ``fields`` holds a typed field per node input that has one (every form input, and any
    node input reached by ``"node_id.field_name"``); other inputs keep the workflow's literal.
    """

    registry: FieldRegistry
    fields: dict[tuple[str, str], IvkField[Any]] = field(default_factory=dict)
    explicit: set[tuple[str, str]] = field(default_factory=set)
    """Inputs set through the handle (model sync never overrides those)."""
    node_options: dict[str, dict[str, bool]] = field(default_factory=dict)
    """Node id -> ``use_cache`` / ``is_intermediate`` set through the handle."""
    generated: dict[str, list[Any]] = field(default_factory=dict)
    """Generator node id -> the values computed with the server's help."""
    suspect: set[tuple[str, str]] = field(default_factory=set)
    """Fields whose value came from the workflow file and broke a rule when loaded: the
    only values the compile checks again (everything set since went through the field's
    checks)."""
    named: dict[tuple[str, str], ModelName] = field(default_factory=dict)
    """Model inputs set to a key or name that a server's model has replaced: the name, so
    a copy bound to another server looks it up there (keys are local to a server)."""

    def mark_explicit(self, key: tuple[str, str]) -> None:
        """The user set this input (model sync never overrides it)."""
        self.explicit.add(key)
        self.named.pop(key, None)

    def restore_names(self) -> None:
        """Put back the model names a server's models replaced (for another server)."""
        for key, name in self.named.items():
            self.fields[key].load(name)
        self.named.clear()

    def hold(self, key: tuple[str, str], made: IvkField[Any]) -> IvkField[Any]:
        """Keep a new field (made from the workflow's literal) under ``key``."""
        self.fields[key] = made
        if made.problems():
            self.suspect.add(key)
        return made

    def copy(self) -> WorkflowValues:
        """An independent copy (fields cloned with their values)."""
        fields = {}
        for key, old in self.fields.items():
            clone = old.model_copy()
            clone.load(copy.deepcopy(old.value))
            fields[key] = clone
        return WorkflowValues(
            registry=self.registry,
            fields=fields,
            explicit=builtins.set(self.explicit),
            suspect=builtins.set(self.suspect),
            node_options={k: dict(v) for k, v in self.node_options.items()},
            generated={k: list(v) for k, v in self.generated.items()},
            named=dict(self.named),
        )


def new_field(
    node: WorkflowNode,
    name: str,
    schemas: InvocationSchemas | None,
    registry: FieldRegistry,
) -> IvkField[Any]:
    """A typed field for a node input, holding the workflow's literal (normalised when it is
    valid; kept as it is when not, so that problems() reports it)."""
    spec = node.inputs.get(name)
    raw = spec.value if spec is not None else UNSET
    made: IvkField[Any] | None = None
    if schemas is not None:
        made = schemas.field(node.type, name, registry=registry, node_id=node.id)
    if made is None:
        made = registry.infer(raw, node_id=node.id, node_type=node.type, name=name)
    made.label = (spec.label if spec is not None else "") or made.title or name
    if spec is not None and spec.description:
        made.description = spec.description
    try:
        made.load(copy.deepcopy(made.check(raw)))
    except ValidationError:
        made.load(copy.deepcopy(raw))
    return made


def knows_input(node: WorkflowNode, name: str, schemas: InvocationSchemas | None) -> bool:
    """Whether ``name`` is an input of ``node`` (in the workflow or in the server's schema)."""
    if name in node.inputs:
        return True
    node_schema = schemas.get(node.type) if schemas is not None else None
    return node_schema is not None and name in node_schema.inputs


class WorkflowForm:
    """The inputs of one workflow and the values set on them (see the module docstring)."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        schemas: InvocationSchemas | None,
        registry: FieldRegistry,
        *,
        values: WorkflowValues | None = None,
    ) -> None:
        self.definition = definition
        self.schemas = schemas
        self.values = values or WorkflowValues(registry=registry)
        self.fed = topology_of(definition).fed
        self.inputs = tuple(
            self._make_input(index, exposed)
            for index, exposed in enumerate(definition.exposed_fields)
        )

    @property
    def name(self) -> str:
        return self.definition.name

    def copy(self) -> WorkflowForm:
        """An independent form with the same values."""
        return WorkflowForm(
            self.definition, self.schemas, self.values.registry, values=self.values.copy()
        )

    def _make_input(self, index: int, exposed: ExposedField) -> IvkWorkflowInput:
        key = (exposed.node_id, exposed.field_name)
        made = self.values.fields.get(key)
        if made is None:
            node = self.definition.nodes[exposed.node_id]
            made = new_field(node, exposed.field_name, self.schemas, self.values.registry)
            _apply_form_settings(made, exposed.settings)
            self.values.hold(key, made)
        connected = key in self.fed
        return IvkWorkflowInput(
            index=index,
            label=made.label,
            node_id=exposed.node_id,
            field_name=exposed.field_name,
            field=made,
            required=made.required and not connected,
            description=made.description,
            connected=connected,
        )

    # -- keys ------------------------------------------------------------------------------

    def field_at(self, node_id: str, name: str, *, create: bool = True) -> IvkField[Any] | None:
        """The field of any node input (made from the workflow's literal on first use)."""
        key = (node_id, name)
        found = self.values.fields.get(key)
        if found is None and create:
            node = self.definition.nodes.get(node_id)
            if node is None or not node.is_invocation or not knows_input(
                node, name, self.schemas
            ):
                return None
            found = self.values.hold(
                key, new_field(node, name, self.schemas, self.values.registry)
            )
        return found

    def input(self, key: Any) -> IvkWorkflowInput:
        """The form input for ``key``: its index, its label or ``"node_id.field_name"``."""
        found = self.find(key)
        if isinstance(found, IvkWorkflowInput):
            return found
        raise ValidationError(
            f"{key!r} is a node input that is not in the workflow's form; use field({key!r}) "
            "to reach it",
            input=str(key),
            rule="form input",
        )

    def field(self, key: Any) -> IvkField[Any]:
        """The typed field for ``key`` (form inputs, or any node input by
        ``"node_id.field_name"``)."""
        found = self.find(key)
        return found.field if isinstance(found, IvkWorkflowInput) else found

    def full_key(self, key: Any) -> str:
        """The ``"node_id.field_name"`` an input key names."""
        found = self.field(key)
        return f"{found.node_id}.{found.name}"

    def find(self, key: Any) -> IvkWorkflowInput | IvkField[Any]:
        """The form input or node field ``key`` names, or a ValidationError listing inputs."""
        if isinstance(key, IvkWorkflowInput):
            if key.index < len(self.inputs) and self.inputs[key.index].key == key.key:
                return self.inputs[key.index]
            return self.find(key.key)
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise ValidationError(
                f"an input key is an index, a label or 'node_id.field_name', got "
                f"{type(key).__name__} {short_repr(key)}",
                input=short_repr(key),
                rule="input key",
            )
        if isinstance(key, int):
            if 0 <= key < len(self.inputs):
                return self.inputs[key]
            raise ValidationError(
                f"input index {short_repr(key)} is out of range: workflow {self.name!r} has "
                f"{len(self.inputs)} inputs (0..{len(self.inputs) - 1})\n{self.listing()}",
                input=short_repr(key),
                rule="known input",
            )
        return self._find_text(key)

    def _find_text(self, key: str) -> IvkWorkflowInput | IvkField[Any]:
        by_key = [i for i in self.inputs if i.key == key]
        if by_key:
            return by_key[0]
        by_label = [i for i in self.inputs if i.label == key]
        if not by_label:
            folded = key.casefold().strip()
            by_label = [i for i in self.inputs if i.label.casefold().strip() == folded]
        if len(by_label) == 1:
            return by_label[0]
        if len(by_label) > 1:
            listing = "\n".join(f"  {i.index}: {i.label!r} ({i.key})" for i in by_label)
            raise ValidationError(
                f"input label {key!r} is ambiguous in workflow {self.name!r}; use an index or "
                f"'node_id.field_name':\n{listing}",
                input=key,
                rule="unambiguous input key",
            )
        if "." in key:
            node_id, name = key.rsplit(".", 1)
            found = self.field_at(node_id, name)
            if found is not None:
                return found
        close = difflib.get_close_matches(
            key, [i.label for i in self.inputs] + [i.key for i in self.inputs], n=3
        )
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValidationError(
            f"workflow {self.name!r} has no input {key!r}.{hint} Its inputs are:\n"
            f"{self.listing()}",
            input=key,
            rule="known input",
        )

    def listing(self) -> str:
        """The form's inputs, one a line (for error messages)."""
        if not self.inputs:
            return "  (none: the workflow's form exposes no inputs; use 'node_id.field_name')"
        return "\n".join(f"  {i.index}: {i.label!r} ({i.key}, {i.type_name})" for i in self.inputs)

    # -- values ----------------------------------------------------------------------------

    def settable(self, key: Any) -> IvkField[Any]:
        """The field of an input that takes a value: not one fed by an edge."""
        found = self.field(key)
        feeder = self.fed.get((found.node_id, found.name))
        if feeder is not None:
            raise ValidationError(
                f"input {found.display_name()} is fed by {feeder}; a value set here would be "
                "ignored",
                input=found.display_name(),
                rule="not connected",
            )
        return found

    def set(self, key: Any, value: Any) -> None:
        """Set an input's value (checked now)."""
        target = self.settable(key)
        target.set(value)
        self.values.mark_explicit((target.node_id, target.name))

    def update(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        """Set several inputs at once (all are checked before any is changed)."""
        checked: list[tuple[IvkField[Any], Any]] = []
        for key, value in pairs:
            target = self.settable(key)
            checked.append((target, target.check(value)))
        for target, value in checked:
            target.load(value)
            self.values.mark_explicit((target.node_id, target.name))

    def unset(self, key: Any) -> None:
        """Remove an input's value: the server's default applies."""
        target = self.field(key)
        target.unset()
        self.values.mark_explicit((target.node_id, target.name))

    def by_label(self) -> dict[str, Any]:
        """``{label: value}`` of the form's inputs (``node_id.field_name`` where labels
        repeat)."""
        counts: dict[str, int] = {}
        for i in self.inputs:
            counts[i.label] = counts.get(i.label, 0) + 1
        return {(i.label if counts[i.label] == 1 else i.key): i.field.value for i in self.inputs}

    def is_explicit(self, key: Any) -> bool:
        """Whether the value was set through the handle."""
        found = self.field(key)
        return (found.node_id, found.name) in self.values.explicit

    def set_node(
        self, node_id: str, *, use_cache: bool | None, is_intermediate: bool | None
    ) -> None:
        """Change a node's cache use or whether its images are intermediate."""
        node = self.definition.nodes.get(node_id)
        if node is None or not node.is_invocation:
            raise ValidationError(
                f"workflow {self.name!r} has no invocation node {node_id!r}",
                input=node_id,
                rule="known node",
            )
        options = self.values.node_options.setdefault(node_id, {})
        for name, flag in (("use_cache", use_cache), ("is_intermediate", is_intermediate)):
            if flag is None:
                continue
            if not isinstance(flag, bool):
                raise ValidationError(
                    f"{name} must be True or False, got {flag!r}", input=name, rule="boolean"
                )
            options[name] = flag

    def model_fields(self) -> list[ModelIdentifierField]:
        """Every model input of the workflow (form or not) with its current value."""
        found = []
        for node in self.definition.invocation_nodes():
            if not node.is_executable:
                continue
            for name, spec in node.inputs.items():
                if self.schemas is None:
                    looks_like_model = isinstance(spec.value, dict) and {
                        "key", "base", "type"
                    } <= builtins.set(spec.value)
                    known = isinstance(
                        self.values.fields.get((node.id, name)), ModelIdentifierField
                    )
                    if not looks_like_model and not known:
                        continue
                made = self.field_at(node.id, name)
                if isinstance(made, ModelIdentifierField):
                    found.append(made)
        return found

    def local_images(self, uploaded: Mapping[LocalImage, str]) -> list[
        tuple[IvkField[Any], LocalImage]
    ]:
        """Local image values (paths, bytes, PIL images) not in ``uploaded``."""
        pending = []
        for held in self.values.fields.values():
            for image in held_local_images(held):
                if image not in uploaded:
                    pending.append((held, image))
        return pending


IMAGE_HOLDERS = (ImageField, CollectionField)
"""The fields whose values can hold local images (a test cheaper than the walk)."""


def held_local_images(held: IvkField[Any]) -> list[LocalImage]:
    """The local images a field's value holds (image fields and collections of images)."""
    found: list[LocalImage] = []
    if not isinstance(held, IMAGE_HOLDERS):
        return found

    def walk(item: Any) -> None:
        if isinstance(item, LocalImage):
            found.append(item)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)

    walk(held.value)
    return found


def _apply_form_settings(made: IvkField[Any], settings: Mapping[str, Any] | None) -> None:
    """Narrow a field by its form element's settings (dropdown options, slider min/max)."""
    if not settings:
        return
    if isinstance(made, StringField) and settings.get("component") == "dropdown":
        options = settings.get("options")
        if isinstance(options, list):
            values = [o.get("value") for o in options if isinstance(o, Mapping)]
            made.options = [v for v in values if isinstance(v, str)]
    if isinstance(made, (IntegerField, FloatField, NumberField)):
        low, high = settings.get("min"), settings.get("max")
        if isinstance(low, (int, float)) and not isinstance(low, bool):
            made.ge = low if made.ge is None else max(made.ge, low)
        if isinstance(high, (int, float)) and not isinstance(high, bool):
            made.le = high if made.le is None else min(made.le, high)


__all__ = [
    "IMAGE_HOLDERS",
    "InputKey",
    "IvkWorkflowInput",
    "WorkflowForm",
    "WorkflowValues",
    "held_local_images",
    "knows_input",
    "new_field",
]
