"""Collection fields: lists whose items are all of one field type."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ..errors import ValidationError
from ._base import FieldRuleError, ImageResolver, IvkField
from .primitives import AnyField


class CollectionField(IvkField[list[Any]]):
    """A list of values of one type (``item``), with optional length limits. Each item is
    checked like a single value of that type; the error names the item's position."""

    kind = "collection"
    item: Any = Field(default_factory=AnyField)
    """The field every item is checked with."""
    min_items: int | None = None
    max_items: int | None = None

    @field_validator("item")
    @classmethod
    def _item_is_a_field(cls, value: Any) -> Any:
        if not isinstance(value, IvkField):
            raise ValueError("item must be an IvkField")
        return value

    def _coerce(self, value: Any) -> list[Any]:
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            raise FieldRuleError(
                "list", f"expected a list of {self.item.describe()}, got {type(value).__name__}"
            )
        items = list(value)
        if self.min_items is not None and len(items) < self.min_items:
            raise FieldRuleError(
                f"at least {self.min_items} items",
                f"{len(items)} items is fewer than the minimum {self.min_items}",
            )
        if self.max_items is not None and len(items) > self.max_items:
            raise FieldRuleError(
                f"at most {self.max_items} items",
                f"{len(items)} items is more than the maximum {self.max_items}",
            )
        checked = []
        for position, item in enumerate(items):
            try:
                checked.append(self.item.check(item))
            except ValidationError as exc:
                detail = str(exc).split(": ", 1)[-1]
                raise FieldRuleError(exc.rule or "item", f"item {position}: {detail}") from None
        return checked

    def _to_api(self, value: Any, images: ImageResolver | None) -> Any:
        if not isinstance(value, list):
            return value  # a file's value kept as it is (validation reports it as a problem)
        return [self.item.api_value(item, images) for item in value]

    def describe(self) -> str:
        text = f"list of {self.item.describe()}"
        rules = []
        if self.min_items is not None:
            rules.append(f"at least {self.min_items}")
        if self.max_items is not None:
            rules.append(f"at most {self.max_items}")
        return text + (f" ({', '.join(rules)} items)" if rules else "")
