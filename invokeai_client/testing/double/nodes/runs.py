"""How the double computes each node type it runs (one small function per type)."""

from __future__ import annotations

import math
import operator
import random
import re
from collections.abc import Callable
from typing import Any

from .specs import NodeContext, NodeRun, image_output

# -- node implementations ----------------------------------------------------------------


def value(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    return {"value": v["value"]}


def collection(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    return {"collection": list(v["collection"])}


def int_op(op: Callable[[int, int], int]) -> NodeRun:
    return lambda v, _: {"value": op(v["a"], v["b"])}


_MATH: dict[str, Callable[[Any, Any], Any]] = {
    "ADD": operator.add,
    "SUB": operator.sub,
    "MUL": operator.mul,
    "EXP": operator.pow,
    "ABS": lambda a, _: abs(a),
    "MIN": min,
    "MAX": max,
}
_INTEGER_MATH: dict[str, Callable[[Any, Any], Any]] = {
    **_MATH, "DIV": lambda a, b: int(a / b), "MOD": operator.mod,
}
_FLOAT_MATH: dict[str, Callable[[Any, Any], Any]] = {
    **_MATH, "DIV": operator.truediv, "SQRT": lambda a, _: math.sqrt(a),
}


def integer_math(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    return {"value": int(_INTEGER_MATH[v["operation"]](v["a"], v["b"]))}


def check_integer_math(v: dict[str, Any]) -> list[tuple[str, str]]:
    if v["operation"] in ("DIV", "MOD") and v["b"] == 0:
        return [("b", "Cannot divide by zero")]
    if v["operation"] == "EXP" and v["b"] < 0:
        return [("b", "Result of exponentiation is not an integer")]
    return []


def float_math(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    return {"value": float(_FLOAT_MATH[v["operation"]](v["a"], v["b"]))}


def check_float_math(v: dict[str, Any]) -> list[tuple[str, str]]:
    if v["operation"] == "DIV" and v["b"] == 0:
        return [("b", "Cannot divide by zero")]
    if v["operation"] == "SQRT" and v["a"] < 0:
        return [("a", "Cannot find the square root of a negative number")]
    if v["operation"] == "EXP" and v["a"] == 0 and v["b"] < 0:
        return [("b", "Cannot raise zero to a negative power")]
    return []


def float_to_int(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    value, multiple = v["value"] / v["multiple"], v["multiple"]
    rounding: dict[str, Callable[[float], float]] = {
        "Nearest": round,
        "Floor": math.floor,
        "Ceiling": math.ceil,
        "Truncate": math.trunc,
    }
    return {"value": int(rounding[v["method"]](value) * multiple)}


def string_split(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    parts = v["string"].split(v["delimiter"], 1)
    return {"string_1": parts[0], "string_2": parts[1] if len(parts) == 2 else ""}


def string_replace(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    if v["use_regex"]:
        return {"value": re.sub(v["search_string"], v["replace_string"], v["string"])}
    return {"value": v["string"].replace(v["search_string"], v["replace_string"])}


def blank_image(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import Image

    color = v["color"]
    channels = (color["r"], color["g"], color["b"], color["a"])[: len(v["mode"])]
    return ctx.save(Image.new(v["mode"], (v["width"], v["height"]), channels))


_RESAMPLE = {"nearest": 0, "box": 4, "bilinear": 2, "hamming": 5, "bicubic": 3, "lanczos": 1}


def img_resize(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    image = ctx.load(v["image"])
    size = (v["width"], v["height"])
    return ctx.save(image.resize(size, resample=_RESAMPLE[v["resample_mode"]]))


def img_scale(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    image = ctx.load(v["image"])
    size = (int(image.width * v["scale_factor"]), int(image.height * v["scale_factor"]))
    return ctx.save(image.resize(size, resample=_RESAMPLE[v["resample_mode"]]))


def img_blur(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import ImageFilter

    image = ctx.load(v["image"])
    blur: Any = ImageFilter.GaussianBlur if v["blur_type"] == "gaussian" else ImageFilter.BoxBlur
    return ctx.save(image.filter(blur(v["radius"])))


def img_crop(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import Image

    image = ctx.load(v["image"])
    cropped = Image.new("RGBA", (v["width"], v["height"]), (0, 0, 0, 0))
    cropped.paste(image, (-v["x"], -v["y"]))
    return ctx.save(cropped)


def img_paste(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import Image

    base = ctx.load(v["base_image"])
    image = ctx.load(v["image"])
    mask = ctx.load(v["mask"]).convert("L") if v.get("mask") else None
    result = Image.new("RGBA", base.size, (0, 0, 0, 0))
    result.paste(base, (0, 0))
    result.paste(image, (v["x"], v["y"]), mask)
    return ctx.save(result)


def img_conv(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return ctx.save(ctx.load(v["image"]).convert(v["mode"]))


def img_chan(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return ctx.save(ctx.load(v["image"]).convert("RGBA").getchannel(v["channel"]))


def img_mul(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    from PIL import ImageChops

    return ctx.save(ImageChops.multiply(ctx.load(v["image1"]), ctx.load(v["image2"])))


def img_lerp(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    low, high = v["min"], v["max"]
    return ctx.save(ctx.load(v["image"]).point(lambda x: int(x / 255 * (high - low) + low)))


def img_ilerp(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    low, high = v["min"], v["max"]
    span = float(high - low) or 1.0
    return ctx.save(
        ctx.load(v["image"]).point(lambda x: int(min(max(x - low, 0) / span, 1) * 255))
    )


def img_noise(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
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


def save_image(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return ctx.save(ctx.load(v["image"]))


def image(v: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    image = ctx.load(v["image"])
    return image_output(v["image"]["image_name"], image.width, image.height)


def iterate(v: dict[str, Any], _: NodeContext) -> dict[str, Any]:
    collection = v["collection"]
    return {"item": collection[v["index"]], "index": v["index"], "total": len(collection)}

