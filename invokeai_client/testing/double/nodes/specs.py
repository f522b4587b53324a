"""What the double knows of a node type: InvokeAI's declaration (:class:`NodeSpec`), the
errors nodes raise at run time, and the context a running node gets (:class:`NodeContext`)."""

from __future__ import annotations

import builtins
import io
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from pydantic import Field as PydanticField

from ..records import DoubleImage

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


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
            "model-free nodes (see invokeai_client.testing.double.nodes.NODE_SPECS)"
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


@dataclass(eq=False)
class NodeContext:
    """What a running node may use: the image store (read) and a way to save images.

    Saved images are collected in :attr:`saved` and added to the store by the queue, on the
    event loop, after the node returns (image nodes run in a worker thread).
    """

    images: Mapping[str, DoubleImage]
    _: KW_ONLY
    node: dict[str, Any]
    session_id: str
    user_id: str
    graph_json: Callable[[], str]
    workflow_json: str | None
    saved: list[DoubleImage] = field(default_factory=list)

    def load(self, value: Any) -> PILImage:
        """Open an input image (an ``{"image_name": ...}`` value) from the store."""
        from PIL import Image

        name = value.get("image_name") if isinstance(value, dict) else None
        record = self.images.get(str(name)) if name is not None else None
        if record is None:
            raise ImageRecordNotFoundException()
        image = Image.open(io.BytesIO(record.data))
        image.load()
        return image

    def save(self, image: PILImage) -> dict[str, Any]:
        """Save ``image`` as a new PNG record; returns the node's ``image_output`` fields."""
        from PIL.PngImagePlugin import PngInfo

        node = self.node
        graph = self.graph_json()
        info = PngInfo()
        metadata = node.get("metadata")
        if metadata is not None:
            info.add_text("invokeai_metadata", json.dumps(metadata))
        if self.workflow_json is not None:
            info.add_text("invokeai_workflow", self.workflow_json)
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
            session_id=self.session_id,
            node_id=str(node["id"]),
            board_id=board.get("board_id") if isinstance(board, dict) else None,
            metadata=metadata if isinstance(metadata, dict) else None,
            workflow=self.workflow_json,
            graph=graph,
            user_id=self.user_id,
        )
        self.saved.append(record)
        return image_output(record.image_name, image.width, image.height)


def image_output(name: str, width: int, height: int) -> dict[str, Any]:
    return {"image": {"image_name": name}, "width": width, "height": height}

