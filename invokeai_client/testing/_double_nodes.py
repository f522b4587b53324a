"""The nodes the InvokeAI double can execute: model-free invocations of InvokeAI 6.14.2.

Each :class:`NodeSpec` holds what the real server declares for a node type (its input fields
with their types, defaults and constraints, its output type, its Python class name, whether
it is cached by default) and a small function that computes the same result. Images are
real PNGs made with Pillow; image nodes run in a worker thread.

Node types that InvokeAI has but the double cannot execute (model nodes and the like) are
still accepted at enqueue, as the real server does, and fail when they run.
"""

from __future__ import annotations

import builtins
import io
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from pydantic import Field as PydanticField

from .double import DoubleImage

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "NODE_SPECS",
    "REAL_NODE_TYPES",
    "FieldSpec",
    "ImageRecordNotFoundException",
    "MissingInputException",
    "NodeContext",
    "NodeInputError",
    "NodeSpec",
    "UnsupportedNodeError",
    "kinds_compatible",
]

# Every invocation type tag of InvokeAI 6.14.2 (its Graph.nodes union), for the 422 that an
# unknown tag gets and to tell "unknown" from "known, but not executable by the double".
_REAL_NODE_TYPES = """
add alibabacloud_image_generation alpha_mask_to_tensor anima_denoise anima_denoise_meta
anima_i2l anima_l2i anima_lllite anima_lora_collection_loader anima_lora_loader
anima_model_loader anima_text_encoder apply_mask_to_image apply_tensor_mask_to_image
blank_image boolean boolean_collection bounding_box calculate_image_tiles
calculate_image_tiles_even_split calculate_image_tiles_min_overlap call_saved_workflow
canny_edge_detection canvas_output canvas_paste_back canvas_v2_mask_and_crop clip_skip
cogview4_denoise cogview4_i2l cogview4_l2i cogview4_model_loader cogview4_text_encoder collect
color color_correct color_map compel conditioning conditioning_collection content_shuffle
controlnet core_metadata create_denoise_mask create_gradient_mask crop_image_to_bounding_box
crop_latents cv_inpaint decode_watermark denoise_latents denoise_latents_meta
depth_anything_depth_estimation div dw_openpose_detection dynamic_prompt
ernie_image_denoise ernie_image_model_loader ernie_image_prompt_enhancer
ernie_image_text_encoder ernie_image_vae_decode esrgan expand_mask_with_fade
extract_video_range face_identifier face_mask_detection face_off float float_batch
float_collection float_generator float_math float_range float_to_int flux2_denoise
flux2_dev_lora_collection_loader flux2_dev_lora_loader flux2_dev_model_loader
flux2_dev_text_encoder flux2_klein_lora_collection_loader flux2_klein_lora_loader
flux2_klein_model_loader flux2_klein_text_encoder flux2_pid_decode flux2_vae_decode
flux2_vae_encode flux_control_lora_loader flux_controlnet flux_denoise flux_denoise_meta
flux_fill flux_ip_adapter flux_kontext flux_kontext_image_prep flux_lora_collection_loader
flux_lora_loader flux_model_loader flux_pid_decode flux_redux flux_text_encoder
flux_vae_decode flux_vae_encode freeu gemini_image_generation gemma2_encoder_loader
get_image_mask_bounding_box grounding_dino hed_edge_detection heuristic_resize i2l
ideal_size ideogram4_caption_builder ideogram4_denoise ideogram4_l2i ideogram4_model_loader
ideogram4_text_encoder if image image_batch image_collection image_generator
image_mask_to_tensor image_panel_layout img_blur img_chan img_channel_multiply
img_channel_offset img_conv img_crop img_hue_adjust img_hue_adjust_oklch img_ilerp img_lerp
img_mul img_noise img_nsfw img_pad_crop img_paste img_resize img_scale img_watermark
infill_cv2 infill_lama infill_patchmatch infill_rgba infill_tile integer integer_batch
integer_collection integer_generator integer_math invert_tensor_mask invokeai_ealightness
invokeai_img_blend invokeai_img_composite invokeai_img_dilate_erode invokeai_img_enhance
invokeai_img_hue_adjust_plus invokeai_img_val_thresholds ip_adapter iterate
krea2_conditioning_rebalance krea2_denoise krea2_lora_collection_loader krea2_lora_loader
krea2_model_loader
krea2_seed_variance krea2_style_reference krea2_text_encoder l2i latents latents_collection
lblend lineart_anime_edge_detection lineart_edge_detection llava_onevision_vllm
lora_collection_loader lora_loader lora_selector lresize lscale main_model_loader
mask_combine mask_edge mask_from_id mediapipe_face_detection merge_metadata merge_tiles_to_image
metadata metadata_field_extractor metadata_from_image metadata_item metadata_item_linked
metadata_to_bool metadata_to_bool_collection metadata_to_controlnets metadata_to_float
metadata_to_float_collection metadata_to_integer metadata_to_integer_collection
metadata_to_ip_adapters metadata_to_lora_collection metadata_to_loras metadata_to_model
metadata_to_scheduler metadata_to_sdlx_loras metadata_to_sdxl_model metadata_to_string
metadata_to_string_collection metadata_to_t2i_adapters metadata_to_vae mlsd_detection
model_identifier mul noise normal_map openai_image_generation pair_tile_image
paste_image_into_bounding_box pbr_maps pid_decoder_loader pid_upscale pidi_edge_detection
prompt_from_file prompt_template qwen_image_denoise qwen_image_i2l qwen_image_l2i
qwen_image_lora_collection_loader qwen_image_lora_loader qwen_image_model_loader
qwen_image_pid_decode qwen_image_text_encoder rand_float rand_int random_range range
range_of_size rectangle_mask round_float save_image save_image_to_file scheduler
sd3_denoise sd3_i2l sd3_l2i sd3_model_loader sd3_pid_decode sd3_text_encoder seamless
sdxl_compel_prompt sdxl_lora_collection_loader sdxl_lora_loader sdxl_model_loader
sdxl_pid_decode sdxl_refiner_compel_prompt sdxl_refiner_model_loader seedream_image_generation
segment_anything show_image spandrel_image_to_image spandrel_image_to_image_autoscale string
string_batch string_collection string_generator string_join string_join_three string_replace
string_split string_split_neg sub t2i_adapter tensor_mask_to_image text_llm
text_llm_with_preset tile_to_properties tiled_multi_diffusion_denoise_latents tomask
unsharp_mask unsharp_mask_oklab vae_loader video video_concat video_frame_extract
wan_denoise wan_i2l wan_i2v_ideal_dimensions wan_l2i wan_l2v wan_lora_collection_loader
wan_lora_loader wan_model_loader wan_ref_image_encoder wan_text_encoder
wan_ti2v_ideal_dimensions wan_video_denoise workflow_return workflow_return_get
workflow_return_value z_image_control z_image_denoise z_image_denoise_meta z_image_i2l
z_image_l2i z_image_lora_collection_loader z_image_lora_loader z_image_model_loader
z_image_pid_decode z_image_seed_variance_enhancer z_image_text_encoder
"""
REAL_NODE_TYPES: frozenset[str] = frozenset(_REAL_NODE_TYPES.split())
"""Every node type tag InvokeAI 6.14.2 accepts in a graph."""


