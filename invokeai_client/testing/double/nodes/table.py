"""The node types the double runs, with InvokeAI 6.14.2's declarations: :data:`NODE_SPECS`."""

from __future__ import annotations

import random
from typing import Any

from . import runs
from .specs import FieldSpec, NodeRun, NodeSpec


def _F(name: str, kind: str, default: Any = None, **kwargs: Any) -> FieldSpec:
    return FieldSpec(name, kind, default, **kwargs)


_RESAMPLE = _F(
    "resample_mode", "str", "bicubic",
    choices=("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"),
)
"""The resampling input the resize and scale nodes share (PIL's modes)."""
_IMAGE_IN = _F("image", "image", required=True)
_LEVELS = (_F("min", "int", 0, ge=0, le=255), _F("max", "int", 255, ge=0, le=255))
"""The pixel range the lerp nodes map from/to."""
_IMAGE = {"with_board": True, "with_metadata": True, "saves_image": True, "uses_images": True}
_INT_OUT = ("integer_output", {"value": "int"})
_FLOAT_OUT = ("float_output", {"value": "float"})
_STRING_OUT = ("string_output", {"value": "str"})
_INT_COLLECTION_OUT = ("integer_collection_output", {"collection": "list[int]"})
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


def _image_node(
    type_: str, class_name: str, fields: tuple[FieldSpec, ...], run: NodeRun, **options: Any
) -> NodeSpec:
    """An image node as InvokeAI declares it: ``WithBoard``, ``WithMetadata``, reads images
    and saves its result, answering an ``image_output``."""
    return _spec(type_, class_name, fields, _IMAGE_OUT, run, **_IMAGE, **options)


def _collection(type_: str, class_name: str, item: str) -> NodeSpec:
    """A primitive collection node (``integer_collection``...): its input is its output."""
    kind = f"list[{item}]"
    return _spec(
        type_, class_name, (_F("collection", kind, []),), (f"{type_}_output", {"collection": kind}),
        runs.collection,
    )


def _ab(default: int = 0) -> tuple[FieldSpec, ...]:
    return (_F("a", "int", default), _F("b", "int", default))


