"""InvokeAI's invocation cache, as the double keeps it (``double.queue.cache``)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any


class InvocationCache:
    """InvokeAI's invocation cache: a node with ``use_cache`` whose inputs (everything but
    its id) equal an earlier node's gets that node's output without running (no progress, no
    new image). Least recently used entries go first; outputs naming a deleted image are
    dropped, as the server does when images are deleted."""

    def __init__(self, max_size: int = 512) -> None:
        self.max_size = max_size
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def lookup(self, node: dict[str, Any],
               images: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """(key to save under or None, cached output or None) for a node about to run."""
        if not node.get("use_cache") or not self.enabled or self.max_size <= 0:
            return None, None
        key = json.dumps({k: v for k, v in node.items() if k != "id"}, sort_keys=True,
                         separators=(",", ":"))
        cached = self._entries.get(key)
        if cached is not None:
            image = cached.get("image")
            if isinstance(image, dict) and image.get("image_name") not in images:
                del self._entries[key]  # its image was deleted
                cached = None
        if cached is None:
            self.misses += 1
            return key, None
        self.hits += 1
        self._entries.move_to_end(key)
        return None, cached

    def save(self, key: str, output: dict[str, Any]) -> None:
        if not self.enabled or self.max_size <= 0 or key in self._entries:
            return
        while len(self._entries) >= self.max_size:
            self._entries.popitem(last=False)
        self._entries[key] = output

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0

    def status(self) -> dict[str, Any]:
        return {
            "size": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "enabled": self.enabled and self.max_size > 0,
            "max_size": self.max_size,
        }
