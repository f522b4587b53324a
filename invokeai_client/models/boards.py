"""Deprecated alias of :mod:`invokeai_client.types.boards`."""

from .._deprecated import alias_of
from ..types import boards as _new
from ..types.boards import *  # noqa: F403 (the same objects, under the old path)

__all__ = list(_new.__all__)
alias_of(_new, globals())