# -- errors a node raises at run time (their class names become the item's error_type) ----


class MissingInputException(Exception):
    """A required input has neither a value nor a connection (InvokeAI's own name)."""

    def __init__(self, node_type: str, field_name: str) -> None:
        super().__init__(f"Node {node_type} missing value or connection for field {field_name}")


class ImageRecordNotFoundException(Exception):
    """An input image name is not in the image store (InvokeAI's own name)."""

    def __init__(self) -> None:
        super().__init__("Image record not found")


class NodeInputError(ValueError):
    """A value that arrived over an edge broke the node's own validation (InvokeAI's name):
    the node fails as it is prepared, before it starts (e.g. ``integer_math`` DIV, b=0)."""

    def __init__(self, exec_id: str, field_name: str) -> None:
        super().__init__(f"Node {exec_id} has invalid incoming input for {field_name}")
        self.exec_id = exec_id


class UnsupportedNodeError(Exception):
    """A real InvokeAI node type that the double accepts but cannot execute."""

    def __init__(self, node_type: str) -> None:
        super().__init__(
            f"The InvokeAI double cannot execute node type {node_type!r}; it runs only "
            "model-free nodes (see invokeai_client.testing._double_nodes.NODE_SPECS)"
        )


# -- field values ------------------------------------------------------------------------


