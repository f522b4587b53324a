"""Which server the command talks to, and how it logs in.

``--url`` (or ``$INVOKEAI_URL``) names a running server; without one a local InvokeAI is
started for the duration of the command (installed into the user's cache on first use) and
stopped afterwards. Multi-user servers take ``--token`` or ``--email``/``--password``
(``$INVOKEAI_TOKEN``, ``$INVOKEAI_EMAIL``, ``$INVOKEAI_PASSWORD``); a missing password is
asked for on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Iterator
from typing import Any

from ..testing.local import (
    INVOKEAI_VERSION,
    LocalInvokeAI,
    ensure_installed,
    is_installed,
    venv_dir,
)
from ._console import CliError, Console


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token``, ``--email``, ``--password``."""
    parser.add_argument(
        "--url",
        default=os.environ.get("INVOKEAI_URL") or None,
        help="server URL, e.g. http://127.0.0.1:9090 ($INVOKEAI_URL); "
        "default: start a local InvokeAI for this command",
    )
    add_auth_options(parser)


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """``--token``, ``--email``, ``--password`` (read by :func:`client_options`)."""
    parser.add_argument("--token", help="bearer token for a multi-user server ($INVOKEAI_TOKEN)")
    parser.add_argument("--email", help="log in to a multi-user server ($INVOKEAI_EMAIL)")
    parser.add_argument(
        "--password", help="password for --email ($INVOKEAI_PASSWORD; asked when missing)"
    )


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :class:`~invokeai_client.AsyncClient` from the options.

    Only what was given on the command line is passed: credentials from the environment
    are left to the client, which uses them where the server has accounts and ignores
    them elsewhere (a shell set up for a team's server still reaches a local one).
    """
    token, email = args.token or None, args.email or None
    password = args.password or None
    if token and email:
        raise CliError("give either --token or --email/--password, not both")
    if password and not email:
        raise CliError("--password needs --email")
    if email and not password:
        password = os.environ.get("INVOKEAI_PASSWORD") or None
        if password is None and not sys.stdin.isatty():
            raise CliError(f"--email {email}: no password (use --password or $INVOKEAI_PASSWORD)")
        password = password or getpass.getpass(f"password for {email}: ")
    if token:
        return {"token": token}
    if email:
        return {"email": email, "password": password}
    return {}


@contextlib.contextmanager
def server_url(url: str | None, console: Console, *, tiny_models: bool = False) -> Iterator[str]:
    """``url``, or the URL of a local InvokeAI started for the duration of the block (with
    the tiny random-weight test models installed if ``tiny_models``)."""
    if url:
        yield url.rstrip("/")
        return
    if not is_installed():
        # Quietly: pip's output would land on stdout, which carries only saved paths.
        console.note(
            f"installing InvokeAI {INVOKEAI_VERSION} into {venv_dir()} (a few minutes, once)..."
        )
        ensure_installed(quiet=True)
    console.note(f"starting a local InvokeAI {INVOKEAI_VERSION} (installed on first use)...")
    with LocalInvokeAI() as server:
        console.note(f"local InvokeAI ready at {server.url} in {server.started_in or 0:.1f}s")
        if tiny_models:
            from ..testing.tiny_models import install_tiny_models_blocking

            console.note("installing the tiny random-weight test models (built once, cached)")
            install_tiny_models_blocking(server.url)
        try:
            yield server.url
        finally:
            console.note("stopping the local InvokeAI")
