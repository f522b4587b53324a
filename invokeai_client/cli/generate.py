"""``invokeai-client generate``: text to image over a sweep of seeds, with live step progress.

It is ``client.generate_batch`` (one enqueue for every prompt x seed) from a shell: the model
is resolved like ``client.generate`` resolves it, each item's denoising steps show live, and
the images are saved into ``--out`` as they finish (their paths on stdout). Without
``--url`` the local InvokeAI started for the command gets the tiny random-weight test models
(``invokeai_client.testing.tiny_models``): the machinery is real, the images are noise.
``--or-demo`` runs the model-free demo workflow instead when the server has no main model, and
without ``--model`` uses the first of several main models (saying which).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .. import AsyncClient, errors
from .._checks import check_int
from .._files import make_folder
from ..generate import GENERATE_BASES, MAX_SEED, choose_model
from ..runs import BatchRun, NodeProgress, RunEvent, StatusChanged, WorkflowResult
from ..types.model_configs import ModelConfig
from ._console import EXIT_ERROR, EXIT_ITEMS_FAILED, EXIT_OK, CliError, Console
from ._interrupt import interruptible
from ._listing import Outcome, item_entry, print_item, summarize, write_results_json
from ._options import add_command, add_output_options, board_options
from ._plan import out_folder
from ._progress import ProgressDisplay
from ._run import CANCELING, cancel_batch, cli_errors, save_images
from ._server import add_server_options
from ._values import one_line

__all__ = [
    "DEFAULT_PROMPT", "GeneratePlan", "add_generate_parser", "generate_images", "parse_seeds",
    "plan_generate",
]

DEFAULT_PROMPT = "a lighthouse on a cliff at dusk, oil painting"
DEFAULT_SEEDS = "1..8"
LOCAL_MODEL = "tiny-sdxl"
"""The model on a local server started for the command (``--model`` picks another)."""
MAX_SEEDS = 10_000


def add_generate_parser(sub: Any) -> None:
    """The ``generate`` subcommand's options."""
    gen = add_command(sub, "generate")
    add_server_options(gen)
    gen.add_argument("prompt", nargs="*", help=f"the prompt (default: {DEFAULT_PROMPT!r})")
    gen.add_argument("--model", help="key, name, unique name fragment or base (sd-1, sdxl, "
                     "...: its only main model) of a main model (default: the only one; "
                     f"{LOCAL_MODEL} on a local server; with --or-demo the first one)")
    gen.add_argument("--negative", default="", help="negative prompt (SD1.x/SDXL)")
    gen.add_argument("--seeds", default=DEFAULT_SEEDS,
                     help=f"seeds: a,b,c or start..stop (default {DEFAULT_SEEDS})")
    gen.add_argument("--width", type=int, help="image width (rounded down as the GUI does)")
    gen.add_argument("--height", type=int, help="image height")
    gen.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    add_output_options(gen)
    gen.add_argument("--or-demo", action="store_true",
                     help="run the model-free demo workflow when the server has no main model")


DEMO_BASES = ("sdxl", "sd-1", "sd-2", "flux")
"""Which base ``--or-demo`` prefers when the server has several main models (FLUX last: it
needs more models besides the main one)."""


def demo_model(models: list[ModelConfig]) -> ModelConfig:
    """The main model ``--or-demo`` uses without ``--model``: the first by base preference,
    then by name (pure)."""
    return min(models, key=lambda m: (DEMO_BASES.index(m.base) if m.base in DEMO_BASES
                                      else len(DEMO_BASES), m.name.casefold(), m.key))


def parse_seeds(text: str) -> list[int]:
    """``"1,5,9"`` or ``"1..8"`` (inclusive) as a list of seeds; CliError when malformed."""
    try:
        if ".." in text:
            start, _, stop = text.partition("..")
            seeds = list(range(int(start), int(stop) + 1))
        else:
            seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CliError(f"--seeds {text!r}: use a,b,c or start..stop (integers)") from None
    if not seeds or len(seeds) > MAX_SEEDS or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise CliError(f"--seeds {text!r}: 1 to {MAX_SEEDS} seeds from 0 to {MAX_SEED}")
    return seeds


@dataclass(frozen=True)
class GeneratePlan:
    """The checked options of one ``generate`` (known before any server is asked)."""

    prompt: str
    seeds: list[int]
    out: Path
    json: bool = False
    """``--json``: one JSON object per finished item on stdout, then a summary object."""


def plan_generate(args: argparse.Namespace) -> GeneratePlan:
    """Read and check ``generate``'s options: seeds, sizes, steps, the output folder."""
    seeds = parse_seeds(args.seeds)
    for name in ("width", "height", "steps"):
        value = getattr(args, name)
        if value is not None:
            try:
                check_int(name, value, minimum=1)
            except errors.ValidationError as exc:
                raise CliError(f"--{name} {value}: {one_line(str(exc))}") from None
    board_options(args)
    return GeneratePlan(" ".join(args.prompt) or DEFAULT_PROMPT, seeds, out_folder(args.out),
                        json=bool(args.json))


async def generate_images(
    args: argparse.Namespace, plan: GeneratePlan, url: str, options: dict[str, Any],
    console: Console, *, local: bool = False,
) -> int | None:
    """Run ``generate``; the exit code, or None when ``--or-demo`` should run the demo.
    Ctrl-C, SIGTERM or a closed stdout cancel the batch on the server (see
    :mod:`._interrupt`)."""
    with interruptible(console, CANCELING) as interrupt, cli_errors(url):
        async with AsyncClient(url, **options) as client:
            model = await _model(client, args, console, local=local)
            if model is None:
                return None
            run = _Generation(plan, url, console, model)
            try:
                return await run.submit_and_follow(client, args)
            except asyncio.CancelledError:
                if not interrupt.caught():
                    raise
                await cancel_batch(run.batch, console)
                await run.finish(interrupt.code)
                return interrupt.code


