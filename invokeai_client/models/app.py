"""Deprecated alias of :mod:`invokeai_client.types.app`."""

from .._deprecated import alias_of
from ..types import app as _new
from ..types.app import *  # noqa: F403 (the same objects, under the old path)

alias_of(_new, globals())
