"""The double as an older InvokeAI: the routes and answers a given version does not have.

``InvokeAIDouble(version="5.15.0")`` keeps its 6.14 handlers but answers a route that
version lacks as that server does (a JSON ``404 {"detail": "Not Found"}``, or the web UI page
where the version serves one for unknown GETs), and trims what the version's answers lack
(no ``item_ids`` in the enqueue answer before 6.0). Which version has which route is
``invokeai_client._compat.FEATURES``, so the SDK's table and the double cannot disagree.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from aiohttp import web

from ..._compat import ServerFeatures

ROUTE_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("*", "/api/v1/auth/*", "multiuser"),
    ("GET", "/api/v1/queue/*/item_ids", "queue_item_ids"),
    ("POST", "/api/v1/queue/*/items_by_ids", "queue_item_ids"),
    ("POST", "/api/v1/queue/*/item_summaries_by_ids", "queue_item_summaries"),
    ("GET", "/api/v1/queue/*/list", "queue_cursor_list"),
    ("PUT", "/api/v1/queue/*/retry_items_by_id", "queue_retry"),
    ("PUT", "/api/v1/queue/*/cancel_all_except_current", "queue_cancel_all_except_current"),
    ("DELETE", "/api/v1/queue/*/i/*", "queue_delete_item"),
    ("DELETE", "/api/v1/queue/*/d/*", "queue_delete_destination"),
    ("PUT", "/api/v1/queue/*/delete_all_except_current", "queue_delete_all_except_current"),
    ("GET", "/api/v1/images/names", "image_names"),
    ("POST", "/api/v1/images/images_by_names", "image_names"),
    ("DELETE", "/api/v1/images/uncategorized", "images_delete_uncategorized"),
    ("GET", "/api/v2/models/get_by_hash", "models_by_hash"),
    ("GET", "/api/v2/models/missing", "models_missing"),
    ("GET", "/api/v1/workflows/tags", "workflow_tags"),
    ("PATCH", "/api/v1/workflows/i/*/is_public", "workflow_is_public"),
)
"""(method or ``*``, path glob, feature): the route exists where the feature does."""


def lacks_route(features: ServerFeatures, method: str, path: str) -> bool:
    """Whether a server of this version has no route for ``method path``."""
    for route_method, pattern, feature in ROUTE_FEATURES:
        if route_method in ("*", method) and fnmatch.fnmatchcase(path, pattern):
            return not features.supports(feature)
    return False


def missing_route(method: str) -> web.Response:
    """An old server's answer to a route it does not have."""
    status = 404 if method in ("GET", "HEAD") else 405
    detail = "Not Found" if status == 404 else "Method Not Allowed"
    return web.Response(
        body=json.dumps({"detail": detail}).encode(), status=status,
        content_type="application/json",
    )


def trim_answer(features: ServerFeatures, method: str, path: str, response: Any) -> None:
    """Remove from an answer what the version did not send (in place)."""
    if (
        method == "POST"
        and path.endswith("/enqueue_batch")
        and not features.supports("enqueue_item_ids")
        and isinstance(response, web.Response)
        and response.body
    ):
        body = json.loads(bytes(response.body))  # type: ignore[arg-type]
        body.pop("item_ids", None)
        response.body = json.dumps(body).encode()