class _Field(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageField(_Field):
    image_name: str


class BoardField(_Field):
    board_id: str


class ColorField(_Field):
    r: Annotated[int, PydanticField(ge=0, le=255)]
    g: Annotated[int, PydanticField(ge=0, le=255)]
    b: Annotated[int, PydanticField(ge=0, le=255)]
    a: Annotated[int, PydanticField(ge=0, le=255)]


_KIND_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "image": Union[ImageField, None],  # noqa: UP007 (a runtime type expression)
    "color": ColorField,
    "board": Union[BoardField, None],  # noqa: UP007
    "metadata": Union[dict[str, Any], None],  # noqa: UP007
    "any": Any,
    "list[int]": list[int],
    "list[float]": list[float],
    "list[str]": list[str],
    "list[bool]": list[bool],
    "list[image]": list[ImageField],
    "list[any]": list[Any],
}


def kinds_compatible(source: str, destination: str) -> bool:
    """Whether an edge may connect an output of kind ``source`` to an input of kind
    ``destination`` (InvokeAI's rules: equal, Any on either side, int to float, numbers to
    str)."""
    if source == destination or source == "any" or destination == "any":
        return True
    if source == "int" and destination == "float":
        return True
    if source in ("int", "float") and destination == "str":
        return True
    # A list of Any (a collector's output) fits any list input, and the other way round.
    if source == "list[any]" and destination.startswith("list["):
        return True
    return destination == "list[any]" and source.startswith("list[")


@dataclass(frozen=True)
class FieldSpec:
    """One input field of a node type, as InvokeAI 6.14.2 declares it."""

    name: str
    kind: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    @cached_property
    def annotation(self) -> Any:
        base: Any = Literal[self.choices] if self.choices else _KIND_TYPES[self.kind]
        if self.required and self.kind not in ("image", "board", "metadata", "any"):
            base = Union[base, None]  # noqa: UP007 (required inputs may be omitted until run time)
        if self.gt is not None or self.ge is not None or self.le is not None:
            base = Annotated[base, PydanticField(gt=self.gt, ge=self.ge, le=self.le)]
        return base

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """Validates one value for this field (used for batch data substitutions)."""
        return TypeAdapter(self.annotation, config=ConfigDict(coerce_numbers_to_str=True))


