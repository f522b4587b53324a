"""HTTP fault switches of the double (``double.faults``): failing, slow, HTML or cut answers."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field


@dataclass
class FaultRule:
    """One injected fault: requests matching ``path`` (a glob) and ``method`` misbehave."""

    path: str
    method: str | None = None
    status: int | None = None
    times: int | None = 1
    retry_after: float | str | None = None
    delay: float = 0.0
    html: bool = False
    drop_connection: bool = False
    handled_after: float | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass
class Faults:
    """The fault switches of a double; rules apply in the order they were added."""

    rules: list[FaultRule] = field(default_factory=list)

    def add(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = None,
        times: int | None = 1,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        html: bool = False,
        drop_connection: bool = False,
        handled_after: float | None = None,
    ) -> FaultRule:
        """Make matching requests fail (``status``), stall (``delay`` seconds), answer with
        the web UI page (``html``) or lose the connection; ``times=None`` means forever.

        ``handled_after=s`` is a gateway in front of the server: the client gets the fault
        (e.g. ``status=502``) at once while the server still handles the request, ``s``
        seconds later (an enqueue then lands although its answer said it failed)."""
        rule = FaultRule(
            path, method, status, times, retry_after, delay, html, drop_connection, handled_after
        )
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def match(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                rule.hits += 1
                return rule
        return None
