"""One paginator for every list the server pages: await it for a page, iterate it for all.

.. code-block:: python

    page = await client.images.list(board=b)          # the first page: Page[ImageDTO]
    async for image in client.images.list(board=b):   # every image, page after page
        ...
    everything = await client.images.list(board=b).collect()

A :class:`Paginator` is lazy: nothing is requested until it is awaited or iterated, and each
iteration starts from the first page again. It asks the server for ``page_size`` items at a
time through one ``fetch(offset, limit)`` coroutine, so offset pages, cursor-less id lists and
"all at once" routes fit behind the same face.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar, overload

from . import errors

T = TypeVar("T")

MAX_PAGE_SIZE = 1000
"""The largest page InvokeAI serves (its ``MAX_PAGE_SIZE``, and the bulk-by-ids cap)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: its ``items``, where it starts, and the total when known.

    A page is a sequence: ``len(page)``, ``page[0]`` and ``for item in page`` work.
    """

    items: list[T]
    offset: int = 0
    limit: int = 0
    total: int | None = None
    has_more: bool = False

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self.items[index]

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None on the last page."""
        return self.offset + len(self.items) if self.has_more else None


Fetch = Callable[[int, int], Awaitable[Page[T]]]


@dataclass
class Paginator(Generic[T]):
    """Awaitable (the first page) and async-iterable (every item once, in server order).

    ``key`` gives each item's identity: an item already yielded is skipped, so an item that
    shifts onto the next page while you iterate (a new image arrives at the top of a newest-
    first list) is not yielded twice. ``where`` keeps only matching items; ``until`` ends the
    iteration at the first item that matches it (a sorted listing needs no further pages).
    """

    fetch: Fetch[T]
    page_size: int = 100
    key: Callable[[T], Hashable] | None = None
    where: Callable[[T], bool] | None = None
    until: Callable[[T], bool] | None = None
    _first: Page[T] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_page_size(self.page_size)

    def __await__(self) -> Generator[object, None, Page[T]]:
        return self.first_page().__await__()

    async def first_page(self) -> Page[T]:
        """The first page (filtered by ``where``/``until``)."""
        page = await self.fetch(0, self.page_size)
        items, stopped = self._filter(page.items)
        return Page(
            items,
            offset=page.offset,
            limit=page.limit,
            total=page.total if self.where is None and self.until is None else None,
            has_more=page.has_more and not stopped,
        )

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Every page as the server returned it (unfiltered), first to last."""
        offset = 0
        while True:
            page = await self.fetch(offset, self.page_size)
            yield page
            if not page.has_more or not page.items:
                return
            offset = page.offset + len(page.items)

    async def __aiter__(self) -> AsyncIterator[T]:
        seen: set[Hashable] = set()
        async for page in self.pages():
            items, stopped = self._filter(page.items)
            for item in items:
                if self.key is not None:
                    ident = self.key(item)
                    if ident in seen:
                        continue
                    seen.add(ident)
                yield item
            if stopped:
                return

    async def collect(self, limit: int | None = None) -> list[T]:
        """All items (or the first ``limit``) as a list."""
        out: list[T] = []
        if limit is not None and limit <= 0:
            return out
        async for item in self:
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out

    def _filter(self, items: list[T]) -> tuple[list[T], bool]:
        kept: list[T] = []
        for item in items:
            if self.until is not None and self.until(item):
                return kept, True
            if self.where is None or self.where(item):
                kept.append(item)
        return kept, False


def check_page_size(page_size: int) -> None:
    """Refuse a page size the server would not serve, before any request."""
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise errors.ValidationError(
            f"page_size must be an integer, got {page_size!r}", input="page_size", rule="integer"
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise errors.ValidationError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}",
            input="page_size",
            rule=f"1..{MAX_PAGE_SIZE}",
        )


def offset_page(
    items: list[T], *, offset: int, limit: int, total: int | None
) -> Page[T]:
    """A :class:`Page` of an offset-paginated answer (``{offset, limit, total, items}``)."""
    has_more = offset + len(items) < total if total is not None else len(items) >= limit > 0
    return Page(items, offset=offset, limit=limit, total=total, has_more=has_more and bool(items))


def list_page(everything: list[T], offset: int, limit: int) -> Page[T]:
    """A page cut from a list the server returned whole (or a snapshot of ids)."""
    chunk = everything[offset : offset + limit]
    return offset_page(chunk, offset=offset, limit=limit, total=len(everything))
