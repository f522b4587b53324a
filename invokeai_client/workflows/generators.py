"""Values of the GUI's generator nodes (``float_generator``, ``integer_generator`` ...).

A batch node's items can come from a generator node connected to it. The GUI computes those
values in the browser before enqueueing; this module computes them the same way (seeded
random distributions use the same Mersenne Twister, so a seed gives the GUI's numbers).
Generators that need the server (images of a board, dynamic prompts) are resolved by
``await handle.resolve_generators()``.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

SERVER_GENERATORS = frozenset(
    {
        "image_generator_images_from_board",
        "string_generator_dynamic_prompts_combinatorial",
        "string_generator_dynamic_prompts_random",
    }
)


# The GUI's (6.14) defaults for a parse-string generator saved without its input.
FLOAT_PARSE_DEFAULT = "0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1"
INTEGER_PARSE_DEFAULT = "1,2,3,4,5,6,7,8,9,10"


class MersenneTwister:
    """MT19937 seeded like the ``mersenne-twister`` JavaScript package the GUI uses
    (``init_genrand(seed)``); :meth:`random` is ``genrand_int32() / 2**32``."""

    def __init__(self, seed: int) -> None:
        self._mt = [0] * 624
        self._index = 625
        self._mt[0] = seed & 0xFFFFFFFF
        for i in range(1, 624):
            prev = self._mt[i - 1] ^ (self._mt[i - 1] >> 30)
            self._mt[i] = (1812433253 * prev + i) & 0xFFFFFFFF
        self._index = 624

    def _twist(self) -> None:
        mt = self._mt
        for i in range(624):
            y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
            mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
        self._index = 0

    def genrand_int32(self) -> int:
        if self._index >= 624:
            self._twist()
        y = self._mt[self._index]
        self._index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y & 0xFFFFFFFF

    def random(self) -> float:
        return self.genrand_int32() * (1.0 / 4294967296.0)


def _rng(seed: Any) -> Any:
    if isinstance(seed, int) and not isinstance(seed, bool):
        return MersenneTwister(seed).random
    return random.random


def _number(spec: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(
            f"{where}: generator setting {key!r} must be a number, got {value!r:.40}",
            input=where,
            rule="number",
        )
    return value


def _count(spec: Mapping[str, Any], default: int, where: str) -> int:
    count = spec.get("count", default)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValidationError(
            f"{where}: generator 'count' must be a non-negative integer, got {count!r:.40}",
            input=where,
            rule="count >= 0",
        )
    if count > 100_000:
        raise ValidationError(
            f"{where}: generator 'count' {count} is too large (at most 100000)",
            input=where,
            rule="count <= 100000",
        )
    return count


def _split(spec: Mapping[str, Any], default_input: str, where: str) -> list[str]:
    text = spec.get("input", default_input)
    split_on = spec.get("splitOn", ",")
    if not isinstance(text, str) or not isinstance(split_on, str):
        raise ValidationError(
            f"{where}: generator 'input' and 'splitOn' must be strings", input=where, rule="string"
        )
    if split_on == "":
        return [text]
    try:
        separator = json.loads(f'"{split_on}"')
    except ValueError:
        separator = split_on
    if not isinstance(separator, str) or separator == "":
        separator = split_on
    return text.split(separator)


_LEADING_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _parse_float(text: str) -> float | None:
    """JavaScript's parseFloat: the longest number at the start, else None."""
    match = _LEADING_FLOAT.match(text.strip())
    if not match:
        return None
    value = float(match.group(0))
    return value if math.isfinite(value) else None


def _parse_int(text: str) -> int | None:
    digits = text.strip()
    sign = ""
    if digits[:1] in "+-":
        sign, digits = digits[0], digits[1:]
    run = ""
    for ch in digits:
        if ch.isdigit():
            run += ch
        else:
            break
    return int(sign + run) if run else None


