"""The base of the field system: :class:`IvkField` holds one typed, validated input value.

A field knows its type and the rules the server applies to it (ranges, lengths, options,
required, default), taken from the server's OpenAPI invocation schema or, offline, inferred
from the workflow's values. Assigning a value checks it against those rules at once and raises
:class:`~invokeai_client.errors.ValidationError` naming the input and the rule it broke, so a
bad value never reaches the server.
"""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .._limits import json_limit_problem
from ..errors import ValidationError

T = TypeVar("T")

InputKind = Literal["any", "direct", "connection"]
Origin = Literal["schema", "inferred", "registered"]


class _Unset:
    """The value of a field nobody set: the node input has no ``value`` (omitted in graphs)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Unset:
        return self


UNSET: Any = _Unset()
"""Marker for "no value": the input is left out of the graph, like an empty GUI field."""


class FieldRuleError(Exception):
    """Raised by a field's ``_coerce`` hook: ``rule`` is the rule, the message says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


ImageResolver = Callable[[Any], Any]
"""Maps a local image value (see :class:`~invokeai_client.fields.LocalImage`) to its API form."""


class IvkField(BaseModel, Generic[T]):
    """One typed input of a workflow node, holding its current value.

    ``value`` is the Python value (``UNSET`` when the node input has none); setting it runs
    the field's checks. ``to_api()`` gives the JSON the server expects in a graph.
    Subclasses implement ``_coerce`` (convert or raise :class:`FieldRuleError`) and, where the
    wire form differs from the Python form, ``_to_api``.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    kind: ClassVar[str] = "any"
    """Short name of the field type (``"integer"``, ``"image"``, ...), used in messages."""

    name: str = ""
    """The field name on the node (``value``, ``width``, ...)."""
    node_id: str = ""
    node_type: str = ""
    label: str = ""
    """What the GUI shows for the input (the node input's label or the schema title)."""
    title: str = ""
    description: str = ""
    required: bool = False
    nullable: bool = False
    """Whether ``None`` is a valid value (the schema allows ``null``)."""
    default: Any = None
    input_kind: InputKind = "any"
    """``direct``: a literal only; ``connection``: an edge only; ``any``: either."""
    accepts_list: bool = False
    """The schema takes this type or a list of it (e.g. ``cfg_scale``, conditioning)."""
    ui: dict[str, Any] = Field(default_factory=dict)
    """The schema's ``ui_*`` hints (component, order, choice labels, model base/type ...)."""
    origin: Origin = "inferred"
    """Where the type came from: the server's ``schema``, ``inferred`` from values, or a
    ``registered`` custom class."""

    _value: Any = PrivateAttr(default=UNSET)

    # -- value -----------------------------------------------------------------------------

    @property
    def value(self) -> Any:
        """The current value (``UNSET`` when none); assigning validates it."""
        return self.__pydantic_private__["_value"]  # type: ignore[index]  # the fast way in

    @value.setter
    def value(self, value: Any) -> None:
        self.set(value)

    @property
    def is_set(self) -> bool:
        return self.value is not UNSET

    def set(self, value: Any) -> None:
        """Check ``value`` against this field's type and rules, then keep it."""
        self._value = self.check(value)

    def unset(self) -> None:
        """Forget the value: the input is left out of the graph (the server's default)."""
        self._value = UNSET

    def load(self, value: Any) -> None:
        """Keep ``value`` as it is, unchecked: for values read from a workflow file (files may
        hold values a newer or older server would reject; :meth:`problems` reports them
        instead of failing the load) or checked already. Your own values go through
        :meth:`set`."""
        self._value = value

    def check(self, value: Any) -> Any:
        """The checked (and normalised) form of ``value``, or :class:`ValidationError`."""
        if value is UNSET:
            return UNSET
        try:
            problem = json_limit_problem(value)
            if problem is not None:  # before anything recurses into it or prints it
                raise FieldRuleError("size limits", f"refusing {problem} ({self.describe()})")
            if value is None:
                if self.nullable:
                    return None
                raise FieldRuleError(
                    "not null",
                    f"None is not allowed ({self.describe()}); use unset() to leave the input "
                    "out and let the server use its default",
                )
            if self.accepts_list and isinstance(value, (list, tuple)):
                return [self._coerce(item) for item in value]
            return self._coerce(value)
        except FieldRuleError as exc:
            raise self._error(exc.rule, exc.message) from None

    def _coerce(self, value: Any) -> T:
        """Convert ``value`` to this field's Python type or raise :class:`FieldRuleError`."""
        return value  # type: ignore[no-any-return]

    def _error(self, rule: str, message: str) -> ValidationError:
        where = self.display_name()
        return ValidationError(f"input {where}: {message}", input=where, rule=rule)

    def display_name(self) -> str:
        """``'Label' (node_id.field)``: how messages name this input."""
        ref = f"{self.node_id}.{self.name}" if self.node_id else self.name
        if self.label and self.label != self.name:
            return f"{self.label!r} ({ref})"
        return repr(ref)

    # -- wire form -------------------------------------------------------------------------

    def to_api(self, images: ImageResolver | None = None) -> Any:
        """The current value as graph JSON (``UNSET`` if none)."""
        return self.api_value(self.value, images)

    def api_value(self, value: Any, images: ImageResolver | None = None) -> Any:
        """``value`` (already checked) as graph JSON."""
        if value is UNSET or value is None:
            return value
        if self.accepts_list and isinstance(value, list):
            return [self._to_api(item, images) for item in value]
        return self._to_api(value, images)

    def _to_api(self, value: Any, images: ImageResolver | None) -> Any:
        return value

    # -- description -----------------------------------------------------------------------

    def describe(self) -> str:
        """The type and its rules in words, e.g. ``integer >= 1 and <= 4096``."""
        text = self.kind
        rules = self._rules()
        if rules:
            text += " " + " and ".join(rules)
        if self.accepts_list:
            text += f" (or a list of {self.kind})"
        return text

    def _rules(self) -> list[str]:
        return []

    def problems(self) -> list[str]:
        """What is wrong with the current value (for values loaded from a file)."""
        value = self.value
        if value is UNSET:
            return []
        try:
            self.check(value)
        except ValidationError as exc:
            return [str(exc)]
        return []

    def __repr__(self) -> str:
        where = f"{self.node_id}.{self.name}" if self.node_id else self.name
        return f"{type(self).__name__}({where}={self._value!r})"

    def __str__(self) -> str:
        return repr(self)


def finite_number(value: Any, *, kind: str) -> float | int:
    """``value`` as an int or float (booleans refused), or :class:`FieldRuleError`.

    Other real numbers (numpy scalars, ``Fraction``, ``Decimal`` ...) are converted."""
    number: float | int
    if isinstance(value, bool):
        raise FieldRuleError("type", f"expected {kind}, got a boolean {value!r}")
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, (numbers.Real, decimal.Decimal)):
        number = float(value)
    else:
        raise FieldRuleError("type", f"expected {kind}, got {type(value).__name__} {value!r:.60}")
    if isinstance(number, float) and not math.isfinite(number):
        noun = kind.removeprefix("an ").removeprefix("a ")
        raise FieldRuleError("finite", f"expected a finite {noun}, got {number}")
    return number


def json_compatible(value: Any, *, depth: int = 0) -> bool:
    """Whether ``value`` is made only of JSON types (dict keys strings)."""
    if depth > 64:
        return False
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(json_compatible(item, depth=depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(
            isinstance(k, str) and json_compatible(v, depth=depth + 1) for k, v in value.items()
        )
    return False
