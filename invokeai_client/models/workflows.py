"""Deprecated alias of :mod:`invokeai_client.types.workflows`."""

from .._deprecated import alias_of
from ..types import workflows as _new
from ..types.workflows import *  # noqa: F403 (the same objects, under the old path)

alias_of(_new, globals())
