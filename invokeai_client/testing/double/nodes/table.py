"""The node types the double runs, with InvokeAI 6.14.2's declarations: :data:`NODE_SPECS`."""

from __future__ import annotations

import random
from typing import Any

from . import runs
from .specs import FieldSpec, NodeRun, NodeSpec


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
            runs.collection,
        ),
        _spec(
            "float_collection",
            "FloatCollectionInvocation",
            (_F("collection", "list[float]", []),),
            ("float_collection_output", {"collection": "list[float]"}),
            runs.collection,
        ),
        _spec(
            "string_collection",
            "StringCollectionInvocation",
            (_F("collection", "list[str]", []),),
            ("string_collection_output", {"collection": "list[str]"}),
            runs.collection,
        ),
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
            runs.blank_image,
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
            runs.img_resize,
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
            runs.img_scale,
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
            runs.img_blur,
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
            runs.img_crop,
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
            runs.img_paste,
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
            runs.img_conv,
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
            runs.img_chan,
            **_IMAGE,
        ),
        _spec(
            "img_mul",
            "ImageMultiplyInvocation",
            (_F("image1", "image", required=True), _F("image2", "image", required=True)),
            _IMAGE_OUT,
            runs.img_mul,
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
            runs.img_lerp,
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
            runs.img_ilerp,
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
            runs.img_noise,
            **_IMAGE,
        ),
        _spec(
            "save_image",
            "SaveImageInvocation",
            (_F("image", "image", required=True),),
            _IMAGE_OUT,
            runs.save_image,
            use_cache=False,
            **_IMAGE,
        ),
        _spec(
            "image",
            "ImageInvocation",
            (_F("image", "image", required=True),),
            _IMAGE_OUT,
            runs.image,
            uses_images=True,
        ),
    )
}
"""Node type -> what the double knows about it and how it runs it."""

