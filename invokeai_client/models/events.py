"""Deprecated alias of :mod:`invokeai_client.types.wire_events`."""

from .._deprecated import alias_of
from ..types import wire_events as _new
from ..types.wire_events import *  # noqa: F403 (the same objects, under the old path)

__all__ = list(_new.__all__)
alias_of(_new, globals())
