"""Servers that fail what the others complete: a failed item is tried once elsewhere, and a
server whose failures the others keep turning into results is left out of the job.

Pure bookkeeping, per job. Why: a server missing a model (deleted since the job started,
or a server with another model set behind the same names), or with a broken node pack,
fails every item in milliseconds, so the scheduler, which feeds whoever drains fastest,
would hand it most of the sweep, as failures. The rules:

- a variation that failed on a server is sent once more, to another server (when the job
  has another), as long as some server completed an item of the job or no variation has
  failed twice yet (a workflow that fails everywhere shows it with its first retry, and
  from then on, until something completes, failures are delivered at once). The decision
  rests on what happened, not on how fast: a slow healthy server and a fast failing one
  give the same outcome on a loaded machine as on an idle one;
- a variation that fails again is delivered as failed (it ran at most twice);
- when variations that failed on server S complete elsewhere ``BLAME`` times, and S's last
  item failed too, S is left out of the job (its queued items there are canceled and sent
  elsewhere; ``job.excluded`` says why).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

BLAME = 2
"""Failed-here-completed-elsewhere variations that get a failing server left out."""

@dataclass
class Health:
    """Per server of one job: items completed, failures in a row, failures others fixed;
    and how many variations failed on two servers."""

    completed_by: Counter[str] = field(default_factory=Counter)
    streak: Counter[str] = field(default_factory=Counter)
    blame: Counter[str] = field(default_factory=Counter)
    failed_twice: int = 0

    def failed(self, url: str, attempts: Iterable[Any], usable: Iterable[str]) -> bool:
        """An item failed on ``url``: whether to send its variation to another server."""
        self.streak[url] += 1
        if any(a.last_status == "failed" for a in attempts):
            self.failed_twice += 1
            return False  # it failed on another server before: it is the variation
        if not any(other != url for other in usable):
            return False
        return sum(self.completed_by.values()) > 0 or self.failed_twice == 0

    def completed(self, url: str, attempts: Iterable[Any]) -> str | None:
        """An item completed on ``url``; the server to leave out, if this proves one bad."""
        self.completed_by[url] += 1
        self.streak[url] = 0
        for attempt in attempts:
            if attempt.last_status != "failed" or attempt.server == url:
                continue
            self.blame[attempt.server] += 1
            if self.blame[attempt.server] >= BLAME and self.streak[attempt.server] > 0:
                return str(attempt.server)
        return None
