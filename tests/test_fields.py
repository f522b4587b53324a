"""The IvkField system: types and constraints from the server's schemas, offline inference,
the open registry, and errors that name the input and the rule before any request."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import pytest

from invokeai_client import ValidationError
from invokeai_client.fields import (
    UNSET,
    AnyField,
    BoardField,
    CollectionField,
    ColorField,
    EnumField,
    FloatField,
    ImageField,
    IntegerField,
    InvocationSchemas,
    IvkField,
    LocalImage,
    ModelIdentifierField,
    NumberField,
    StringField,
    UNetField,
    default_registry,
    register_field,
)
from invokeai_client.fields.registry import FieldRegistry
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

BUNDLED = InvocationSchemas.bundled()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def field(node_type: str, name: str) -> IvkField[Any]:
    made = BUNDLED.field(node_type, name, node_id="n1")
    assert made is not None, (node_type, name)
    return made


def example_handle(name: str, typed: bool = True) -> WorkflowHandle:
    definition = WorkflowDefinition.from_file(examples.path(name))
    return WorkflowHandle(definition, schemas=BUNDLED if typed else None)


# -- numbers -------------------------------------------------------------------------------


def test_integer_constraints_from_the_schema_name_input_and_rule() -> None:
    steps = field("denoise_latents", "steps")
    assert isinstance(steps, IntegerField)
    assert steps.gt == 0
    steps.set(30)
    with pytest.raises(ValidationError) as caught:
        steps.set(0)
    assert caught.value.rule == "> 0"
    assert "n1.steps" in str(caught.value)
    assert "greater than 0" in str(caught.value)
    with pytest.raises(ValidationError, match="expected an integer"):
        steps.set("30")
    with pytest.raises(ValidationError, match="boolean"):
        steps.set(True)
    with pytest.raises(ValidationError, match=r"expected an integer, got 2\.5"):
        steps.set(2.5)
    steps.set(12.0)
    assert steps.value == 12
    assert isinstance(steps.value, int)
    assert steps.value == 12


def test_float_range_and_multiple_of() -> None:
    start = field("denoise_latents", "denoising_start")
    with pytest.raises(ValidationError) as caught:
        start.set(1.5)
    assert caught.value.rule == "<= 1"
    width = field("noise", "width")
    assert width.multiple_of == 8
    with pytest.raises(ValidationError, match="multiple of 8"):
        width.set(1001)
    width.set(1024)
    with pytest.raises(ValidationError, match="finite"):
        field("float", "value").set(float("nan"))


def test_a_float_whose_default_is_integral_stays_a_float() -> None:
    # The seed client typed such inputs as integers, so 0.5 was refused. Schema: float.
    h = example_handle("arithmetic-form")
    factor = h.input("Factor")
    assert isinstance(factor.field, FloatField)
    assert factor.value == 2.0
    assert isinstance(factor.value, float)
    h.set("Factor", 0.5)
    h.set("Factor", 3)
    assert h.get("Factor") == 3.0
    assert isinstance(h.get("Factor"), float)
    graph = h.build_graph()
    assert isinstance(graph["nodes"][factor.node_id]["value"], float)


def test_offline_an_integral_number_is_not_forced_to_integer() -> None:
    h = example_handle("arithmetic-form", typed=False)
    factor = h.input("Factor")
    assert isinstance(factor.field, NumberField)
    h.set("Factor", 0.5)
    assert h.get("Factor") == 0.5
    h.set("Multiplier", 2)
    assert h.get("Multiplier") == 2


def test_cfg_scale_takes_a_float_or_a_list_of_floats() -> None:
    cfg = field("denoise_latents", "cfg_scale")
    assert cfg.accepts_list
    cfg.set(7)
    assert cfg.value == 7.0
    cfg.set([7, 6.5])
    assert cfg.value == [7.0, 6.5]


# -- strings, booleans, enums --------------------------------------------------------------


def test_string_enum_and_boolean() -> None:
    string = field("string", "value")
    string.set("a cat")
    with pytest.raises(ValidationError, match="expected a string"):
        string.set(3)
    scheduler = field("denoise_latents", "scheduler")
    assert isinstance(scheduler, EnumField)
    assert "euler" in scheduler.options
    with pytest.raises(ValidationError) as caught:
        scheduler.set("warp-drive")
    assert caught.value.rule == "one of the options"

    class Mode(enum.Enum):
        RGBA = "RGBA"

    mode = field("blank_image", "mode")
    mode.set(Mode.RGBA)
    assert mode.value == "RGBA"
    flag = field("boolean", "value")
    with pytest.raises(ValidationError, match="True or False"):
        flag.set(1)


def test_none_only_where_the_schema_allows_null() -> None:
    with pytest.raises(ValidationError, match="None is not allowed"):
        field("integer", "value").set(None)
    board = field("save_image", "board")
    assert board.nullable
    board.set(None)
    assert board.value is None


def test_form_dropdown_options_and_slider_bounds_narrow_the_field() -> None:
    h = example_handle("image-pipeline")
    radius = h.input("Radius").field
    assert (radius.ge, radius.le) == (0, 64)
    with pytest.raises(ValidationError, match="maximum 64"):
        h.set("Radius", 100)
    s = StringField(name="s", options=["a", "b"])
    with pytest.raises(ValidationError, match="options"):
        s.set("c")


# -- resources -----------------------------------------------------------------------------


def test_color_accepts_dicts_tuples_and_hex() -> None:
    color = field("blank_image", "color")
    assert isinstance(color, ColorField)
    color.set("#ff8000")
    assert color.value == {"r": 255, "g": 128, "b": 0, "a": 255}
    color.set((1, 2, 3, 4))
    assert color.value == {"r": 1, "g": 2, "b": 3, "a": 4}
    color.set({"r": 9, "g": 9, "b": 9})
    assert color.value["a"] == 255
    with pytest.raises(ValidationError, match=r"0\.\.255"):
        color.set((300, 0, 0))


@pytest.mark.parametrize(
    ("node_type", "name"),
    [
        ("img_paste", "base_image"),
        ("img_paste", "mask"),
        ("img_mul", "image2"),
        ("color_correct", "color_reference"),
        ("save_image", "image"),
    ],
)
def test_an_image_input_named_anything_is_an_image_field(node_type: str, name: str) -> None:
    made = field(node_type, name)
    assert isinstance(made, ImageField)
    made.set("3f2a.png")
    assert made.value == {"image_name": "3f2a.png"}
    assert made.to_api() == {"image_name": "3f2a.png"}


def test_image_values_local_and_remote(tmp_path: Path) -> None:
    image = field("save_image", "image")
    image.set(tmp_path / "cat.png")
    assert isinstance(image.value, LocalImage)
    assert image.value.kind == "path"
    image.set("./relative/cat.png")
    assert isinstance(image.value, LocalImage)
    image.set(PNG)
    assert image.value.kind == "bytes"
    with pytest.raises(ValidationError, match="not an image"):
        image.set(b"plain text")
    with pytest.raises(ValidationError, match="image"):
        image.set(42)
    with pytest.raises(ValidationError, match="uploaded at submit"):
        image.to_api()

    class DTO:
        image_name = "from-dto.png"

    image.set(DTO())
    assert image.value == {"image_name": "from-dto.png"}
    pil = pytest.importorskip("PIL.Image")
    image.set(pil.new("RGB", (4, 4)))
    assert image.value.kind == "pil"


def test_board_values() -> None:
    board = field("save_image", "board")
    assert isinstance(board, BoardField)
    for value, expected in [
        ("auto", "auto"),
        ("none", "none"),
        ("b-1", {"board_id": "b-1"}),
        ({"board_id": "b-2"}, {"board_id": "b-2"}),
    ]:
        board.set(value)
        assert board.value == expected
    with pytest.raises(ValidationError, match="board"):
        board.set(12)


def test_model_identifier_and_hints() -> None:
    model = field("sdxl_model_loader", "model")
    assert isinstance(model, ModelIdentifierField)
    ident = {"key": "k", "hash": "blake3:x", "name": "m", "base": "sdxl", "type": "main"}
    model.set(ident)
    assert model.to_api() == ident
    with pytest.raises(ValidationError, match="missing"):
        model.set({"key": "k"})
    with pytest.raises(ValidationError) as caught:
        model.set({**ident, "type": "lora"})
    assert "main" in str(caught.value)

    class Config:  # any object with the identifier attributes, e.g. a model config DTO
        key, hash, name, base, type = "k2", "h2", "n2", "sdxl", "main"

    model.set(Config())
    assert model.value["key"] == "k2"
    # open enums: a base this SDK never heard of is fine where the node allows it
    free = ModelIdentifierField(name="m")
    free.set({**ident, "base": "some-future-base"})


def test_model_carrying_and_resource_types_come_from_the_schema() -> None:
    assert isinstance(field("denoise_latents", "unet"), UNetField)
    assert type(field("l2i", "vae")).__name__ == "VAEField"
    assert type(field("flux_denoise", "transformer")).__name__ == "TransformerField"
    assert type(field("l2i", "latents")).__name__ == "LatentsField"
    conditioning = field("denoise_latents", "positive_conditioning")
    assert type(conditioning).__name__ == "ConditioningField"
    assert conditioning.accepts_list
    latents = field("l2i", "latents")
    latents.set({"latents_name": "abc"})
    with pytest.raises(ValidationError, match="latents_name"):
        latents.set({"seed": 1})


def test_collections_check_every_item() -> None:
    integers = field("integer_batch", "integers")
    assert isinstance(integers, CollectionField)
    assert integers.min_items == 1
    integers.set([1, 2, 3])
    with pytest.raises(ValidationError, match="item 1"):
        integers.set([1, "2"])
    with pytest.raises(ValidationError, match="fewer than the minimum 1"):
        integers.set([])
    images = field("image_collection", "collection")
    images.set(["a.png", {"image_name": "b.png"}])
    assert images.to_api() == [{"image_name": "a.png"}, {"image_name": "b.png"}]


# -- inference and the registry ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        (3, NumberField),
        (2.5, FloatField),
        ("x", StringField),
        ({"image_name": "a"}, ImageField),
        ({"board_id": "b"}, BoardField),
        ({"r": 1, "g": 2, "b": 3, "a": 4}, ColorField),
        ({"key": "k", "hash": "h", "name": "n", "base": "b", "type": "t"}, ModelIdentifierField),
        ([1, 2], CollectionField),
        (None, AnyField),
        (UNSET, AnyField),
    ],
)
def test_offline_inference_from_values(value: Any, cls: type[IvkField[Any]]) -> None:
    assert type(default_registry.infer(value, name="v")) is cls


def test_registered_field_class_for_a_custom_node() -> None:
    registry = FieldRegistry()

    @register_field(node_type="my_pack_node", field_name="strength", registry=registry)
    class Strength(FloatField):
        kind = "strength"

        def _coerce(self, value: Any) -> float:
            number = super()._coerce(value)
            if number > 1:
                from invokeai_client.fields import FieldRuleError

                raise FieldRuleError("<= 1", "strength is a fraction")
            return number

    data = json.loads(examples.path("notes-collapsed").read_text())
    node = data["nodes"][1]
    node["data"]["type"] = "my_pack_node"
    node["data"]["inputs"]["strength"] = {"name": "strength", "label": "Strength", "value": 0.5}
    data["form"]["elements"]["root"]["data"]["children"].append("node-field-strength")
    data["form"]["elements"]["node-field-strength"] = {
        "id": "node-field-strength",
        "type": "node-field",
        "parentId": "root",
        "data": {
            "fieldIdentifier": {"nodeId": node["id"], "fieldName": "strength"},
            "showDescription": False,
        },
    }
    h = WorkflowHandle(WorkflowDefinition.from_dict(data), registry=registry)
    assert isinstance(h.field("Strength"), Strength)
    with pytest.raises(ValidationError, match="fraction"):
        h.set("Strength", 2)
    with pytest.raises(ValidationError, match="IvkField subclass"):
        registry.register(dict, schema="X")  # type: ignore[arg-type]


def test_registered_schema_type_wins() -> None:
    registry = FieldRegistry()

    class Special(ImageField):
        kind = "special image"

    registry.register(Special, schema="ImageField")
    made = registry.from_schema(BUNDLED.get("save_image").inputs["image"], BUNDLED.components)  # type: ignore[union-attr]
    assert isinstance(made, Special)


def test_describe_and_repr_are_readable() -> None:
    steps = field("denoise_latents", "steps")
    assert steps.describe() == "integer > 0"
    assert "steps" in repr(steps)
