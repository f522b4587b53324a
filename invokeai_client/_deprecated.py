"""Old module paths that keep working: each is an alias of the module that replaced it.

An alias module re-exports its new home's names (the same objects) and calls
:func:`alias_of` once: importing it warns with a :class:`DeprecationWarning` naming the new
module, and every other name is read from there. Aliases are left out of the API reference.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

MOVED_TO = "__moved_to__"
"""The global an alias module holds: the dotted name of the module that replaced it."""


def alias_of(new: ModuleType, namespace: dict[str, Any], *, note: str = "") -> None:
    """Make the module whose globals are ``namespace`` a deprecated alias of ``new``: warn
    (from the importer's line) and read the names it does not hold from ``new``."""
    old = namespace["__name__"]
    namespace[MOVED_TO] = new.__name__

    def __getattr__(name: str) -> Any:
        try:
            return getattr(new, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None

    namespace["__getattr__"] = __getattr__
    warnings.warn(
        f"{old} is deprecated: it moved to {new.__name__}{note}; import from there "
        "(the old path will be removed in a future version)",
        DeprecationWarning,
        stacklevel=3,
    )


def is_alias(module: ModuleType) -> bool:
    """Whether ``module`` is a deprecated alias (see the module docstring)."""
    return MOVED_TO in vars(module)
