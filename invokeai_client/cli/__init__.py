"""The ``invokeai-client`` command line.

- ``invokeai-client run``: run a workflow (default: the bundled model-free demo) as ONE
  batch with live progress, save its images into a folder and print their paths.
- ``invokeai-client inputs``: list a workflow's inputs, their types and values.
- ``invokeai-client info``: the server's version and mode.
- ``invokeai-client batch``: a durable sweep over one or more servers (``--resume``).
- ``invokeai-client generate``: text to image over a sweep of seeds with live step progress
  (a local server gets the tiny random-weight test models).

Without ``--url`` (or ``$INVOKEAI_URL``) a local InvokeAI is started for the command
(installed on first use). Problems are reported as one ``error: ...`` line; each kind has
its own exit code (usage 2, input 3, server unreachable 4, items failed 5, interrupted 130,
stdout closed 141). An interrupted run cancels its batch on the server. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .. import AsyncClient, InvokeAIError, __version__, errors
from ..testing.local import LocalServerError
from ._console import (
    EXIT_ERROR,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    Console,
)
from ._inputs import load_inputs, show_inputs
from ._options import add_command, add_output_options, add_values_options
from ._plan import DEMO_SWEEP, make_plan, read_workflow
from ._run import run_batch
from ._server import add_server_options, client_options, server_url
from ._values import one_line
from .batch import add_batch_parser, run_batch_command
from .generate import add_generate_parser, generate_images, plan_generate

__all__ = ["main"]

_RUN_EPILOG = f"""\
examples:
  invokeai-client run                       the demo: {" x ".join(DEMO_SWEEP)}
  invokeai-client run --url http://127.0.0.1:9090 --sweep "Seed=1..16" --out renders
  invokeai-client run --workflow flow.json --set "Positive Prompt=a cat" --sweep "Seed=1,2,3"
  invokeai-client inputs --workflow flow.json
sweep values: a,b,c | ["a, with comma", "b"] | start..stop | start..stop:step
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line's argument parser."""
    parser = argparse.ArgumentParser(
        prog="invokeai-client",
        description="Run InvokeAI workflows from the command line.",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 bad input, 4 server unreachable, "
        "5 some items failed, 130 interrupted, 141 stdout closed (docs/cli.md)",
    )
    parser.add_argument(
        "--version", action="version", version=f"invokeai-client {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = add_command(sub, "run", epilog=_RUN_EPILOG)
    add_server_options(run)
    _add_workflow_option(run)
    add_values_options(run)
    add_output_options(run)

    inputs = add_command(sub, "inputs")
    add_server_options(inputs)
    _add_workflow_option(inputs)

    add_batch_parser(sub)
    add_generate_parser(sub)

    info = add_command(sub, "info")
    add_server_options(info)
    info.add_argument("--json", action="store_true", help="stdout: one JSON object")
    return parser


def _add_workflow_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workflow", metavar="PATH",
        help="a workflow exported from the InvokeAI workflow editor (default: the demo)",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``invokeai-client``; returns the exit code (see docs/cli.md)."""
    args = build_parser().parse_args(argv)  # usage errors exit 2 here (argparse)
    console = Console()
    try:
        return _command(args, console)
    except CliError as exc:
        console.error(str(exc))
        return exc.code
    except LocalServerError as exc:
        console.error(one_line(str(exc)))
        return EXIT_UNREACHABLE
    except errors.ConnectionError as exc:
        console.error(f"cannot reach the InvokeAI server: {one_line(str(exc))}")
        return EXIT_UNREACHABLE
    except (errors.ValidationError, errors.WorkflowError, errors.AuthenticationError) as exc:
        console.error(one_line(str(exc)))
        return EXIT_INPUT
    except InvokeAIError as exc:
        console.error(one_line(str(exc)))
        return EXIT_ERROR
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.note("interrupted")
        return EXIT_INTERRUPTED


def _batch_command(args: argparse.Namespace, console: Console) -> int:
    try:
        return run_batch_command(args, console)
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.note(f"interrupted: the job is saved in {args.out}; run the same command with "
                     "--resume to continue it")
        return EXIT_INTERRUPTED


def _command(args: argparse.Namespace, console: Console) -> int:
    if args.command == "batch":
        return _batch_command(args, console)
    if args.command == "generate":
        return _generate_command(args, console)
    if args.command == "run":
        plan = make_plan(args)  # everything checkable offline, before any server
        options = client_options(args)
        with server_url(args.url, console) as url:
            return asyncio.run(run_batch(plan, url, options, console))
    if args.command == "inputs":
        definition, source = read_workflow(args.workflow)
        # Offline unless a server is named (--url or $INVOKEAI_URL).
        options = client_options(args) if args.url else {}
        handle = asyncio.run(load_inputs(definition, args.url, options))
        show_inputs(handle, source, console, demo=not args.workflow)
        return EXIT_OK
    options = client_options(args)
    with server_url(args.url, console) as url:
        return asyncio.run(_info(url, options, console, as_json=args.json))


def _generate_command(args: argparse.Namespace, console: Console) -> int:
    plan = plan_generate(args)  # everything checkable offline, before any server
    options = client_options(args)
    with server_url(args.url, console, tiny_models=True) as url:
        code = asyncio.run(
            generate_images(args, plan, url, options, console, local=not args.url)
        )
        if code is not None:
            return code
        demo = ["run", *(["--out", args.out] if args.out else ()),
                *(["--board", args.board] if args.board else ()),
                *(flag for flag, on in (("--create-board", args.create_board),
                                        ("--json", args.json)) if on)]
        demo_plan = make_plan(build_parser().parse_args(demo))
        return asyncio.run(run_batch(demo_plan, url, options, console))


async def _info(url: str, options: dict[str, Any], console: Console, *, as_json: bool) -> int:
    async with AsyncClient(url, **options) as client:
        info = await client.server_info()
        if as_json:
            console.result(json.dumps({
                "version": info.version, "url": client.base_url, "multiuser": info.multiuser,
            }))
        else:
            mode = "multi-user" if info.multiuser else "single-user"
            console.result(f"InvokeAI {info.version} at {client.base_url} ({mode})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
