"""Where the examples find InvokeAI: the first argument, $INVOKEAI_URL, or a local server.

    python examples/quickstart.py http://127.0.0.1:9090   # your server
    INVOKEAI_URL=http://127.0.0.1:9090 python examples/quickstart.py
    python examples/quickstart.py                          # starts a local InvokeAI (~20 s)
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

OUT = Path("outputs") / "examples"
"""Where the examples save images (relative to the current folder)."""


@contextlib.contextmanager
def invokeai_url() -> Iterator[str]:
    """The server URL to use; a local InvokeAI runs for the block when none is given."""
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("INVOKEAI_URL")
    if url:
        yield url
        return
    from invokeai_client.testing import LocalInvokeAI

    print("starting a local InvokeAI (installed on first use)...", file=sys.stderr)
    with LocalInvokeAI() as server:
        yield server.url
