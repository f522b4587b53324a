"""What every repository shares: the client's context, and errors that name the resource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import errors

if TYPE_CHECKING:
    from .._context import ClientContext
    from .._http import HttpTransport

BULK_CHUNK = 1000
"""Names or ids sent in one bulk request at most; longer lists go in several requests."""


class Repository:
    """A group of related server operations of one client, given the client's shared
    :class:`~invokeai_client._context.ClientContext`."""

    def __init__(self, context: ClientContext) -> None:
        self._context = context
        self._http: HttpTransport = context.http

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._context.base_url!r}>"

    async def _require(self, feature: str) -> None:
        """:class:`~errors.EndpointNotAvailableError` naming the server's version if that
        version lacks ``feature`` (a key of ``invokeai_client._compat.FEATURES``)."""
        (await self._context.features()).require(feature)

    async def _post_chunks(
        self, path: str, key: str, values: Sequence[Any], **body: Any
    ) -> AsyncIterator[Any]:
        """POST ``values`` as ``{key: [...], **body}`` in chunks of :data:`BULK_CHUNK` and
        yield each answer (retried: these bulk calls are safe to repeat)."""
        for start in range(0, len(values), BULK_CHUNK):
            chunk = values[start : start + BULK_CHUNK]
            yield await self._http.request("POST", path, json={**body, key: chunk}, retry=True)


def check_text(name: str, value: object, *, in_path: bool = False) -> str:
    """``value`` if it is a non-empty string (that can stand in a URL path, with ``in_path``),
    else a :class:`~errors.ValidationError` naming ``name``."""
    if not isinstance(value, str) or not value.strip():
        raise errors.ValidationError(
            f"{name} must be a non-empty string, got {value!r}", input=name, rule="non-empty text"
        )
    if in_path and (any(c in value for c in "/\\?#%") or value in (".", "..")):
        raise errors.ValidationError(
            f"{name} {value!r} cannot be used in a URL path", input=name, rule="plain identifier"
        )
    return value


@contextmanager
def naming(
    resource: str,
    ident: object,
    *,
    action: str = "use",
    not_found: type[errors.NotFoundError] = errors.NotFoundError,
) -> Iterator[None]:
    """Re-raise 404/403 answers of the calls inside as errors that name the resource.

    InvokeAI often answers a missing image with a bare ``{"detail": "Not Found"}``; inside
    ``with naming("image", name):`` that becomes ``NotFoundError("image 'x.png' not found")``.
    A 403 becomes ``PermissionDeniedError("not allowed to <action> image 'x.png': ...")``.
    ``not_found`` picks the class raised for 404 (e.g. :class:`~errors.BoardNotFoundError`).
    The original status, detail, method and path are kept on the new error.
    """
    try:
        yield
    except errors.NotFoundError as exc:
        detail = errors.describe_detail(exc.detail)
        tail = "" if detail in ("Not Found", "no detail given") else f" ({detail})"
        raise exc.reworded(f"{resource} {ident!r} not found{tail}", kind=not_found) from None
    except errors.PermissionDeniedError as exc:
        raise exc.reworded(
            f"not allowed to {action} {resource} {ident!r}: {errors.describe_detail(exc.detail)}",
            kind=errors.PermissionDeniedError,
        ) from None
