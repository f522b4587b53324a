"""The sub-commands and the options several of them share, each declared once.

Server and login options live in :mod:`._server`; these are the ones about what to run and
where the images (and the listing of what was made) go.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..types.batch import MIN_RUNS
from ._console import CliError

COMMANDS: dict[str, tuple[str, str | None]] = {
    # name: (its line in ``invokeai-client --help``, its description when it says more)
    "run": ("run a workflow as one batch and save its images",
            "Run a workflow (default: the bundled model-free demo) as ONE batch, show "
            "progress and save the images into a folder."),
    "inputs": ("list a workflow's inputs",
               "List a workflow's form inputs: index, label, type and rules, value. Offline "
               "unless --url is given."),
    "batch": ("run a sweep over one or more servers as a durable, resumable job",
              "Spread every variation of a workflow over the --server(s), save the images "
              "into --out, list them in OUT/results.jsonl and record the job in "
              "OUT/job.sqlite (--resume continues it)."),
    "generate": ("text to image over a sweep of seeds, with live step progress",
                 "Generate images from a prompt with the server's main model (SD1.x, SDXL or "
                 "FLUX), one image per seed, in ONE batch; save them into a folder."),
    "info": ("show the server's version and mode", None),
}


def add_command(sub: Any, name: str, *, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of sub-command ``name`` (its texts from :data:`COMMANDS`); ``epilog``
    examples keep their line breaks."""
    summary, description = COMMANDS[name]
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
    parser.add_argument("--runs", type=int, default=MIN_RUNS,
                        help="repeat every variation N times")


def runs_option(args: argparse.Namespace) -> int:
    """``--runs`` checked by the batch body's own rule (:data:`~..types.batch.MIN_RUNS`)."""
    runs: int = args.runs
    if isinstance(runs, bool) or runs < MIN_RUNS:
        raise CliError(f"--runs {runs}: must be {MIN_RUNS} or more")
    return runs


def add_output_options(parser: argparse.ArgumentParser, *, required: bool = False,
                       what: str = "the images and results.json") -> None:
    """Where the images go and what is said about them, the same for ``run``, ``generate``
    and ``batch``: ``--out DIR``, ``--board``, ``--create-board``, ``--json``."""
    default = "" if required else " (default: ./outputs/<timestamp>/)"
    parser.add_argument("--out", required=required, metavar="DIR",
                        help=f"folder for {what}{default}")
    parser.add_argument("--board", help="board (name or id) the images are added to")
    parser.add_argument("--create-board", action="store_true",
                        help="create the --board if no board has that name (batch: on every "
                        "server)")
    parser.add_argument("--json", action="store_true",
                        help="stdout: one JSON object per finished item, then a summary object")


def board_options(args: argparse.Namespace) -> tuple[str | None, bool]:
    """``--board`` and ``--create-board`` checked together: (board or None, create)."""
    if args.create_board and not args.board:
        raise CliError("--create-board needs --board NAME")
    return args.board or None, bool(args.create_board)