async def _model(
    client: AsyncClient, args: argparse.Namespace, console: Console, *, local: bool
) -> ModelConfig | None:
    """The main model to use (None: ``--or-demo`` runs the demo instead)."""
    info = await client.server_info()
    console.note(f"InvokeAI {info.version} at {client.base_url}")
    wanted = args.model or (LOCAL_MODEL if local else None)
    try:
        model = choose_model(await client.models.list(type="main"), wanted)
    except errors.ModelChoiceError as exc:
        if not args.or_demo or args.model is not None:
            raise CliError(one_line(str(exc))) from None
        if not exc.candidates:
            console.note("the server has no SD1.x, SDXL or FLUX main model: running the "
                         "model-free demo workflow instead")
            return None
        model = demo_model(exc.candidates)
        console.note(f"using {model.name!r} ({model.base}), the first of "
                     f"{len(exc.candidates)} main models; --model NAME or a base "
                     f"({', '.join(GENERATE_BASES)}) chooses another")
    if local or model.name.startswith("tiny-"):
        console.note(f"note: {model.name!r} is a tiny RANDOM-WEIGHT test model made on this "
                     "machine: the images are noise; the generation machinery is real")
    return model


@dataclass
class _Generation:
    """One ``generate`` batch: submitted, followed, listed in ``results.json``."""

    plan: GeneratePlan
    url: str
    console: Console
    model: ModelConfig
    batch: BatchRun | None = None
    outcome: Outcome = field(default_factory=Outcome)
    started: float = field(default_factory=time.monotonic)

    async def submit_and_follow(self, client: AsyncClient, args: argparse.Namespace) -> int:
        plan, model = self.plan, self.model
        board = args.board
        if board is not None and args.create_board:
            board = await client.boards.resolve(board, create=True)
        await anyio.to_thread.run_sync(make_folder, plan.out)
        self.batch = batch = await client.generate_batch(
            plan.prompt, seeds=plan.seeds, model=model, negative=args.negative,
            width=args.width, height=args.height, steps=args.steps, board=board,
        )
        self.started = time.monotonic()
        self.console.note(
            f"{model.name} ({model.base}): {plan.prompt!r} x {len(plan.seeds)} seed"
            f"{'' if len(plan.seeds) == 1 else 's'} in one batch ({batch.batch_id}), images "
            f"to {plan.out}/")
        await self._follow(batch, title=f"{model.name}: {plan.prompt}")
        counts = batch.counts
        ok = counts.completed == counts.total and not self.outcome.unsaved
        code = EXIT_OK if ok else EXIT_ITEMS_FAILED
        await self.finish(code)
        return code

    async def finish(self, code: int) -> None:
        """``results.json`` and the summary (nothing when no batch was enqueued)."""
        if self.batch is None:
            return
        model = {"name": self.model.name, "base": self.model.base, "key": self.model.key}
        header = {"prompt": self.plan.prompt, "model": model, "server": self.url}
        await write_results_json(self.plan.out, header, self.batch, self.outcome, _values)
        summarize(self.console, self.plan.out, self.batch, self.outcome,
                  time.monotonic() - self.started, code, as_json=self.plan.json)

    async def _follow(self, batch: BatchRun, *, title: str) -> None:
        """Live step progress from the batch's events; each image saved as its item ends."""
        positions = {run.item_id: index for index, run in enumerate(batch.runs)}
        display = ProgressDisplay(self.console, total=len(batch), title=title)

        def update(activity: str | None) -> None:
            counts = batch.counts
            display.update(total=len(batch), running=counts.in_progress, failed=counts.failed,
                           canceled=counts.canceled, activity=activity)

        def on_event(event: RunEvent) -> None:
            if isinstance(event, NodeProgress) and event.step is not None:
                total = f"/{event.total}" if event.total else ""
                display.set_title(f"{title}  item {event.item_id} step {event.step}{total}")
                update(None)
            elif isinstance(event, StatusChanged):
                update("" if event.terminal else None)

        async def finish(result: WorkflowResult) -> None:
            index = positions.get(result.item_id, len(positions))
            await save_images(result, self.plan.out, f"{index + 1:03d}-seed{_seed(result)}",
                              self.console, self.outcome, print_paths=not self.plan.json)
            if self.outcome.fatal is not None:
                group.cancel_scope.cancel()
            elif self.plan.json:
                entry = item_entry(index, result.item_id, result, _values,
                                   self.outcome.files.get(result.item_id, ()))
                print_item(self.console, entry)

        with display:

            async def events() -> None:
                async for event in batch.events():
                    on_event(event)

            async with anyio.create_task_group() as group:
                group.start_soon(events)
                async for result in batch.as_completed():
                    self.outcome.results[result.item_id] = result
                    line = f"item {result.item_id} {result.status}: seed {_seed(result)}"
                    if not result.ok:
                        line += f" - {one_line(result.error_message or result.error_type or '')}"
                    display.finished(line, ok=result.ok)
                    group.start_soon(finish, result)
        if self.outcome.fatal is not None:
            await cancel_batch(batch, self.console)
            raise CliError(self.outcome.fatal, EXIT_ERROR)


def _seed(result: WorkflowResult) -> Any:
    return result.outputs.get("seed")


def _values(result: WorkflowResult) -> dict[str, Any]:
    """An item's prompt and seed, as ``generate_batch`` names them."""
    return dict(result.field_values)
