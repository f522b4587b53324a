"""Command-line text to typed input values: ``--set "Label=value"``, ``--sweep "Label=a,b,c"``.

Each input is found by its label (or index, or ``node_id.field_name``) and its text is read
according to the input's field type, then checked by the field itself, so a bad value is
refused before anything is sent, in a message that quotes the option it came from.

Sweep values are comma-separated (``Seed=1,2,3``), a JSON list when a value holds a comma
(``Prompt=["a cat, sitting", "a dog"]``), or for numbers an inclusive range
``start..stop`` / ``start..stop:step`` (``Seed=1..8``, ``Radius=0..2:0.5``).
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any

from .._image_bytes import sniff_image
from ..errors import ValidationError
from ..fields import (
    BooleanField,
    CollectionField,
    EnumField,
    FloatField,
    IntegerField,
    IvkField,
    NumberField,
    StringField,
)
from ..fields.resources import LocalImage
from ..workflows import IvkWorkflowInput, WorkflowHandle
from ._console import CliError

MAX_RANGE = 100_000
"""The most values one range may expand to (a typo such as ``1..10000000`` stops here)."""

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def split_assignment(text: str, option: str) -> tuple[str, str]:
    """``"Label=value"`` -> ``("Label", "value")`` (the first ``=`` splits)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CliError(f"{option} {text!r}: expected 'Input Label=value'")
    return key.strip(), value


def find_input(handle: WorkflowHandle, key: str, option: str) -> IvkWorkflowInput:
    """The form input named by ``key`` (label, index or ``node_id.field_name``)."""
    lookup: int | str = int(key) if key.isdigit() else key
    try:
        return handle.input(lookup)
    except ValidationError as exc:
        labels = [i.label for i in handle.inputs]
        if exc.rule == "known input":
            close = difflib.get_close_matches(key, labels, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            shown = ", ".join(repr(label) for label in labels) or "none"
            raise CliError(
                f"{option}: workflow {handle.name!r} has no input {key!r}{hint} "
                f"(its inputs: {shown})"
            ) from None
        raise CliError(f"{option}: {one_line(str(exc))}") from None


def parse_value(field: IvkField[Any], text: str, option: str) -> Any:
    """One value for ``field`` from ``text``, checked by the field (a local image file also
    checked to be there and to be an image, before any server is asked)."""
    value = _convert(field, text.strip() if not isinstance(field, StringField) else text, option)
    return _local_file_checked(_checked(field, value, option), option)


def parse_sweep(field: IvkField[Any], text: str, option: str) -> list[Any]:
    """The list of values ``text`` gives for ``field``, each checked by the field."""
    stripped = text.strip()
    raw: list[Any]
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CliError(f"{option}: the JSON list is malformed ({exc.msg})") from None
        if not isinstance(loaded, list):
            raise CliError(f"{option}: expected a JSON list of values")
        raw = loaded
    elif ".." in stripped and isinstance(field, (IntegerField, FloatField, NumberField)):
        raw = _expand_range(field, stripped, option)
    else:
        raw = [_convert(field, part.strip(), option) for part in stripped.split(",")]
    if not raw:
        raise CliError(f"{option}: no values to sweep")
    return [_local_file_checked(_checked(field, value, option), option) for value in raw]


def one_line(message: str) -> str:
    """A multi-line library message folded onto one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    text = lines[0]
    for line in lines[1:]:
        line = line.removeprefix("- ").strip()
        text += (" " if text.endswith(":") else "; ") + line
    return text


# -- conversion ----------------------------------------------------------------------------


def _checked(field: IvkField[Any], value: Any, option: str) -> Any:
    try:
        return field.check(value)
    except ValidationError as exc:
        raise CliError(f"{option}: {one_line(str(exc))}") from None


def _local_file_checked(value: Any, option: str) -> Any:
    """``value``; a local image file must exist and start like an image (the upload would
    refuse it only after connecting)."""
    if not isinstance(value, LocalImage) or not isinstance(value.source, Path):
        return value
    path = value.source.expanduser()
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise CliError(f"{option}: image file {str(path)!r}: {exc.strerror or exc}") from None
    if sniff_image(head) is None:
        raise CliError(f"{option}: {str(path)!r} is not an image (PNG, JPEG, WebP, GIF, BMP, "
                       "TIFF)")
    return value


def _convert(field: IvkField[Any], text: str, option: str) -> Any:
    where = f"{option}: input {field.display_name()}"
    if isinstance(field, IntegerField):
        try:
            return int(text)
        except ValueError:
            number = _float_or_none(text)
            if number is not None and number.is_integer():
                return int(number)
            raise CliError(f"{where}: {text!r} is not an integer") from None
    if isinstance(field, (FloatField, NumberField)):
        if isinstance(field, NumberField):
            try:
                return int(text)
            except ValueError:
                pass
        number = _float_or_none(text)
        if number is None:
            raise CliError(f"{where}: {text!r} is not a number")
        return number
    if isinstance(field, BooleanField):
        folded = text.casefold()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        raise CliError(f"{where}: {text!r} is not true/false (or yes/no, on/off, 1/0)")
    if isinstance(field, EnumField):
        for option_value in field.options:
            if str(option_value) == text:
                return option_value
        folded = text.casefold()
        for option_value in field.options:
            if str(option_value).casefold() == folded:
                return option_value
        return text  # the field's check names the options
    if isinstance(field, StringField):
        return text
    if isinstance(field, CollectionField) or text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{where}: expected JSON ({exc.msg})") from None
    return text  # colors, images, boards, enums by name ...: the field reads strings


def _float_or_none(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _expand_range(field: IvkField[Any], text: str, option: str) -> list[Any]:
    span, _, step_text = text.partition(":")
    start_text, _, stop_text = span.partition("..")
    integral = isinstance(field, IntegerField) or (
        isinstance(field, NumberField) and "." not in text.replace("..", "")
    )
    start = _range_number(field, start_text, option)
    stop = _range_number(field, stop_text, option)
    step = _range_number(field, step_text, option) if step_text else 1
    if step <= 0:
        raise CliError(f"{option}: the range step must be positive, got {step_text!r}")
    if stop < start:
        raise CliError(f"{option}: the range {text!r} is empty (stop < start)")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RANGE:
        raise CliError(f"{option}: the range {text!r} has {count} values (at most {MAX_RANGE})")
    if integral and all(float(n).is_integer() for n in (start, stop, step)):
        return [int(start) + i * int(step) for i in range(count)]
    return [round(start + i * step, 10) for i in range(count)]


def _range_number(field: IvkField[Any], text: str, option: str) -> float:
    number = _float_or_none(text.strip())
    if number is None:
        raise CliError(
            f"{option}: input {field.display_name()}: {text.strip()!r} is not a number "
            "(ranges are start..stop or start..stop:step)"
        )
    return number