def generator_values(kind: str, spec: Any, where: str) -> list[Any]:
    """The items of a float/integer/string generator value computed locally.

    ``kind`` is the generator node type; ``spec`` its ``generator`` input value.
    """
    gen = _local_generator_type(spec, where)
    values: list[Any] | None = None
    if kind == "float_generator":
        values = _float_values(spec, gen, where)
    elif kind == "integer_generator":
        values = _integer_values(spec, gen, where)
    elif kind == "string_generator" and gen == "string_generator_parse_string":
        values = [s for s in _split(spec, "foo,bar,baz,qux", where) if s]
    if values is None:
        raise ValidationError(
            f"{where}: unknown generator type {gen!r} for a {kind} node",
            input=where,
            rule="known generator type",
        )
    return values


def _local_generator_type(spec: Any, where: str) -> str:
    """The ``type`` of a generator value, checked to be one computed without the server."""
    if not isinstance(spec, Mapping):
        raise ValidationError(
            f"{where}: the generator value must be an object with a 'type', got {spec!r:.60}",
            input=where,
            rule="generator object",
        )
    gen = spec.get("type")
    if not isinstance(gen, str):
        raise ValidationError(
            f"{where}: the generator's 'type' must be a string, got {gen!r:.60}",
            input=where,
            rule="generator type",
        )
    if gen in SERVER_GENERATORS:
        raise ValidationError(
            f"{where}: generator {gen!r} needs the server; call "
            "'await handle.resolve_generators()' before building the batch",
            input=where,
            rule="resolved generator",
        )
    return gen


def _float_values(spec: Mapping[str, Any], gen: str, where: str) -> list[Any] | None:
    """The items of a float generator, or None when ``gen`` is not a float generator."""
    if isinstance(spec.get("values"), list):
        return list(spec["values"])
    if gen == "float_generator_arithmetic_sequence":
        start, step = _number(spec, "start", 0, where), _number(spec, "step", 0.1, where)
        count = _count(spec, 10, where)
        return [start] if step == 0 else [start + i * step for i in range(count)]
    if gen == "float_generator_linear_distribution":
        start, end = _number(spec, "start", 0, where), _number(spec, "end", 1, where)
        count = _count(spec, 10, where)
        if count == 1:
            return [start]
        return [start + (end - start) * (i / (count - 1)) for i in range(count)]
    if gen == "float_generator_random_distribution_uniform":
        low, high = _number(spec, "min", 0, where), _number(spec, "max", 1, where)
        count = _count(spec, 10, where)
        rng = _rng(spec.get("seed"))
        return [rng() * (high - low) + low for _ in range(count)]
    if gen == "float_generator_parse_string":
        texts = _split(spec, FLOAT_PARSE_DEFAULT, where)
        floats = (_parse_float(s.strip()) for s in texts if s.strip())
        return [v for v in floats if v is not None]
    return None


def _integer_values(spec: Mapping[str, Any], gen: str, where: str) -> list[Any] | None:
    """The items of an integer generator, or None when ``gen`` is not an integer generator."""
    if gen == "integer_generator_arithmetic_sequence":
        start, step = (
            int(_number(spec, "start", 0, where)),
            int(_number(spec, "step", 1, where)),
        )
        count = _count(spec, 10, where)
        return [start] if step == 0 else [start + i * step for i in range(count)]
    if gen == "integer_generator_linear_distribution":
        start, end = int(_number(spec, "start", 0, where)), int(_number(spec, "end", 10, where))
        count = _count(spec, 10, where)
        if count == 1:
            return [start]
        return [start + _js_round((end - start) * (i / (count - 1))) for i in range(count)]
    if gen == "integer_generator_random_distribution_uniform":
        low, high = int(_number(spec, "min", 0, where)), int(_number(spec, "max", 10, where))
        count = _count(spec, 10, where)
        rng = _rng(spec.get("seed"))
        return [math.floor(rng() * (high - low + 1)) + low for _ in range(count)]
    if gen == "integer_generator_parse_string":
        texts = _split(spec, INTEGER_PARSE_DEFAULT, where)
        ints = (_parse_int(s) for s in texts if s.strip())
        return [v for v in ints if v is not None]
    return None


def _js_round(value: float) -> int:
    """JavaScript's Math.round (halves go up)."""
    return math.floor(value + 0.5)
