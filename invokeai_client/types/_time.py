"""Lenient timestamps: the server's several date formats, read into aware datetimes.

InvokeAI writes queue, image, board and workflow times as ``"YYYY-MM-DD HH:MM:SS.mmm"``
(UTC from SQLite, no zone), user records as ISO ``"...T...[Z]"`` and socket events as Unix
seconds. :data:`Timestamp` accepts all of them; a value it cannot read becomes ``None`` rather
than failing the whole DTO (a date is never worth losing the record over).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BeforeValidator

log = logging.getLogger("invokeai_client")


def parse_timestamp(value: Any) -> datetime | None:
    """A server time as an aware ``datetime`` (naive times are UTC); ``None`` if unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants 3 or 6 fraction digits; pad or trim to 6.
    head, dot, rest = text.partition(".")
    if dot:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        log.debug("unreadable server timestamp %r", value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


Timestamp = Annotated[datetime | None, BeforeValidator(parse_timestamp)]
"""A server time (aware, UTC when the server gave no zone) or ``None``."""
