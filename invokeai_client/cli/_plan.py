"""What ``invokeai-client run`` will do, read from its options and checked offline.

Everything that can be wrong without a server (the workflow file, input labels, values,
the output folder) is found here, before a local InvokeAI is started or a request sent.
:func:`apply` is used twice: offline with the bundled 6.14.2 node schemas, then again on
the handle the server typed, so the values sent always match the server's own types.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvokeAIError, ValidationError
from ..fields import ImageField, InvocationSchemas, LocalImage
from ..workflows import WorkflowDefinition, WorkflowHandle, examples
from ._console import CliError
from ._options import board_options, runs_option
from ._values import find_input, one_line, parse_sweep, parse_value, split_assignment

DEMO_WORKFLOW = "noise-sweep"
"""The bundled model-free workflow run when no ``--workflow`` is given."""

DEMO_SWEEP = ("Seed=1,2,3,4", "Blur radius=0,2")
"""The demo's sweep when no ``--sweep`` is given: 4 seeds x 2 blur radii = 8 images."""


@dataclass
class Assignment:
    """One ``--set`` / ``--sweep`` option: the input key, the value text, the option text."""

    key: str
    text: str
    option: str


@dataclass
class Plan:
    """The checked options of one ``run``."""

    definition: WorkflowDefinition
    workflow_source: str
    sets: list[Assignment]
    sweeps: list[Assignment]
    runs: int
    out: Path
    board: str | None
    create_board: bool
    default_sweep: bool = False
    items: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    """``"node_id.field_name"`` -> label, for naming swept values in lines and files."""
    json: bool = False
    """``--json``: one JSON object per finished item on stdout, then a summary object."""


def make_plan(args: argparse.Namespace) -> Plan:
    """Read and check the ``run`` options (no server needed)."""
    definition, source = read_workflow(args.workflow)
    runs = runs_option(args)
    sets = [_assignment(text, "--set") for text in args.set or ()]
    sweeps = [_assignment(text, "--sweep") for text in args.sweep or ()]
    default_sweep = False
    if not sweeps and not args.workflow:
        set_keys = {a.key.casefold() for a in sets}
        sweeps = [
            a for a in (_assignment(text, "--sweep") for text in DEMO_SWEEP)
            if a.key.casefold() not in set_keys
        ]
        default_sweep = True
    board, create_board = board_options(args)
    plan = Plan(
        definition, source, sets, sweeps, runs, out_folder(args.out), board, create_board,
        default_sweep=default_sweep, json=bool(getattr(args, "json", False)),
    )
    handle = WorkflowHandle(definition, schemas=InvocationSchemas.bundled())
    apply(handle, plan)
    return plan


def read_workflow(
    path: str | None, *, option: str = "--workflow"
) -> tuple[WorkflowDefinition, str]:
    """The workflow at ``path`` (the bundled demo when None) and how to name its source."""
    if path:
        try:
            return WorkflowDefinition.from_file(Path(path).expanduser()), str(path)
        except InvokeAIError as exc:
            raise CliError(f"{option} {path}: {one_line(str(exc))}") from None
    demo = examples.path(DEMO_WORKFLOW)
    return WorkflowDefinition.from_file(demo), f"the bundled demo ({demo.name})"


def apply(handle: WorkflowHandle, plan: Plan) -> dict[int | str, list[Any]]:
    """Set ``plan``'s values on ``handle`` and return its sweep (``key -> values``).

    Also counts the items and checks that the batch can be built (swept inputs batchable
    and not fed by edges, required inputs present), raising :class:`CliError` otherwise.
    """
    for item in plan.sets:
        where = f"{item.option} {item.key}={item.text}"
        found = find_input(handle, item.key, where)
        value = parse_value(found.field, item.text, where)
        try:
            handle.set(found, value)
        except ValidationError as exc:
            raise CliError(f"{where}: {one_line(str(exc))}") from None
    sweep: dict[int | str, list[Any]] = {}
    for item in plan.sweeps:
        where = f"{item.option} {item.key}={item.text}"
        found = find_input(handle, item.key, where)
        if found.key in sweep:
            raise CliError(f"{where}: input {found.label!r} is swept twice")
        values = parse_sweep(found.field, item.text, where)
        if isinstance(found.field, ImageField) and any(isinstance(v, LocalImage) for v in values):
            raise CliError(
                f"{where}: sweeps take server image names, not local files; upload the files "
                "first (client.images.upload) or --set one file per run"
            )
        try:
            handle.batch_datum(found, values)
        except ValidationError as exc:
            if exc.rule == "batchable type":
                raise CliError(
                    f"{where}: {found.label!r} is a {found.field.kind} input, which InvokeAI "
                    "cannot vary in a batch (numbers, strings, images and videos can be); use "
                    "--set for one value per run"
                ) from None
            raise CliError(f"{where}: {one_line(str(exc))}") from None
        sweep[found.key] = values
        plan.labels[found.key] = found.label
    try:
        body = handle.build_batch(
            data=[[{"input": key, "items": values}] for key, values in sweep.items()],
            runs=plan.runs,
        )
    except ValidationError as exc:
        if exc.rule == "uploaded":  # local images in --set: uploaded at submit
            return sweep
        message = one_line(str(exc))
        if not message.startswith("workflow"):
            message = f"workflow {handle.name!r} cannot run: {message}"
        raise CliError(message) from None
    items = plan.runs
    for group in body["batch"]["data"]:
        items *= len(group[0]["items"])
    plan.items = items
    return sweep


def _assignment(text: str, option: str) -> Assignment:
    key, value = split_assignment(text, option)
    return Assignment(key, value, option)


def out_folder(out: str | None, option: str = "--out") -> Path:
    """The output folder (made when the first file is saved), checked to be writable; a
    new ``./outputs/<timestamp>/`` when ``out`` is None."""
    if out:
        path = Path(out).expanduser()
        option = f"{option} {out}"
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("outputs") / stamp
        suffix = 2
        while path.exists():
            path = Path("outputs") / f"{stamp}-{suffix}"
            suffix += 1
        option = f"output folder {path}"
    if path.exists() and not path.is_dir():
        raise CliError(f"{option}: exists and is not a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CliError(f"{option}: {existing} is not a writable folder")
    return path
