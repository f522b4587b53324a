"""Deprecated alias of :mod:`invokeai_client.types.model_configs`."""

from .._deprecated import alias_of
from ..types import model_configs as _new
from ..types.model_configs import *  # noqa: F403 (the same objects, under the old path)

__all__ = list(_new.__all__)
alias_of(_new, globals())
