"""What each InvokeAI version can do: a pure table of features by version.

InvokeAI 6.14.2 is the reference; 5.x to 6.13 differ in routes, payloads and events. Every
version-dependent choice of the SDK reads this table (never probes routes: servers answer a
missing GET with the web UI page, or with a JSON 404 that looks like a missing resource).
The first and last versions of each row come from the server's own routers at each release
tag and were checked against real servers (see docs/compatibility.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import errors

Version = tuple[int, int, int]

REFERENCE: Version = (6, 14, 2)
"""The version the SDK is written against; an unreadable version is taken to be this one."""

OLDEST: Version = (5, 0, 0)
"""The oldest version the SDK supports (4.x used other event and field names)."""

NEWEST: Version = REFERENCE
"""The newest version tested; a later minor or major release opens with one warning."""

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(text: str | None) -> Version | None:
    """``"6.14.0rc2"`` -> ``(6, 14, 0)``; ``None`` when the text holds no version."""
    match = _VERSION.match(text or "")
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor or 0), int(patch or 0)


def format_version(version: Version) -> str:
    """``(6, 12, 0)`` -> ``"6.12.0"``."""
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class Feature:
    """One capability of the server: present from ``since`` up to (not including) ``until``."""

    name: str
    what: str
    since: Version = (0, 0, 0)
    until: Version | None = None

    def on(self, version: Version) -> bool:
        """Whether a server of ``version`` has this feature."""
        return version >= self.since and (self.until is None or version < self.until)


def _table(*features: Feature) -> Mapping[str, Feature]:
    return {feature.name: feature for feature in features}


FEATURES: Mapping[str, Feature] = _table(
    # -- accounts ---------------------------------------------------------------------------
    Feature("multiuser", "accounts and login (multi-user mode)", since=(6, 12, 0)),
    # -- queue ------------------------------------------------------------------------------
    Feature("queue_cursor_list", "queue listing by cursor (GET /queue/{q}/list)",
            until=(6, 7, 0)),
    Feature("queue_item_ids", "queue listing by item ids (item_ids + items_by_ids)",
            since=(6, 7, 0)),
    Feature("queue_item_summaries", "queue item summaries (item_summaries_by_ids)",
            since=(6, 14, 1)),
    Feature("enqueue_item_ids", "the new item ids in the enqueue answer", since=(6, 0, 0)),
    Feature("queue_retry", "retrying queue items (retry_items_by_id)", since=(5, 10, 0)),
    Feature("queue_cancel_all_except_current",
            "canceling all pending items (cancel_all_except_current)", since=(5, 10, 0)),
    Feature("queue_delete_item", "deleting one queue item (DELETE /queue/{q}/i/{id})",
            since=(6, 0, 0)),
    Feature("queue_delete_destination", "deleting items by destination (DELETE /queue/{q}/d/..)",
            since=(6, 0, 0)),
    Feature("queue_delete_all_except_current",
            "deleting all pending items (delete_all_except_current)", since=(6, 0, 0)),
    Feature("status_sequence", "status_sequence on queue items and status events",
            since=(6, 13, 0)),
    Feature("queue_items_canceled_event", "the queue_items_canceled event for bulk cancels",
            since=(6, 14, 0)),
    # -- events -----------------------------------------------------------------------------
    Feature("doubled_events", "every item event sent twice to a single-user socket",
            since=(6, 13, 0), until=(6, 14, 0)),
    # -- images -----------------------------------------------------------------------------
    Feature("image_names", "image names and images_by_names", since=(6, 0, 0)),
    Feature("images_delete_uncategorized", "deleting uncategorized images",
            since=(5, 15, 0)),
    Feature("board_visibility", "board visibility (private, shared, public)", since=(6, 13, 0)),
    # -- workflows --------------------------------------------------------------------------
    Feature("workflow_form", "the workflow builder's form", since=(5, 10, 0)),
    Feature("workflow_meta_v4", "workflow meta.version 4.0.0 (connector nodes)",
            since=(6, 13, 0)),
    Feature("workflow_tags", "the workflow library's tag list", since=(6, 10, 0)),
    Feature("workflow_is_public", "public and private library workflows", since=(6, 13, 0)),
    # -- models -----------------------------------------------------------------------------
    Feature("models_by_hash", "finding a model by hash (get_by_hash)", since=(6, 12, 0)),
    Feature("models_missing", "models whose files are gone (GET /models/missing)",
            since=(6, 12, 0)),
)


@dataclass(frozen=True)
class ServerFeatures:
    """What one server can do, from its version (``GET /api/v1/app/version``)."""

    version_text: str

    @property
    def version(self) -> Version:
        """The version as integers; an unreadable one counts as the reference version."""
        return parse_version(self.version_text) or REFERENCE

    def supports(self, name: str) -> bool:
        """Whether this server has feature ``name`` (a key of :data:`FEATURES`)."""
        return FEATURES[name].on(self.version)

    def require(self, name: str) -> None:
        """Raise :class:`EndpointNotAvailableError` naming the version if it lacks ``name``."""
        feature = FEATURES[name]
        if feature.on(self.version):
            return
        if self.version < feature.since:
            when = f"it arrived in InvokeAI {format_version(feature.since)}"
        else:
            assert feature.until is not None
            when = f"it was removed in InvokeAI {format_version(feature.until)}"
        raise errors.EndpointNotAvailableError(
            f"{feature.what} is not available on this InvokeAI server "
            f"({self.version_text}): {when}"
        )


def check_supported(version_text: str, where: str) -> str | None:
    """Refuse a server older than :data:`OLDEST` (EndpointNotAvailableError naming both
    versions); the warning to log once for a release line newer than :data:`NEWEST`."""
    version = parse_version(version_text)
    if version is None:
        return None
    if version < OLDEST:
        raise errors.EndpointNotAvailableError(
            f"InvokeAI {version_text} at {where} is older than the oldest version this SDK "
            f"supports ({format_version(OLDEST)}): upgrade InvokeAI, or use a client made "
            "for its version",
            method="GET",
            path="/api/v1/app/version",
        )
    if version[:2] > NEWEST[:2]:
        return (
            f"InvokeAI {version_text} at {where} is newer than the newest version this SDK "
            f"was tested with ({format_version(NEWEST)}); it should work, but report "
            "anything that does not"
        )
    return None


def features_table() -> list[dict[str, str]]:
    """The table as rows (name, what, since, until) for docs and the CLI."""
    return [
        {
            "name": f.name,
            "what": f.what,
            "since": format_version(f.since) if f.since != (0, 0, 0) else "",
            "until": format_version(f.until) if f.until else "",
        }
        for f in FEATURES.values()
    ]
