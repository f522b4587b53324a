"""Deprecated alias of :mod:`invokeai_client.types` (the server's DTOs and events; "models"
now means AI models only). Its submodules are aliases too (``models.events`` ->
``types.wire_events``)."""

from .. import types as _new
from .._deprecated import alias_of
from ..types import *  # noqa: F403 (the same objects, under the old path)

__all__ = list(_new.__all__)
alias_of(_new, globals())
