"""The generic proxy layer: one class turns any async object of the SDK into a blocking one.

A :class:`Proxy` holds an async object and the client's :class:`~._bridge.Bridge`. Calling a
member runs it as the async API would, then converts what comes back:

- a coroutine method is awaited in the portal and its result returned;
- an async iterator (paginated lists, ``run.events()``, ``batch.as_completed()``) becomes a
  plain iterator that pulls through the portal;
- an async context manager becomes a plain one (entered and exited in the portal);
- other awaitables get ``.wait()``;
- plain methods and attributes pass through unchanged (for objects the event loop updates,
  such as runs, they are read in the loop thread so they never see a half-made change);
- SDK objects with async members come back as their proxies (a ``WorkflowRun`` as a
  :class:`~invokeai_client.sync.SyncWorkflowRun`), inside lists, tuples and dicts too;
- proxies passed as arguments are unwrapped again.

The typed proxy classes (:mod:`._objects`) only declare their members, one line each, with
:func:`blocking` & co. and :class:`Attr`: static types come from the async signatures (ParamSpec),
behaviour from here. Anything not declared still works at runtime (``__getattr__``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, TypeVar, overload

from typing_extensions import ParamSpec, Self, Unpack

from .._paging import Page, Paginator
from ..runs.events import NodeCompleted
from ._bridge import Bridge, ExcInfo

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")
R = TypeVar("R")

_REGISTRY: dict[type, type[Proxy[Any]]] = {}
_LOOKUP: dict[type, type[Proxy[Any]] | None] = {}
_SCALARS = (str, bytes, int, float, bool, type(None))


def proxies(async_type: type) -> Callable[[type[Proxy[Any]]], type[Proxy[Any]]]:
    """Class decorator: the decorated proxy stands for ``async_type`` (and its subclasses)."""

    def register(proxy: type[Proxy[Any]]) -> type[Proxy[Any]]:
        _REGISTRY[async_type] = proxy
        _LOOKUP.clear()
        return proxy

    return register


def _proxy_for(kind: type) -> type[Proxy[Any]] | None:
    try:
        return _LOOKUP[kind]
    except KeyError:
        found = next((_REGISTRY[base] for base in kind.__mro__ if base in _REGISTRY), None)
        _LOOKUP[kind] = found
        return found


def wrap(value: Any, bridge: Bridge) -> Any:
    """``value`` as a sync user sees it (see the module doc)."""
    if isinstance(value, _SCALARS):
        return value
    kind = type(value)
    proxy = _proxy_for(kind)
    if proxy is not None:
        return proxy(value, bridge)
    owner = bridge.owner
    if owner is not None and value is owner.aio:
        return owner
    if kind is list or kind is tuple:
        items = [wrap(item, bridge) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return items if kind is list else tuple(items)
        return value
    if kind is dict:
        mapped = {key: wrap(item, bridge) for key, item in value.items()}
        if any(mapped[key] is not item for key, item in value.items()):
            return mapped
        return value
    if isinstance(value, NodeCompleted) and value.output is not None:
        output = wrap(value.output, bridge)
        return value if output is value.output else dataclasses.replace(value, output=output)
    if hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__"):
        return SyncContext(value, bridge)
    if hasattr(kind, "__aiter__"):
        return bridge.iterate(value, lambda item: wrap(item, bridge))
    if hasattr(kind, "__await__"):
        return SyncAwaitable(value, bridge)
    return value


def unwrap(value: Any) -> Any:
    """``value`` as the async API expects it: proxies (and the sync Client) replaced by
    the objects they stand for, inside lists, tuples, sets and dicts too."""
    if isinstance(value, Proxy):
        return value._target
    kind = type(value)
    if kind in (list, tuple, set, frozenset):
        items = [unwrap(item) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return kind(items)
        return value
    if kind is dict:
        mapped = {key: unwrap(item) for key, item in value.items()}
        if any(mapped[key] is not item for key, item in value.items()):
            return mapped
    return value


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class Proxy(Generic[T]):
    """A blocking stand-in for the async object ``aio``.

    Two proxies are equal when they stand for equal objects. ``proxy.aio`` is the async object
    itself (e.g. to pass it to code written for the async API, inside ``client.call``).
    """

    __slots__ = ("_bridge", "_target")

    _live: ClassVar[bool] = False
    """True for objects the event loop updates (runs, repositories): their plain members
    are read in the loop thread while the client is open."""

    _target: T
    _bridge: Bridge

    def __init__(self, target: T, bridge: Bridge) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_bridge", bridge)

    @property
    def aio(self) -> T:
        """The async object this proxy stands for."""
        return self._target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Proxy):
            other = other._target
        return bool(self._target == other)

    def __hash__(self) -> int:
        return hash(self._target)

    # -- the mechanism ---------------------------------------------------------------------

    def _get(self, name: str) -> Any:
        if self._live:
            value = self._bridge.call_plain(getattr, self._target, name)
        else:
            value = getattr(self._target, name)
        return wrap(value, self._bridge)

    def _set(self, name: str, value: Any) -> None:
        setattr(self._target, name, unwrap(value))

    def _invoke(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        member = getattr(self._target, name)
        args = tuple(unwrap(arg) for arg in args)
        kwargs = {key: unwrap(value) for key, value in kwargs.items()}
        bridge = self._bridge
        if inspect.iscoroutinefunction(member):
            result = bridge.call(member, *args, **kwargs)
        elif inspect.isasyncgenfunction(member):
            return bridge.iterate(member(*args, **kwargs), lambda item: wrap(item, bridge))
        elif self._live:
            result = bridge.call_plain(member, *args, **kwargs)
        else:
            result = member(*args, **kwargs)
        if inspect.iscoroutine(result):  # a plain method that hands out a coroutine
            result = bridge.call(_awaited, result)
        if result is self._target:
            return self
        return wrap(result, bridge)

    def _bound(self, target_name: str, name: str, doc: str | None) -> Callable[..., Any]:
        """A callable running member ``target_name`` of the async object (see :meth:`_invoke`),
        shown as ``name`` with ``doc``."""

        def method(*args: Any, **kwargs: Any) -> Any:
            return self._invoke(target_name, args, kwargs)

        method.__name__ = name
        method.__doc__ = doc
        return method

    def _member(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.ismethod(value) or inspect.isbuiltin(value):
            return self._bound(name, name, value.__doc__)
        return self._get(name)

    # Members that are not declared (a method added to the async API later) still work,
    # untyped; declared members win (normal attribute lookup comes first).
    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name in ("_target", "_bridge"):
                raise AttributeError(name)
            return self._member(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            self._set(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in dir(self._target) if n[0] != "_"})


class ContextProxy(Proxy[T]):
    """A proxy whose async object is an async context manager: ``with proxy: ...``."""

    __slots__ = ("_entered",)

    _entered: list[SyncContext[Any]]

    def __init__(self, target: T, bridge: Bridge) -> None:
        super().__init__(target, bridge)
        object.__setattr__(self, "_entered", [])

    def __enter__(self) -> Self:
        self._entered.append(SyncContext(self._target, self._bridge))
        self._entered[-1].__enter__()
        return self

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> bool | None:
        return self._entered.pop().__exit__(*exc_info)


class SyncContext(AbstractContextManager[T_co]):
    """An async context manager used with ``with``: entered and exited in the portal (one
    task holds it open, as ``async with`` would)."""

    def __init__(self, manager: Any, bridge: Bridge) -> None:
        self._manager = manager
        self._bridge = bridge
        self._blocking: AbstractContextManager[Any] | None = None

    def __repr__(self) -> str:
        return f"SyncContext({self._manager!r})"

    def __enter__(self) -> T_co:
        from ._bridge import check_no_running_loop

        check_no_running_loop("enter a context")
        portal = self._bridge.require_portal("enter a context")
        self._blocking = portal.wrap_async_context_manager(self._manager)
        value = self._blocking.__enter__()
        return wrap(value, self._bridge)  # type: ignore[no-any-return]

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> bool | None:
        blocking, self._blocking = self._blocking, None
        assert blocking is not None, "__exit__ without __enter__"
        return blocking.__exit__(*exc_info)


class SyncAwaitable(Proxy[Any]):
    """An awaitable SDK object without a dedicated proxy: ``.wait()`` is ``await obj``."""

    __slots__ = ()

    def wait(self) -> Any:
        """Block until the awaitable is done; its result."""
        return wrap(self._bridge.call(_awaited, self._target), self._bridge)


# -- typed declarations ------------------------------------------------------------------


class _Declared:
    """A member declared on a proxy class: the name it is declared under, and its doc."""

    def __init__(self, name: str, doc: str | None) -> None:
        self.name = name
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name


class Attr(_Declared, Generic[T]):
    """A read-only attribute of the async object, as its sync proxy shows it."""

    def __init__(self, doc: str | None = None) -> None:
        super().__init__("", doc)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: Proxy[Any], owner: type | None = None) -> T: ...

    def __get__(self, obj: Proxy[Any] | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._get(self.name)


class Settable(Attr[T]):
    """An attribute of the async object that may be assigned through the proxy too."""

    def __set__(self, obj: Proxy[Any], value: T) -> None:
        obj._set(self.name, value)


class Method(_Declared, Generic[P, R]):
    """A method of the async object, as its sync proxy calls it (see :func:`blocking`)."""

    def __init__(self, target_name: str, doc: str | None) -> None:
        super().__init__(target_name, doc)
        self.target_name = target_name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: Proxy[Any], owner: type | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: Proxy[Any] | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._bound(self.target_name, self.name, self.__doc__)


W = TypeVar("W")
S = TypeVar("S", bound="Proxy[Any]")


# Declaring members. Each helper returns the same runtime Method; they differ only in the
# static type they give the sync member (a ParamSpec keeps the async method's parameters).
# ``returns=`` names the proxy class the result comes back as (e.g. SyncWorkflowRun for a
# method returning a WorkflowRun). One helper per kind rather than one overloaded helper:
# overloads that overlap turn into ``Any`` whenever a parameter is typed ``Any``.


@overload
def blocking(fn: Callable[Concatenate[Any, P], Awaitable[R]]) -> Method[P, R]: ...
@overload
def blocking(
    fn: Callable[Concatenate[Any, P], Awaitable[Any]], returns: Callable[..., W]
) -> Method[P, W]: ...
def blocking(fn: Callable[..., Any], returns: Any = None) -> Method[Any, Any]:
    """The sync twin of coroutine method ``fn``: blocks until it is done, returns its result
    (as ``returns`` proxy if given)."""
    return _method(fn)


@overload
def iterating(fn: Callable[Concatenate[Any, P], AsyncIterator[T]]) -> Method[P, Iterator[T]]: ...
@overload
def iterating(
    fn: Callable[Concatenate[Any, P], AsyncIterator[Any]], returns: Callable[..., W]
) -> Method[P, Iterator[W]]: ...
def iterating(fn: Callable[..., Any], returns: Any = None) -> Method[Any, Any]:
    """The sync twin of ``fn``, which returns an async iterator: a plain iterator."""
    return _method(fn)


def paging(
    fn: Callable[Concatenate[Any, P], Paginator[T]],
) -> Method[P, SyncPaginator[T]]:
    """The sync twin of a listing method returning a Paginator: a :class:`SyncPaginator`."""
    return _method(fn)


class SelfMethod(Method[P, Any]):
    """A method that returns its object (or a copy of it): typed as returning the proxy."""

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: S, owner: type | None = None) -> Callable[P, S]: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return super().__get__(obj, owner)


def chaining(fn: Callable[Concatenate[Any, P], Any]) -> SelfMethod[P]:
    """A plain method returning its object (``handle.set(...)``), or one like it
    (``handle.copy()``): the sync twin returns the proxy."""
    return SelfMethod(fn.__name__, inspect.getdoc(fn))


@overload
def plain(fn: Callable[Concatenate[Any, P], R]) -> Method[P, R]: ...
@overload
def plain(fn: Callable[Concatenate[Any, P], Any], returns: Callable[..., W]) -> Method[P, W]: ...
def plain(fn: Callable[..., Any], returns: Any = None) -> Method[Any, Any]:
    """A plain (non-async) method of the async object, passed through (its result as
    ``returns`` proxy if given)."""
    return _method(fn)


def _method(fn: Callable[..., Any]) -> Method[Any, Any]:
    return Method(fn.__name__, inspect.getdoc(fn))


def iterate_all(bridge: Bridge, source: Any) -> Iterator[Any]:
    """Every item of the async iterable ``source``, converted for sync users."""
    return bridge.iterate(source, lambda item: wrap(item, bridge))


# -- paging ----------------------------------------------------------------------------


@proxies(Paginator)
class SyncPaginator(Proxy["Paginator[T]"], Generic[T]):
    """A paginated listing: iterate it for every item (pages are fetched as you go), or
    take :meth:`first_page` / :meth:`pages` / :meth:`collect`."""

    __slots__ = ()

    page_size: Attr[int] = Attr()

    def __iter__(self) -> Iterator[T]:
        return iterate_all(self._bridge, self._target)

    def first_page(self) -> Page[T]:
        """The first page (what ``await paginator`` gives in the async API)."""
        return self._bridge.call(self._target.first_page)

    def pages(self) -> Iterator[Page[T]]:
        """Every page as the server returned it, first to last."""
        return iterate_all(self._bridge, self._target.pages())

    def collect(self, limit: int | None = None) -> list[T]:
        """All items (or the first ``limit``) as a list."""
        return self._bridge.call(self._target.collect, limit)