NodeRun = Callable[[dict[str, Any], "NodeContext"], dict[str, Any]]
NodeCheck = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class NodeSpec:
    """A node type the double can run: InvokeAI's declaration plus how to compute it."""

    type: str
    class_name: str
    fields: tuple[FieldSpec, ...]
    output_type: str
    outputs: dict[str, str]
    run: NodeRun
    use_cache: bool = True
    with_board: bool = False
    with_metadata: bool = False
    saves_image: bool = False
    uses_images: bool = False
    check: NodeCheck | None = None
    field_map: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", {f.name: f for f in self.all_fields})

    @property
    def mixin_fields(self) -> tuple[FieldSpec, ...]:
        """``board`` and ``metadata``: the server serializes them before ``id``."""
        mixins: list[FieldSpec] = []
        if self.with_board:
            mixins.append(FieldSpec("board", "board"))
        if self.with_metadata:
            mixins.append(FieldSpec("metadata", "metadata"))
        return tuple(mixins)

    @property
    def all_fields(self) -> tuple[FieldSpec, ...]:
        return (*self.mixin_fields, *self.fields)

    def serialize(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The node as the server echoes it: mixins, id, flags, fields, then ``type``."""
        node: dict[str, Any] = {spec.name: values.get(spec.name) for spec in self.mixin_fields}
        node["id"] = values["id"]
        node["is_intermediate"] = values["is_intermediate"]
        node["use_cache"] = values["use_cache"]
        for spec in self.fields:
            node[spec.name] = values.get(spec.name)
        node["type"] = self.type
        return node

    @cached_property
    def model(self) -> builtins.type[BaseModel]:
        """A pydantic model of the node, for enqueue-time validation with pydantic's errors."""
        definitions: dict[str, Any] = {
            "id": (Union[str, None], None),  # noqa: UP007
            "is_intermediate": (bool, False),
            "use_cache": (bool, self.use_cache),
            "type": (Literal.__getitem__(self.type), self.type),
        }
        for spec in self.all_fields:
            default = spec.default
            if spec.kind == "color" and isinstance(default, dict):
                default = ColorField.model_validate(default)
            definitions[spec.name] = (spec.annotation, default)
        model: builtins.type[BaseModel] = create_model(
            self.class_name,
            __config__=ConfigDict(extra="ignore", coerce_numbers_to_str=True),
            **definitions,
        )
        return model


# -- the context a node runs with --------------------------------------------------------


class NodeContext:
    """What a running node may use: the image store (read) and a way to save images.

    Saved images are collected in :attr:`saved` and added to the store by the queue, on the
    event loop, after the node returns (image nodes run in a worker thread).
    """

    def __init__(
        self,
        images: Mapping[str, DoubleImage],
        *,
        node: dict[str, Any],
        session_id: str,
        user_id: str,
        graph_json: Callable[[], str],
        workflow_json: str | None,
    ) -> None:
        self._images = images
        self._node = node
        self._session_id = session_id
        self._user_id = user_id
        self._graph_json = graph_json
        self._workflow_json = workflow_json
        self.saved: list[DoubleImage] = []

    def load(self, value: Any) -> PILImage:
        """Open an input image (an ``{"image_name": ...}`` value) from the store."""
        from PIL import Image

        name = value.get("image_name") if isinstance(value, dict) else None
        record = self._images.get(str(name)) if name is not None else None
        if record is None:
            raise ImageRecordNotFoundException()
        image = Image.open(io.BytesIO(record.data))
        image.load()
        return image

    def save(self, image: PILImage) -> dict[str, Any]:
        """Save ``image`` as a new PNG record; returns the node's ``image_output`` fields."""
        from PIL.PngImagePlugin import PngInfo

        node = self._node
        graph = self._graph_json()
        info = PngInfo()
        metadata = node.get("metadata")
        if metadata is not None:
            info.add_text("invokeai_metadata", json.dumps(metadata))
        if self._workflow_json is not None:
            info.add_text("invokeai_workflow", self._workflow_json)
        info.add_text("invokeai_graph", graph)
        buffer = io.BytesIO()
        image.save(buffer, "PNG", pnginfo=info, compress_level=1)
        board = node.get("board")
        record = DoubleImage(
            image_name=f"{uuid.uuid4()}.png",
            data=buffer.getvalue(),
            width=image.width,
            height=image.height,
            is_intermediate=bool(node.get("is_intermediate")),
            session_id=self._session_id,
            node_id=str(node["id"]),
            board_id=board.get("board_id") if isinstance(board, dict) else None,
            metadata=metadata if isinstance(metadata, dict) else None,
            workflow=self._workflow_json,
            graph=graph,
            user_id=self._user_id,
        )
        self.saved.append(record)
        return _image_output(record.image_name, image.width, image.height)


def _image_output(name: str, width: int, height: int) -> dict[str, Any]:
    return {"image": {"image_name": name}, "width": width, "height": height}


# -- node implementations ----------------------------------------------------------------


def _value(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    return {"value": v["value"]}


def _collection(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    return {"collection": list(v["collection"])}


def _int_op(op: Callable[[int, int], int]) -> NodeRun:
    return lambda v, _: {"value": op(v["a"], v["b"])}


def _integer_math(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    a, b, operation = v["a"], v["b"], v["operation"]
    results: dict[str, Callable[[], Any]] = {
        "ADD": lambda: a + b,
        "SUB": lambda: a - b,
        "MUL": lambda: a * b,
        "DIV": lambda: int(a / b),
        "EXP": lambda: a**b,
        "MOD": lambda: a % b,
        "ABS": lambda: abs(a),
        "MIN": lambda: min(a, b),
        "MAX": lambda: max(a, b),
    }
    return {"value": int(results[operation]())}


def _check_integer_math(v: dict[str, Any]) -> list[tuple[str, str]]:
    if v["operation"] in ("DIV", "MOD") and v["b"] == 0:
        return [("b", "Cannot divide by zero")]
    if v["operation"] == "EXP" and v["b"] < 0:
        return [("b", "Result of exponentiation is not an integer")]
    return []


def _float_math(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    a, b, operation = v["a"], v["b"], v["operation"]
    results: dict[str, Callable[[], Any]] = {
        "ADD": lambda: a + b,
        "SUB": lambda: a - b,
        "MUL": lambda: a * b,
        "DIV": lambda: a / b,
        "EXP": lambda: a**b,
        "SQRT": lambda: math.sqrt(a),
        "ABS": lambda: abs(a),
        "MIN": lambda: min(a, b),
        "MAX": lambda: max(a, b),
    }
    return {"value": float(results[operation]())}


def _check_float_math(v: dict[str, Any]) -> list[tuple[str, str]]:
    if v["operation"] == "DIV" and v["b"] == 0:
        return [("b", "Cannot divide by zero")]
    if v["operation"] == "SQRT" and v["a"] < 0:
        return [("a", "Cannot find the square root of a negative number")]
    if v["operation"] == "EXP" and v["a"] == 0 and v["b"] < 0:
        return [("b", "Cannot raise zero to a negative power")]
    return []


def _float_to_int(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    value, multiple = v["value"] / v["multiple"], v["multiple"]
    rounding: dict[str, Callable[[float], float]] = {
        "Nearest": round,
        "Floor": math.floor,
        "Ceiling": math.ceil,
        "Truncate": math.trunc,
    }
    return {"value": int(rounding[v["method"]](value) * multiple)}


def _string_split(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    parts = v["string"].split(v["delimiter"], 1)
    return {"string_1": parts[0], "string_2": parts[1] if len(parts) == 2 else ""}


def _string_replace(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    if v["use_regex"]:
        return {"value": re.sub(v["search_string"], v["replace_string"], v["string"])}
    return {"value": v["string"].replace(v["search_string"], v["replace_string"])}


def _blank_image(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import Image

    color = v["color"]
    channels = (color["r"], color["g"], color["b"], color["a"])[: len(v["mode"])]
    return ctx.save(Image.new(v["mode"], (v["width"], v["height"]), channels))


_RESAMPLE = {"nearest": 0, "box": 4, "bilinear": 2, "hamming": 5, "bicubic": 3, "lanczos": 1}


def _img_resize(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    image = ctx.load(v["image"])
    size = (v["width"], v["height"])
    return ctx.save(image.resize(size, resample=_RESAMPLE[v["resample_mode"]]))


def _img_scale(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    image = ctx.load(v["image"])
    size = (int(image.width * v["scale_factor"]), int(image.height * v["scale_factor"]))
    return ctx.save(image.resize(size, resample=_RESAMPLE[v["resample_mode"]]))


def _img_blur(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import ImageFilter

    image = ctx.load(v["image"])
    blur: Any = ImageFilter.GaussianBlur if v["blur_type"] == "gaussian" else ImageFilter.BoxBlur
    return ctx.save(image.filter(blur(v["radius"])))


def _img_crop(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import Image

    image = ctx.load(v["image"])
    cropped = Image.new("RGBA", (v["width"], v["height"]), (0, 0, 0, 0))
    cropped.paste(image, (-v["x"], -v["y"]))
    return ctx.save(cropped)


def _img_paste(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import Image

    base = ctx.load(v["base_image"])
    image = ctx.load(v["image"])
    mask = ctx.load(v["mask"]).convert("L") if v.get("mask") else None
    result = Image.new("RGBA", base.size, (0, 0, 0, 0))
    result.paste(base, (0, 0))
    result.paste(image, (v["x"], v["y"]), mask)
    return ctx.save(result)


def _img_conv(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return ctx.save(ctx.load(v["image"]).convert(v["mode"]))


def _img_chan(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return ctx.save(ctx.load(v["image"]).convert("RGBA").getchannel(v["channel"]))


def _img_mul(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import ImageChops

    return ctx.save(ImageChops.multiply(ctx.load(v["image1"]), ctx.load(v["image2"])))


def _img_lerp(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    low, high = v["min"], v["max"]
    return ctx.save(ctx.load(v["image"]).point(lambda x: int(x / 255 * (high - low) + low)))


def _img_ilerp(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    low, high = v["min"], v["max"]
    span = float(high - low) or 1.0
    return ctx.save(
        ctx.load(v["image"]).point(lambda x: int(min(max(x - low, 0) / span, 1) * 255))
    )


def _img_noise(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Seeded noise blended in by ``amount`` (the pixels differ from InvokeAI's numpy noise;
    sizes, modes, determinism and the mask behave the same)."""
    from PIL import Image

    image = ctx.load(v["image"]).convert("RGBA")
    alpha = image.getchannel("A")
    rng = random.Random(v["seed"])
    size = (max(image.width // v["size"], 1), max(image.height // v["size"], 1))
    if v["noise_type"] == "gaussian":
        raw = rng.randbytes(size[0] * size[1] * (3 if v["noise_color"] else 1))
        noise = Image.frombytes("RGB" if v["noise_color"] else "L", size, raw).convert("RGB")
    else:
        pixels = size[0] * size[1] * (3 if v["noise_color"] else 1)
        raw = bytes(255 if rng.random() < v["amount"] else 0 for _ in range(pixels))
        noise = Image.frombytes("RGB" if v["noise_color"] else "L", size, raw).convert("RGB")
    noise = noise.resize(image.size, Image.Resampling.NEAREST)
    noisy = Image.blend(image.convert("RGB"), noise, v["amount"]).convert("RGBA")
    if v.get("mask"):
        mask = ctx.load(v["mask"]).convert("L").resize(image.size)
        noisy = Image.composite(image, noisy, mask)  # black: noise, white: no noise
    noisy.putalpha(alpha)
    return ctx.save(noisy)


def _save_image(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return ctx.save(ctx.load(v["image"]))


def _image(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    image = ctx.load(v["image"])
    return _image_output(v["image"]["image_name"], image.width, image.height)


def _iterate(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    collection = v["collection"]
    return {"item": collection[v["index"]], "index": v["index"], "total": len(collection)}


def _F(name: str, kind: str, default: Any = None, **kwargs: Any) -> FieldSpec:
    return FieldSpec(name, kind, default, **kwargs)


_RESAMPLE_MODES = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
_IMAGE = {"with_board": True, "with_metadata": True, "saves_image": True, "uses_images": True}
_INT_OUT = ("integer_output", {"value": "int"})
_FLOAT_OUT = ("float_output", {"value": "float"})
_STRING_OUT = ("string_output", {"value": "str"})
_IMAGE_OUT = ("image_output", {"image": "image", "width": "int", "height": "int"})


def _spec(
    type_: str,
    class_name: str,
    fields: tuple[FieldSpec, ...],
    output: tuple[str, dict[str, str]],
    run: NodeRun,
    **options: Any,
) -> NodeSpec:
    return NodeSpec(type_, class_name, fields, output[0], output[1], run, **options)


def _ab(default: int = 0) -> tuple[FieldSpec, ...]:
    return (_F("a", "int", default), _F("b", "int", default))


NODE_SPECS: dict[str, NodeSpec] = {
    spec.type: spec
    for spec in (
        _spec("integer", "IntegerInvocation", (_F("value", "int", 0),), _INT_OUT, _value),
        _spec("float", "FloatInvocation", (_F("value", "float", 0.0),), _FLOAT_OUT, _value),
        _spec("string", "StringInvocation", (_F("value", "str", ""),), _STRING_OUT, _value),
        _spec(
            "boolean",
            "BooleanInvocation",
            (_F("value", "bool", False),),
            ("boolean_output", {"value": "bool"}),
            _value,
        ),
        _spec(
            "color",
            "ColorInvocation",
            (_F("color", "color", {"r": 0, "g": 0, "b": 0, "a": 255}),),
            ("color_output", {"color": "color"}),
            lambda v, _: {"color": dict(v["color"])},
        ),
        _spec("add", "AddInvocation", _ab(), _INT_OUT, _int_op(lambda a, b: a + b)),
        _spec("sub", "SubtractInvocation", _ab(), _INT_OUT, _int_op(lambda a, b: a - b)),
        _spec("mul", "MultiplyInvocation", _ab(), _INT_OUT, _int_op(lambda a, b: a * b)),
        _spec("div", "DivideInvocation", _ab(), _INT_OUT, _int_op(lambda a, b: int(a / b))),
        _spec(
            "integer_math",
            "IntegerMathInvocation",
            (
                _F("operation", "str", "ADD",
                   choices=("ADD", "SUB", "MUL", "DIV", "EXP", "MOD", "ABS", "MIN", "MAX")),
                *_ab(1),
            ),
            _INT_OUT,
            _integer_math,
            check=_check_integer_math,
        ),
        _spec(
            "float_math",
            "FloatMathInvocation",
            (
                _F("operation", "str", "ADD",
                   choices=("ADD", "SUB", "MUL", "DIV", "EXP", "ABS", "SQRT", "MIN", "MAX")),
                _F("a", "float", 1.0),
                _F("b", "float", 1.0),
            ),
            _FLOAT_OUT,
            _float_math,
            check=_check_float_math,
        ),
        _spec(
            "round_float",
            "RoundInvocation",
            (_F("value", "float", 0.0), _F("decimals", "int", 0)),
            _FLOAT_OUT,
            lambda v, _: {"value": round(v["value"], v["decimals"])},
        ),
        _spec(
            "float_to_int",
            "FloatToIntegerInvocation",
            (
                _F("value", "float", 0.0),
                _F("multiple", "int", 1, ge=1),
                _F("method", "str", "Nearest", choices=("Nearest", "Floor", "Ceiling", "Truncate")),
            ),
            _INT_OUT,
            _float_to_int,
        ),
        _spec(
            "rand_int",
            "RandomIntInvocation",
            (_F("low", "int", 0), _F("high", "int", 2147483647)),
            _INT_OUT,
            lambda v, _: {"value": random.randrange(v["low"], v["high"])},
            use_cache=False,
        ),
        _spec(
            "rand_float",
            "RandomFloatInvocation",
            (_F("low", "float", 0.0), _F("high", "float", 1.0), _F("decimals", "int", 2)),
            _FLOAT_OUT,
            lambda v, _: {"value": round(random.uniform(v["low"], v["high"]), v["decimals"])},
            use_cache=False,
        ),
        _spec(
            "range",
            "RangeInvocation",
            (_F("start", "int", 0), _F("stop", "int", 10), _F("step", "int", 1)),
            ("integer_collection_output", {"collection": "list[int]"}),
            lambda v, _: {"collection": list(range(v["start"], v["stop"], v["step"]))},
        ),
        _spec(
            "range_of_size",
            "RangeOfSizeInvocation",
            (_F("start", "int", 0), _F("size", "int", 1, gt=0), _F("step", "int", 1)),
            ("integer_collection_output", {"collection": "list[int]"}),
            lambda v, _: {
                "collection": list(
                    range(v["start"], v["start"] + v["size"] * v["step"], v["step"])
                )
            },
        ),
        _spec(
            "integer_collection",
            "IntegerCollectionInvocation",
            (_F("collection", "list[int]", []),),
            ("integer_collection_output", {"collection": "list[int]"}),
            _collection,
        ),
        _spec(
            "float_collection",
            "FloatCollectionInvocation",
            (_F("collection", "list[float]", []),),
            ("float_collection_output", {"collection": "list[float]"}),
            _collection,
        ),
        _spec(
            "string_collection",
            "StringCollectionInvocation",
            (_F("collection", "list[str]", []),),
            ("string_collection_output", {"collection": "list[str]"}),
            _collection,
        ),
        _spec(
            "iterate",
            "IterateInvocation",
            (_F("collection", "list[any]", []), _F("index", "int", 0)),
            ("iterate_output", {"item": "any", "index": "int", "total": "int"}),
            _iterate,
            use_cache=False,
        ),
        _spec(
            "collect",
            "CollectInvocation",
            (_F("item", "any", None), _F("collection", "list[any]", [])),
            ("collect_output", {"collection": "list[any]"}),
            _collection,
            use_cache=False,
        ),
        _spec(
            "string_join",
            "StringJoinInvocation",
            (_F("string_left", "str", ""), _F("string_right", "str", "")),
            _STRING_OUT,
            lambda v, _: {"value": v["string_left"] + v["string_right"]},
        ),
        _spec(
            "string_join_three",
            "StringJoinThreeInvocation",
            (_F("string_left", "str", ""), _F("string_middle", "str", ""),
             _F("string_right", "str", "")),
            _STRING_OUT,
            lambda v, _: {"value": v["string_left"] + v["string_middle"] + v["string_right"]},
        ),
        _spec(
            "string_split",
            "StringSplitInvocation",
            (_F("string", "str", ""), _F("delimiter", "str", "")),
            ("string_2_output", {"string_1": "str", "string_2": "str"}),
            _string_split,
        ),
        _spec(
            "string_replace",
            "StringReplaceInvocation",
            (_F("string", "str", ""), _F("search_string", "str", ""),
             _F("replace_string", "str", ""), _F("use_regex", "bool", False)),
            _STRING_OUT,
            _string_replace,
        ),
        _spec(
            "blank_image",
            "BlankImageInvocation",
            (
                _F("width", "int", 512),
                _F("height", "int", 512),
                _F("mode", "str", "RGB", choices=("RGB", "RGBA")),
                _F("color", "color", {"r": 0, "g": 0, "b": 0, "a": 255}),
            ),
            _IMAGE_OUT,
            _blank_image,
            **_IMAGE,
        ),
        _spec(
            "img_resize",
            "ImageResizeInvocation",
            (
                _F("image", "image", required=True),
                _F("width", "int", 512, gt=0),
                _F("height", "int", 512, gt=0),
                _F("resample_mode", "str", "bicubic", choices=_RESAMPLE_MODES),
            ),
            _IMAGE_OUT,
            _img_resize,
            **_IMAGE,
        ),
        _spec(
            "img_scale",
            "ImageScaleInvocation",
            (
                _F("image", "image", required=True),
                _F("scale_factor", "float", 2.0, gt=0),
                _F("resample_mode", "str", "bicubic", choices=_RESAMPLE_MODES),
            ),
            _IMAGE_OUT,
            _img_scale,
            **_IMAGE,
        ),
        _spec(
            "img_blur",
            "ImageBlurInvocation",
            (
                _F("image", "image", required=True),
                _F("radius", "float", 8.0, ge=0),
                _F("blur_type", "str", "gaussian", choices=("gaussian", "box")),
            ),
            _IMAGE_OUT,
            _img_blur,
            **_IMAGE,
        ),
        _spec(
            "img_crop",
            "ImageCropInvocation",
            (
                _F("image", "image", required=True),
                _F("x", "int", 0),
                _F("y", "int", 0),
                _F("width", "int", 512, gt=0),
                _F("height", "int", 512, gt=0),
            ),
            _IMAGE_OUT,
            _img_crop,
            **_IMAGE,
        ),
        _spec(
            "img_paste",
            "ImagePasteInvocation",
            (
                _F("base_image", "image", required=True),
                _F("image", "image", required=True),
                _F("mask", "image"),
                _F("x", "int", 0),
                _F("y", "int", 0),
                _F("crop", "bool", False),
            ),
            _IMAGE_OUT,
            _img_paste,
            **_IMAGE,
        ),
        _spec(
            "img_conv",
            "ImageConvertInvocation",
            (
                _F("image", "image", required=True),
                _F("mode", "str", "L",
                   choices=("L", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F")),
            ),
            _IMAGE_OUT,
            _img_conv,
            **_IMAGE,
        ),
        _spec(
            "img_chan",
            "ImageChannelInvocation",
            (
                _F("image", "image", required=True),
                _F("channel", "str", "A", choices=("A", "R", "G", "B")),
            ),
            _IMAGE_OUT,
            _img_chan,
            **_IMAGE,
        ),
        _spec(
            "img_mul",
            "ImageMultiplyInvocation",
            (_F("image1", "image", required=True), _F("image2", "image", required=True)),
            _IMAGE_OUT,
            _img_mul,
            **_IMAGE,
        ),
        _spec(
            "img_lerp",
            "ImageLerpInvocation",
            (
                _F("image", "image", required=True),
                _F("min", "int", 0, ge=0, le=255),
                _F("max", "int", 255, ge=0, le=255),
            ),
            _IMAGE_OUT,
            _img_lerp,
            **_IMAGE,
        ),
        _spec(
            "img_ilerp",
            "ImageInverseLerpInvocation",
            (
                _F("image", "image", required=True),
                _F("min", "int", 0, ge=0, le=255),
                _F("max", "int", 255, ge=0, le=255),
            ),
            _IMAGE_OUT,
            _img_ilerp,
            **_IMAGE,
        ),
        _spec(
            "img_noise",
            "ImageNoiseInvocation",
            (
                _F("image", "image", required=True),
                _F("mask", "image"),
                _F("seed", "int", 0, ge=0, le=4294967295),
                _F("noise_type", "str", "gaussian", choices=("gaussian", "salt_and_pepper")),
                _F("amount", "float", 0.1, ge=0, le=1),
                _F("noise_color", "bool", True),
                _F("size", "int", 1, ge=1),
            ),
            _IMAGE_OUT,
            _img_noise,
            **_IMAGE,
        ),
        _spec(
            "save_image",
            "SaveImageInvocation",
            (_F("image", "image", required=True),),
            _IMAGE_OUT,
            _save_image,
            use_cache=False,
            **_IMAGE,
        ),
        _spec(
            "image",
            "ImageInvocation",
            (_F("image", "image", required=True),),
            _IMAGE_OUT,
            _image,
            uses_images=True,
        ),
    )
}
"""Node type -> what the double knows about it and how it runs it."""
