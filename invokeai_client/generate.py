"""One-call generation: a prompt in, a run out, with the graph the GUI's Generate tab builds.

``client.generate("a cat", model="sdxl")`` picks the graph by the model's base (SD1.x/SD2,
SDXL or FLUX), resolves ``model`` (a key, an exact name, or a fragment of exactly one main
model's name), rounds the size as the GUI does and enqueues once; it returns the
:class:`~invokeai_client.runs.WorkflowRun` (``await run`` for the image, ``run.events()`` for
step progress). ``client.generate_batch`` sends many prompts or seeds in ONE request.

The pure part (:func:`choose_model`, :func:`gui_size`, :func:`text_to_image_graph`) needs no
server; :class:`Generator` moves data between it and the client.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from . import errors
from ._checks import check_bool, check_int, check_keywords
from ._model_choice import ModelWanted, choose_installed
from .types.boards import UNCATEGORIZED
from .types.model_configs import ModelConfig

if TYPE_CHECKING:
    from .fields.schema import InvocationSchemas
    from .repositories.boards import BoardRepository
    from .repositories.images import ImageLike, ImageRepository
    from .repositories.models import ModelRepository
    from .runs import BatchRun, RunManager, WorkflowRun
    from .types.boards import BoardRef
    from .types.images import ImageDTO

__all__ = [
    "GENERATE_BASES",
    "GenerateOptions",
    "GenerateSpec",
    "Generator",
    "choose_model",
    "gui_size",
    "text_to_image_graph",
]

GENERATE_BASES = ("sd-1", "sd-2", "sdxl", "flux")
"""Main-model bases :func:`text_to_image_graph` builds graphs for."""

BATCH_NAMES = {"positive_prompt.value": "prompt", "seed.value": "seed"}
"""How a :meth:`Generator.generate_batch` item's ``field_values`` name what varies: as the
arguments of ``generate()``."""

MAX_SEED = 4294967295
"""The largest seed InvokeAI's noise nodes accept (numpy's random range)."""

MAX_SIZE = 4096
"""The largest width/height :func:`generate` sends (the GUI's number inputs stop there; the
server's schema has no maximum and fails far larger sizes only while running)."""

CFG_SCALE_RANGE = (1.0, 200.0)
"""The CFG scales the GUI's number input takes (below 1 the guidance inverts)."""

ORIGIN = "invokeai-client.generate"
DESTINATION = "gallery"

_DEFAULT_SIZE = {"sd-1": 512, "sd-2": 768, "sdxl": 1024, "flux": 1024}
_DEFAULT_STEPS = {"flux": 28}
_GRID = {"flux": 16}


def grid_size(base: str) -> int:
    """The multiple the GUI keeps width and height at for ``base`` (16 for FLUX, else 8)."""
    return _GRID.get(base, 8)


def gui_size(value: int, base: str) -> int:
    """``value`` as the GUI stores a size: rounded down to the base's grid, at least 64."""
    grid = grid_size(base)
    return max(value // grid * grid, 64)


_MAIN = ModelWanted(
    usable=lambda m: m.type == "main" and m.base in GENERATE_BASES,
    one="main model",
    many="main models",
    needs=f"generate() needs a main model of base {', '.join(GENERATE_BASES)}",
    bases=GENERATE_BASES,
)
"""How :func:`choose_model` looks up a main model (errors name the ``model`` argument)."""


def choose_model(models: Sequence[ModelConfig], wanted: str | ModelConfig | None) -> ModelConfig:
    """The one main model ``wanted`` names among ``models`` (pure).

    ``wanted`` is a :class:`ModelConfig`, a key, an exact name, a base (``sd-1``, ``sd-2``,
    ``sdxl``, ``flux``: the only main model of that base), or a case-insensitive fragment of
    exactly one name; None picks the only usable model. Anything ambiguous or missing
    raises :class:`~errors.ModelChoiceError` listing the candidates: never a guess.
    """
    if isinstance(wanted, ModelConfig):
        return wanted
    if wanted is not None and (not isinstance(wanted, str) or not wanted):
        raise errors.ValidationError(
            f"model must be a model key, a name or a ModelConfig, got {wanted!r}",
            input="model", rule="key, name or ModelConfig",
        )
    return choose_installed(models, wanted, _MAIN)


@dataclass(frozen=True)
class GenerateSpec:
    """Everything one text-to-image graph needs; sizes already on the GUI's grid."""

    model: ModelConfig
    prompt: str
    negative: str = ""
    width: int = 512
    height: int = 512
    steps: int = 30
    seed: int = 0
    cfg_scale: float = 7.5
    scheduler: str = "euler"
    board_id: str | None = None
    vae: ModelConfig | None = None
    extras: Mapping[str, ModelConfig] | None = None  # FLUX: t5_encoder, clip_embed, vae
    loras: tuple[tuple[ModelConfig, float], ...] = ()


class GenerateOptions(TypedDict, total=False):
    """The keyword options :meth:`AsyncClient.generate` and :meth:`AsyncClient.generate_batch`
    share (``**options``), each optional, as the caller gives them: checked and resolved by
    :meth:`Generator.spec`. A type checker checks the keywords of a call against these."""

    model: str | ModelConfig | None
    """A key, an exact name or a fragment of exactly one main model's name (None: the only
    one installed); anything ambiguous or missing raises :class:`~errors.ModelChoiceError`."""
    negative: str
    """The negative prompt (default empty)."""
    width: int | None
    """Rounded as the GUI does (down to a multiple of 8, 16 for FLUX; at least 64); None: the
    model's default settings, then the GUI's default."""
    height: int | None
    """As ``width``."""
    steps: int | None
    """Denoising steps; None: the model's default settings, then the GUI's default."""
    cfg_scale: float | None
    """From 1 to 200; None: the model's default settings, then 7.5."""
    scheduler: str | None
    """One the server's denoise node takes; None: the model's default settings, then euler."""
    vae: str | ModelConfig | None
    """A VAE model, named as ``model`` is (None: the main model's own)."""
    loras: Mapping[str | ModelConfig, float] | None
    """LoRA models (named as ``model`` is) to their weights; SD1.x, SD2 and SDXL only."""
    board: BoardRef | None
    """The board for the image: an id, a name or a Board (None: uncategorized)."""


def _ident(model: ModelConfig) -> dict[str, Any]:
    return model.identifier()


def _edge(source: str, out: str, dest: str, field: str) -> dict[str, Any]:
    return {"source": {"node_id": source, "field": out},
            "destination": {"node_id": dest, "field": field}}


def _output(spec: GenerateSpec, node: dict[str, Any]) -> dict[str, Any]:
    node.update(is_intermediate=False, use_cache=False)
    if spec.board_id not in (None, UNCATEGORIZED):
        node["board"] = {"board_id": spec.board_id}
    return node


def _sd_graph(spec: GenerateSpec) -> dict[str, Any]:
    """SD1.x / SD2 / SDXL: loader, two prompts, noise, denoise_latents, l2i (as the GUI)."""
    xl = spec.model.base == "sdxl"
    cond = "sdxl_compel_prompt" if xl else "compel"
    nodes: dict[str, dict[str, Any]] = {
        "positive_prompt": {"type": "string", "value": spec.prompt},
        "negative_prompt": {"type": "string", "value": spec.negative},
        "seed": {"type": "integer", "value": spec.seed},
        "model_loader": {"type": "sdxl_model_loader" if xl else "main_model_loader",
                         "model": _ident(spec.model)},
        "pos_cond": {"type": cond}, "pos_cond_collect": {"type": "collect"},
        "neg_cond": {"type": cond}, "neg_cond_collect": {"type": "collect"},
        "noise": {"type": "noise", "width": spec.width, "height": spec.height, "use_cpu": True},
        "denoise_latents": {
            "type": "denoise_latents", "cfg_scale": spec.cfg_scale, "scheduler": spec.scheduler,
            "steps": spec.steps, "denoising_start": 0, "denoising_end": 1,
        },
        "l2i": _output(spec, {"type": "l2i", "fp32": xl}),
    }
    if not xl:
        nodes["clip_skip"] = {"type": "clip_skip", "skipped_layers": 0}
    unet, clip, clip2 = _add_loras(spec, nodes, xl)
    edges = [
        _edge(unet, "unet", "denoise_latents", "unet"),
        _edge("positive_prompt", "value", "pos_cond", "prompt"),
        _edge("negative_prompt", "value", "neg_cond", "prompt"),
        _edge("pos_cond", "conditioning", "pos_cond_collect", "item"),
        _edge("pos_cond_collect", "collection", "denoise_latents", "positive_conditioning"),
        _edge("neg_cond", "conditioning", "neg_cond_collect", "item"),
        _edge("neg_cond_collect", "collection", "denoise_latents", "negative_conditioning"),
        _edge("seed", "value", "noise", "seed"),
        _edge("noise", "noise", "denoise_latents", "noise"),
        _edge("denoise_latents", "latents", "l2i", "latents"),
    ]
    for cond_id, prompt in (("pos_cond", "positive_prompt"), ("neg_cond", "negative_prompt")):
        edges.append(_edge(clip, "clip", cond_id, "clip"))
        if xl:
            edges += [_edge(clip2, "clip2", cond_id, "clip2"),
                      _edge(prompt, "value", cond_id, "style")]
    if not xl:
        edges.append(_edge("model_loader", "clip", "clip_skip", "clip"))
    if spec.loras:
        edges += _lora_edges(spec, xl)
    vae_source = "model_loader"
    if spec.vae is not None:
        nodes["vae"] = {"type": "vae_loader", "vae_model": _ident(spec.vae)}
        vae_source = "vae"
    edges.append(_edge(vae_source, "vae", "l2i", "vae"))
    return _finish(spec, nodes, edges, "sdxl_txt2img" if xl else "txt2img")


def _add_loras(
    spec: GenerateSpec, nodes: dict[str, dict[str, Any]], xl: bool
) -> tuple[str, str, str]:
    """The GUI's LoRA nodes (a selector per LoRA, a collector, the collection loader); the
    nodes the UNet, CLIP and CLIP 2 then come from."""
    plain_clip = "model_loader" if xl else "clip_skip"
    if not spec.loras:
        return "model_loader", plain_clip, "model_loader"
    for index, (lora, weight) in enumerate(spec.loras):
        nodes[f"lora_selector_{index}"] = {
            "type": "lora_selector", "lora": _ident(lora), "weight": weight,
        }
    nodes["lora_collector"] = {"type": "collect"}
    nodes["lora_loader"] = {
        "type": "sdxl_lora_collection_loader" if xl else "lora_collection_loader",
    }
    return "lora_loader", "lora_loader", "lora_loader"


def _lora_edges(spec: GenerateSpec, xl: bool) -> list[dict[str, Any]]:
    edges = [_edge(f"lora_selector_{i}", "lora", "lora_collector", "item")
             for i in range(len(spec.loras))]
    edges += [_edge("lora_collector", "collection", "lora_loader", "loras"),
              _edge("model_loader", "unet", "lora_loader", "unet"),
              _edge("model_loader" if xl else "clip_skip", "clip", "lora_loader", "clip")]
    if xl:
        edges.append(_edge("model_loader", "clip2", "lora_loader", "clip2"))
    return edges


def _flux_graph(spec: GenerateSpec) -> dict[str, Any]:
    """FLUX.1: flux_model_loader (+ T5, CLIP-L, VAE), flux_text_encoder, flux_denoise."""
    extras = spec.extras or {}
    loader: dict[str, Any] = {"type": "flux_model_loader", "model": _ident(spec.model)}
    for field, kind in (("t5_encoder_model", "t5_encoder"), ("clip_embed_model", "clip_embed"),
                        ("vae_model", "vae")):
        if kind in extras:
            loader[field] = _ident(extras[kind])
    nodes: dict[str, dict[str, Any]] = {
        "positive_prompt": {"type": "string", "value": spec.prompt},
        "seed": {"type": "integer", "value": spec.seed},
        "model_loader": loader,
        "flux_text_encoder": {"type": "flux_text_encoder"},
        "pos_cond_collect": {"type": "collect"},
        "flux_denoise": {"type": "flux_denoise", "width": spec.width, "height": spec.height,
                         "num_steps": spec.steps, "guidance": 4, "denoising_start": 0,
                         "denoising_end": 1, "scheduler": spec.scheduler},
        "l2i": _output(spec, {"type": "flux_vae_decode"}),
    }
    edges = [
        _edge("model_loader", "clip", "flux_text_encoder", "clip"),
        _edge("model_loader", "t5_encoder", "flux_text_encoder", "t5_encoder"),
        _edge("model_loader", "max_seq_len", "flux_text_encoder", "t5_max_seq_len"),
        _edge("model_loader", "transformer", "flux_denoise", "transformer"),
        _edge("model_loader", "vae", "flux_denoise", "controlnet_vae"),
        _edge("model_loader", "vae", "l2i", "vae"),
        _edge("positive_prompt", "value", "flux_text_encoder", "prompt"),
        _edge("flux_text_encoder", "conditioning", "pos_cond_collect", "item"),
        _edge("pos_cond_collect", "collection", "flux_denoise", "positive_text_conditioning"),
        _edge("seed", "value", "flux_denoise", "seed"),
        _edge("flux_denoise", "latents", "l2i", "latents"),
    ]
    return _finish(spec, nodes, edges, "flux_txt2img")


def _finish(
    spec: GenerateSpec, nodes: dict[str, dict[str, Any]], edges: list[dict[str, Any]],
    mode: str,
) -> dict[str, Any]:
    """Add the GUI's ``core_metadata`` node (so the image recalls its parameters)."""
    meta: dict[str, Any] = {
        "type": "core_metadata", "generation_mode": mode, "model": _ident(spec.model),
        "width": spec.width, "height": spec.height, "steps": spec.steps,
        "scheduler": spec.scheduler, "rand_device": "cpu",
    }
    if spec.model.base != "flux":
        meta["cfg_scale"] = spec.cfg_scale
    if spec.vae is not None:
        meta["vae"] = _ident(spec.vae)
    if spec.loras:
        meta["loras"] = [{"model": _ident(lora), "weight": w} for lora, w in spec.loras]
    nodes["core_metadata"] = meta
    edges += [_edge("seed", "value", "core_metadata", "seed"),
              _edge("positive_prompt", "value", "core_metadata", "positive_prompt"),
              _edge("core_metadata", "metadata", "l2i", "metadata")]
    if "negative_prompt" in nodes:
        edges.append(_edge("negative_prompt", "value", "core_metadata", "negative_prompt"))
    for node_id, node in nodes.items():
        node["id"] = node_id
    return {"id": f"{mode}_graph", "nodes": nodes, "edges": edges}


def text_to_image_graph(spec: GenerateSpec) -> dict[str, Any]:
    """The text-to-image graph the GUI builds for ``spec.model``'s base (pure)."""
    if spec.model.base == "flux":
        return _flux_graph(spec)
    return _sd_graph(spec)


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise errors.ValidationError(
            f"{name} must be a string, got {value!r}", input=name, rule="string"
        )
    return value


def _check_options(prompt: object, seed: object, options: GenerateOptions) -> None:
    _check_text("prompt", prompt)
    _check_text("negative", options.get("negative", ""))
    for name in ("width", "height"):
        value = options.get(name)
        if value is not None:
            check_int(name, value, minimum=1, maximum=MAX_SIZE)
    steps = options.get("steps")
    if steps is not None:  # no maximum: long denoises are legitimate (and tested)
        check_int("steps", steps, minimum=1)
    if seed is not None:
        check_int("seed", seed, minimum=0, maximum=MAX_SEED)
    cfg_scale, (low, high) = options.get("cfg_scale"), CFG_SCALE_RANGE
    if cfg_scale is not None and (
        isinstance(cfg_scale, bool) or not isinstance(cfg_scale, (int, float))
        or not low <= cfg_scale <= high
    ):
        raise errors.ValidationError(
            f"cfg_scale must be a number from {low:g} to {high:g}, got {cfg_scale!r}",
            input="cfg_scale", rule=f"number in [{low:g}, {high:g}]",
        )
    if options.get("scheduler") is not None:
        _check_text("scheduler", options.get("scheduler"))


def _check_loras(
    loras: Mapping[str | ModelConfig, float] | None,
) -> list[tuple[str | ModelConfig, float]]:
    if loras is None:
        return []
    if not isinstance(loras, Mapping):
        raise errors.ValidationError(
            f"loras must map LoRA names (or keys, or ModelConfigs) to weights, got {loras!r}",
            input="loras", rule="mapping of LoRA to weight",
        )
    checked = []
    for lora, weight in loras.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise errors.ValidationError(
                f"loras: the weight of {lora!r} must be a number, got {weight!r}",
                input="loras", rule="number",
            )
        if not isinstance(lora, (str, ModelConfig)) or lora == "":
            raise errors.ValidationError(
                f"loras: {lora!r} is no LoRA name, key or ModelConfig", input="loras",
                rule="LoRA name, key or ModelConfig",
            )
        checked.append((lora, float(weight)))
    return checked


class Generator:
    """The shell around the pure builders: model lookup, board lookup, one enqueue.

    It holds the client's parts it uses, not the client (``AsyncClient`` builds one).
    """

    def __init__(
        self,
        *,
        models: ModelRepository,
        boards: BoardRepository,
        images: ImageRepository,
        runs: RunManager,
        schemas: Callable[[], Awaitable[InvocationSchemas]] | None = None,
    ) -> None:
        self._models = models
        self._boards = boards
        self._images = images
        self._runs = runs
        self._schemas = schemas  # the server's node schemas (scheduler choices)

    async def resolve_model(self, model: str | ModelConfig | None) -> ModelConfig:
        """The main model ``model`` names on this server (see :func:`choose_model`)."""
        if isinstance(model, ModelConfig):
            return choose_model([model], model)
        return choose_model(await self._models.list(type="main"), model)

    async def spec(
        self, prompt: str, options: GenerateOptions, *, seed: int | None = None
    ) -> GenerateSpec:
        """Check the arguments, resolve the model, VAE, LoRAs and board: the spec a graph
        needs."""
        _check_options(prompt, seed, options)
        weights = _check_loras(options.get("loras"))
        chosen = await self.resolve_model(options.get("model"))
        base = chosen.base
        settings = chosen.default_settings or {}
        size = _DEFAULT_SIZE.get(base, 1024)
        cfg_scale = options.get("cfg_scale")
        spec = GenerateSpec(
            model=chosen, prompt=prompt, negative=options.get("negative", ""),
            width=gui_size(options.get("width") or settings.get("width") or size, base),
            height=gui_size(options.get("height") or settings.get("height") or size, base),
            steps=options.get("steps") or settings.get("steps") or _DEFAULT_STEPS.get(base, 30),
            seed=random.randint(0, MAX_SEED) if seed is None else seed,
            cfg_scale=float(cfg_scale if cfg_scale is not None
                            else settings.get("cfg_scale") or 7.5),
            scheduler=options.get("scheduler") or settings.get("scheduler") or "euler",
        )
        await self._check_scheduler(spec.scheduler, base)
        vae = options.get("vae")
        if vae is not None:
            spec = replace(spec, vae=await self._model_of("vae", vae, base, input="vae"))
        if base == "flux":
            if weights:
                raise errors.ValidationError(
                    "loras: generate() applies LoRAs to SD1.x, SD2 and SDXL models only",
                    input="loras", rule="SD LoRAs",
                )
            spec = replace(spec, extras=await self._flux_extras())
        if weights:
            found = [(await self._model_of("lora", name, base, input="loras"), w)
                     for name, w in weights]
            spec = replace(spec, loras=tuple(found))
        board = options.get("board")
        if board is not None:
            spec = replace(spec, board_id=await self._boards.resolve(board))
        return spec

    async def _check_scheduler(self, scheduler: str, base: str) -> None:
        """Refuse a scheduler the server's denoise node does not take (its schema's enum)."""
        node = "flux_denoise" if base == "flux" else "denoise_latents"
        schema = (await self._schemas()).get(node) if self._schemas is not None else None
        choices = schema.inputs.get("scheduler", {}).get("enum") if schema is not None else None
        if isinstance(choices, list) and choices and scheduler not in choices:
            raise errors.ValidationError(
                f"scheduler {scheduler!r} is not one this server's {node} takes: "
                f"{', '.join(map(str, choices))}",
                input="scheduler", rule="one of the server's schedulers",
            )

    async def _model_of(
        self, kind: str, wanted: str | ModelConfig, base: str, *, input: str
    ) -> ModelConfig:
        """The one ``base`` model of type ``kind`` (vae, lora) ``wanted`` names."""
        if isinstance(wanted, ModelConfig):
            return wanted
        rules = ModelWanted(usable=lambda _: True, one=f"{base} {kind} model",
                            many=f"{base} {kind} models", what=kind, input=input)
        return choose_installed(await self._models.list(type=kind, base=base), wanted, rules)

    async def _flux_extras(self) -> dict[str, ModelConfig]:
        """FLUX needs a T5 encoder, a CLIP-L embedder and a FLUX VAE: the first of each."""
        extras: dict[str, ModelConfig] = {}
        for kind, base in (("t5_encoder", None), ("clip_embed", None), ("vae", "flux")):
            found = await self._models.list(type=kind, base=base)
            if not found:
                raise errors.ModelChoiceError(
                    f"a FLUX graph needs a {kind} model{' of base flux' if base else ''}; "
                    "none is installed", candidates=[],
                )
            extras[kind] = found[0]
        return extras

    async def generate(
        self, prompt: str, options: GenerateOptions, *, seed: int | None = None,
        detach: bool = False,
    ) -> WorkflowRun:
        """Enqueue one text-to-image run; see :meth:`AsyncClient.generate`."""
        check_keywords("AsyncClient.generate", options, GenerateOptions.__annotations__)
        check_bool("detach", detach)
        spec = await self.spec(prompt, options, seed=seed)
        return await self._runs.submit(
            text_to_image_graph(spec), origin=ORIGIN, destination=DESTINATION, detach=detach
        )

    async def generate_batch(
        self,
        prompts: str | Sequence[str],
        options: GenerateOptions,
        *,
        seeds: int | Iterable[int] | None = None,
        detach: bool = False,
    ) -> BatchRun:
        """Enqueue every prompt with every seed in ONE request; see
        :meth:`AsyncClient.generate_batch`."""
        check_keywords("AsyncClient.generate_batch", options, GenerateOptions.__annotations__)
        check_bool("detach", detach)
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not texts:
            raise errors.ValidationError(
                "prompts must hold at least one prompt", input="prompts", rule="non-empty"
            )
        for text in texts:
            _check_text("prompts", text)
        if isinstance(seeds, int):
            seed_list: list[int] | None = [seeds]
        else:
            seed_list = None if seeds is None else list(seeds)
        if seed_list is not None:
            if not seed_list:
                raise errors.ValidationError(
                    "seeds must hold at least one seed", input="seeds", rule="non-empty"
                )
            for value in seed_list:
                check_int("seeds", value, minimum=0, maximum=MAX_SEED)
            pairs = [(text, seed) for text in texts for seed in seed_list]
        else:
            pairs = [(text, random.randint(0, MAX_SEED)) for text in texts]
        spec = await self.spec(texts[0], options, seed=pairs[0][1])
        data: list[list[dict[str, Any]]] = [[
            {"node_path": "positive_prompt", "field_name": "value", "items": [p for p, _ in pairs]},
            {"node_path": "seed", "field_name": "value", "items": [s for _, s in pairs]},
        ]]
        body = {"batch": {"graph": text_to_image_graph(spec), "data": data, "runs": 1,
                          "origin": ORIGIN, "destination": DESTINATION}, "prepend": False}
        return await self._runs.enqueue(body, detach=detach, names=BATCH_NAMES)

    async def copy_image_to_board(self, image: ImageLike, board: BoardRef) -> ImageDTO:
        """Save a copy of ``image`` on ``board`` (a new image; the original stays put).

        The name is checked and the image read first: a missing image or a path-like name
        raises (NotFoundError / ValidationError naming it) before anything is enqueued."""
        name = (await self._images.get(image)).image_name
        board_id = await self._boards.resolve(board)
        node: dict[str, Any] = {
            "id": "save_image", "type": "save_image", "image": {"image_name": name},
            "is_intermediate": False, "use_cache": False,
        }
        if board_id != UNCATEGORIZED:
            node["board"] = {"board_id": board_id}
        graph = {"id": "copy_image_graph", "nodes": {"save_image": node}, "edges": []}
        run = await self._runs.submit(graph, origin=ORIGIN, destination=DESTINATION)
        result = await run
        return await self._images.get(result.images[0].image_name)