NODE_SPECS: dict[str, NodeSpec] = {
    spec.type: spec
    for spec in (
        _spec("integer", "IntegerInvocation", (_F("value", "int", 0),), _INT_OUT, runs.value),
        _spec("float", "FloatInvocation", (_F("value", "float", 0.0),), _FLOAT_OUT, runs.value),
        _spec("string", "StringInvocation", (_F("value", "str", ""),), _STRING_OUT, runs.value),
        _spec(
            "boolean",
            "BooleanInvocation",
            (_F("value", "bool", False),),
            ("boolean_output", {"value": "bool"}),
            runs.value,
        ),
        _spec(
            "color",
            "ColorInvocation",
            (_F("color", "color", {"r": 0, "g": 0, "b": 0, "a": 255}),),
            ("color_output", {"color": "color"}),
            lambda v, _: {"color": dict(v["color"])},
        ),
        _spec("add", "AddInvocation", _ab(), _INT_OUT, runs.int_op(lambda a, b: a + b)),
        _spec("sub", "SubtractInvocation", _ab(), _INT_OUT, runs.int_op(lambda a, b: a - b)),
        _spec("mul", "MultiplyInvocation", _ab(), _INT_OUT, runs.int_op(lambda a, b: a * b)),
        _spec("div", "DivideInvocation", _ab(), _INT_OUT, runs.int_op(lambda a, b: int(a / b))),
        _spec(
            "integer_math",
            "IntegerMathInvocation",
            (
                _F("operation", "str", "ADD",
                   choices=("ADD", "SUB", "MUL", "DIV", "EXP", "MOD", "ABS", "MIN", "MAX")),
                *_ab(1),
            ),
            _INT_OUT,
            runs.integer_math,
            check=runs.check_integer_math,
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
            runs.float_math,
            check=runs.check_float_math,
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
            runs.float_to_int,
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
            _INT_COLLECTION_OUT,
            lambda v, _: {"collection": list(range(v["start"], v["stop"], v["step"]))},
        ),
        _spec(
            "range_of_size",
            "RangeOfSizeInvocation",
            (_F("start", "int", 0), _F("size", "int", 1, gt=0), _F("step", "int", 1)),
            _INT_COLLECTION_OUT,
            lambda v, _: {
                "collection": list(
                    range(v["start"], v["start"] + v["size"] * v["step"], v["step"])
                )
            },
        ),
        _collection("integer_collection", "IntegerCollectionInvocation", "int"),
        _collection("float_collection", "FloatCollectionInvocation", "float"),
        _collection("string_collection", "StringCollectionInvocation", "str"),
        _spec(
            "iterate",
            "IterateInvocation",
            (_F("collection", "list[any]", []), _F("index", "int", 0)),
            ("iterate_output", {"item": "any", "index": "int", "total": "int"}),
            runs.iterate,
            use_cache=False,
        ),
        _spec(
            "collect",
            "CollectInvocation",
            (_F("item", "any", None), _F("collection", "list[any]", [])),
            ("collect_output", {"collection": "list[any]"}),
            runs.collection,
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
            runs.string_split,
        ),
        _spec(
            "string_replace",
            "StringReplaceInvocation",
            (_F("string", "str", ""), _F("search_string", "str", ""),
             _F("replace_string", "str", ""), _F("use_regex", "bool", False)),
            _STRING_OUT,
            runs.string_replace,
        ),
        _image_node(
            "blank_image",
            "BlankImageInvocation",
            (
                _F("width", "int", 512),
                _F("height", "int", 512),
                _F("mode", "str", "RGB", choices=("RGB", "RGBA")),
                _F("color", "color", {"r": 0, "g": 0, "b": 0, "a": 255}),
            ),
            runs.blank_image,
        ),
        _image_node(
            "img_resize",
            "ImageResizeInvocation",
            (
                _IMAGE_IN,
                _F("width", "int", 512, gt=0),
                _F("height", "int", 512, gt=0),
                _RESAMPLE,
            ),
            runs.img_resize,
        ),
        _image_node(
            "img_scale",
            "ImageScaleInvocation",
            (
                _IMAGE_IN,
                _F("scale_factor", "float", 2.0, gt=0),
                _RESAMPLE,
            ),
            runs.img_scale,
        ),
        _image_node(
            "img_blur",
            "ImageBlurInvocation",
            (
                _IMAGE_IN,
                _F("radius", "float", 8.0, ge=0),
                _F("blur_type", "str", "gaussian", choices=("gaussian", "box")),
            ),
            runs.img_blur,
        ),
        _image_node(
            "img_crop",
            "ImageCropInvocation",
            (
                _IMAGE_IN,
                _F("x", "int", 0),
                _F("y", "int", 0),
                _F("width", "int", 512, gt=0),
                _F("height", "int", 512, gt=0),
            ),
            runs.img_crop,
        ),
        _image_node(
            "img_paste",
            "ImagePasteInvocation",
            (
                _F("base_image", "image", required=True),
                _IMAGE_IN,
                _F("mask", "image"),
                _F("x", "int", 0),
                _F("y", "int", 0),
                _F("crop", "bool", False),
            ),
            runs.img_paste,
        ),
        _image_node(
            "img_conv",
            "ImageConvertInvocation",
            (
                _IMAGE_IN,
                _F("mode", "str", "L",
                   choices=("L", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F")),
            ),
            runs.img_conv,
        ),
        _image_node(
            "img_chan",
            "ImageChannelInvocation",
            (
                _IMAGE_IN,
                _F("channel", "str", "A", choices=("A", "R", "G", "B")),
            ),
            runs.img_chan,
        ),
        _image_node(
            "img_mul",
            "ImageMultiplyInvocation",
            (_F("image1", "image", required=True), _F("image2", "image", required=True)),
            runs.img_mul,
        ),
        _image_node(
            "img_lerp",
            "ImageLerpInvocation",
            (_IMAGE_IN, *_LEVELS),
            runs.img_lerp,
        ),
        _image_node(
            "img_ilerp",
            "ImageInverseLerpInvocation",
            (_IMAGE_IN, *_LEVELS),
            runs.img_ilerp,
        ),
        _image_node(
            "img_noise",
            "ImageNoiseInvocation",
            (
                _IMAGE_IN,
                _F("mask", "image"),
                _F("seed", "int", 0, ge=0, le=4294967295),
                _F("noise_type", "str", "gaussian", choices=("gaussian", "salt_and_pepper")),
                _F("amount", "float", 0.1, ge=0, le=1),
                _F("noise_color", "bool", True),
                _F("size", "int", 1, ge=1),
            ),
            runs.img_noise,
        ),
        _image_node(
            "save_image",
            "SaveImageInvocation",
            (_IMAGE_IN,),
            runs.save_image,
            use_cache=False,
        ),
        _spec(
            "image",
            "ImageInvocation",
            (_IMAGE_IN,),
            _IMAGE_OUT,
            runs.image,
            uses_images=True,
        ),
    )
}
"""Node type -> what the double knows about it and how it runs it."""

