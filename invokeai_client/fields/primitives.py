"""Primitive fields: strings, integers, floats, booleans, enums and untyped values."""

from __future__ import annotations

import enum
import math
from typing import Any

from pydantic import Field

from ._base import FieldRuleError, IvkField, finite_number, json_compatible


class _NumericRules(IvkField[Any]):
    """Range and step rules shared by integer and float fields (JSON Schema names)."""

    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    multiple_of: float | None = None

    def _check_range(self, number: float) -> None:
        if self.ge is not None and number < self.ge:
            raise FieldRuleError(
                f">= {_fmt(self.ge)}", f"{number} is below the minimum {_fmt(self.ge)}"
            )
        if self.le is not None and number > self.le:
            raise FieldRuleError(
                f"<= {_fmt(self.le)}", f"{number} is above the maximum {_fmt(self.le)}"
            )
        if self.gt is not None and number <= self.gt:
            raise FieldRuleError(
                f"> {_fmt(self.gt)}", f"{number} must be greater than {_fmt(self.gt)}"
            )
        if self.lt is not None and number >= self.lt:
            raise FieldRuleError(
                f"< {_fmt(self.lt)}", f"{number} must be less than {_fmt(self.lt)}"
            )
        if self.multiple_of:
            ratio = number / self.multiple_of
            if not math.isclose(ratio, round(ratio), rel_tol=1e-9, abs_tol=1e-9):
                raise FieldRuleError(
                    f"multiple of {_fmt(self.multiple_of)}",
                    f"{number} is not a multiple of {_fmt(self.multiple_of)}",
                )

    def _rules(self) -> list[str]:
        rules = []
        for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)):
            if bound is not None:
                rules.append(f"{op} {_fmt(bound)}")
        if self.multiple_of:
            rules.append(f"a multiple of {_fmt(self.multiple_of)}")
        return rules


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


class IntegerField(_NumericRules):
    """An integer (``int``); integral floats such as ``3.0`` are taken as ``3``."""

    kind = "integer"

    def _coerce(self, value: Any) -> int:
        number = finite_number(value, kind="an integer")
        if isinstance(number, float):
            if not number.is_integer():
                raise FieldRuleError("integer", f"expected an integer, got {number}")
            number = int(number)
        self._check_range(number)
        return number


class FloatField(_NumericRules):
    """A float. Integers are accepted and kept as floats (``7`` becomes ``7.0``)."""

    kind = "float"

    def _coerce(self, value: Any) -> float:
        number = float(finite_number(value, kind="a number"))
        self._check_range(number)
        return number


class NumberField(_NumericRules):
    """A number whose exact type is unknown (inferred offline from an integral value, which a
    float field exported by the GUI also looks like): ints and floats are both accepted and
    kept as given."""

    kind = "number"

    def _coerce(self, value: Any) -> int | float:
        number = finite_number(value, kind="a number")
        self._check_range(number)
        return number


class StringField(IvkField[str]):
    """A string, with optional length limits and the form's dropdown options."""

    kind = "string"
    min_length: int | None = None
    max_length: int | None = None
    options: list[str] = Field(default_factory=list)
    """When the workflow's form shows a dropdown, the values it offers."""

    def _coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldRuleError(
                "type", f"expected a string, got {type(value).__name__} {value!r:.60}"
            )
        if self.min_length is not None and len(value) < self.min_length:
            raise FieldRuleError(
                f"min length {self.min_length}",
                f"{len(value)} characters is shorter than the minimum {self.min_length}",
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise FieldRuleError(
                f"max length {self.max_length}",
                f"{len(value)} characters is longer than the maximum {self.max_length}",
            )
        if self.options and value not in self.options:
            raise FieldRuleError(
                "one of the form's options",
                f"{value!r:.60} is not one of the options {self.options}",
            )
        return value

    def _rules(self) -> list[str]:
        rules = []
        if self.min_length is not None:
            rules.append(f"at least {self.min_length} characters")
        if self.max_length is not None:
            rules.append(f"at most {self.max_length} characters")
        if self.options:
            rules.append(f"one of {self.options}")
        return rules


class BooleanField(IvkField[bool]):
    """``True`` or ``False`` (no 0/1 or strings)."""

    kind = "boolean"

    def _coerce(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FieldRuleError(
                "type", f"expected True or False, got {type(value).__name__} {value!r:.60}"
            )
        return value


class EnumField(IvkField[Any]):
    """One of a fixed set of options (a scheduler, a resize mode ...). Python ``Enum`` members
    are accepted by their value."""

    kind = "enum"
    options: list[Any] = Field(default_factory=list)
    choice_labels: dict[str, str] = Field(default_factory=dict)

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            value = value.value
        if value in self.options and type(value) in {type(o) for o in self.options}:
            return value
        shown = ", ".join(repr(o) for o in self.options[:40])
        more = f" (+{len(self.options) - 40} more)" if len(self.options) > 40 else ""
        raise FieldRuleError("one of the options", f"{value!r:.60} is not one of {shown}{more}")

    def _rules(self) -> list[str]:
        return [f"one of {self.options[:10]}{'...' if len(self.options) > 10 else ''}"]


class AnyField(IvkField[Any]):
    """A value of any JSON type (the schema says nothing more, or the type is unknown)."""

    kind = "any"

    def _coerce(self, value: Any) -> Any:
        if not json_compatible(value):
            raise FieldRuleError(
                "JSON value", f"expected a JSON value, got {type(value).__name__} {value!r:.60}"
            )
        return value


class DictField(IvkField[dict[str, Any]]):
    """A JSON object (e.g. metadata)."""

    kind = "object"

    def _coerce(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not json_compatible(value):
            raise FieldRuleError(
                "type", f"expected a JSON object, got {type(value).__name__} {value!r:.60}"
            )
        return value
