"""The options several commands share, each declared once (``run``, ``batch``, ``generate``).

Server and login options live in :mod:`._server`; these are the ones about what to run and
where the images go.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_command(
    sub: Any, name: str, summary: str, description: str | None = None, *,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A sub-command's parser: ``summary`` is its line in ``invokeai-client --help`` (and its
    description unless one is given); ``epilog`` examples keep their line breaks."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description or summary, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


SWEEP_METAVAR = '"LABEL=V1,V2,..."'
SET_METAVAR = '"LABEL=VALUE"'


def add_values_options(parser: argparse.ArgumentParser, *, sweep: Any = None) -> None:
    """``--sweep`` (repeatable: every combination), ``--set`` and ``--runs``; ``sweep`` is a
    mutually exclusive group to put ``--sweep`` in (``batch``'s variation sources)."""
    (sweep or parser).add_argument(
        "--sweep", action="append", metavar=SWEEP_METAVAR,
        help="vary an input over values (repeatable: every combination runs)",
    )
    parser.add_argument("--set", action="append", metavar=SET_METAVAR,
                        help="set an input for every item (repeatable)")
    parser.add_argument("--runs", type=int, default=1, help="repeat every variation N times")


def add_out_option(parser: argparse.ArgumentParser, *, required: bool = False,
                   what: str = "the images") -> None:
    """``--out DIR``: where the images (and a job's manifest) go."""
    default = "" if required else " (default: ./outputs/<timestamp>/)"
    parser.add_argument("--out", required=required, metavar="DIR",
                        help=f"folder for {what}{default}")


def add_board_option(parser: argparse.ArgumentParser) -> None:
    """``--board``: the board image outputs left on "auto" are added to."""
    parser.add_argument("--board", help="board (name or id) the images are added to")
