"""Choosing one installed model by what a user wrote: the rules ``generate(model=)``, its
``vae`` and ``loras``, and a workflow's model inputs set by name (``wf.set("model",
"tiny-sdxl")``) share.

A key names a model among all installed ones; otherwise, among the models the caller can
use, an exact name, a base the caller allows (the only model of that base) or a
case-insensitive fragment of exactly one name. Anything ambiguous, missing or of the wrong
kind raises, listing the candidates: never a guess. Models are ``ModelConfig`` objects or
their JSON dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import errors

M = TypeVar("M")


def model_attr(model: Any, name: str) -> Any:
    """A model's field ``name``, whether the model is a ``ModelConfig`` or its dict."""
    return model.get(name) if isinstance(model, Mapping) else getattr(model, name, None)


def model_kind(model: Any) -> str:
    """``'name' (base type)``: which model it is, in a sentence."""
    base, kind = model_attr(model, "base"), model_attr(model, "type")
    return f"{model_attr(model, 'name')!r} ({base} {kind})"


@dataclass(frozen=True)
class ModelWanted:
    """What a caller looks a model up for, in the words its errors use.

    ``usable`` tells the models it can take; ``one`` / ``many`` name them (``main model`` /
    ``main models``); ``needs`` is the rule a model of another kind breaks; ``what`` names the
    argument (``model``, ``vae``) and ``where`` prefixes every message (a workflow input);
    ``bases`` are the base names that stand for the only usable model of that base;
    ``input`` is the errors' ``input``; ``missing`` the error raised when nothing matches.
    """

    usable: Callable[[Any], bool]
    one: str
    many: str
    needs: str = ""
    what: str = "model"
    where: str = ""
    bases: Sequence[str] = ()
    input: str = "model"
    missing: type[errors.ModelChoiceError] | type[errors.ModelNotFoundError] = (
        errors.ModelChoiceError
    )


def choose_installed(models: Sequence[M], wanted: str | None, rules: ModelWanted) -> M:
    """The one model of ``models`` that ``wanted`` names under ``rules`` (pure; see the
    module docstring); None: the only usable model."""
    usable = [m for m in models if rules.usable(m)]
    found, subject = _match(models, usable, wanted, rules)
    if len(found) == 1 and found[0] in usable:
        return found[0]
    pool = found if len(found) > 1 else usable
    labels = "; ".join(f"{model_kind(m)} key {model_attr(m, 'key')}" for m in pool[:20])
    listing = f"installed: {labels}" if labels else "none installed"
    if len(found) == 1:
        message = f"{subject} is a {model_kind(found[0])} model; {rules.needs}; {listing}"
    elif found:
        message = f"{subject} matches {len(found)} {rules.many}, name one of them: {labels}"
    elif wanted is None:
        message = f"no {rules.what} was given and no {rules.one} to choose; {listing}"
    else:
        raise _error(rules.missing, f"{subject} matches no {rules.one}; {listing}", pool, rules)
    raise _error(errors.ModelChoiceError, message, pool, rules)


def _match(
    models: Sequence[M], usable: list[M], wanted: str | None, rules: ModelWanted
) -> tuple[list[M], str]:
    """The models ``wanted`` names and how messages speak of it."""
    if wanted is None:
        return usable, f"no {rules.what} was given and it"
    subject = f"{rules.where}{rules.what} {wanted!r}"
    found = [m for m in models if model_attr(m, "key") == wanted] or [
        m for m in usable if model_attr(m, "name") == wanted
    ]
    needle = wanted.casefold()
    if not found and needle in rules.bases:
        found = [m for m in usable if model_attr(m, "base") == needle]
        subject = f"{rules.where}base {wanted!r}"
    if not found:
        found = [m for m in usable if needle in str(model_attr(m, "name") or "").casefold()]
    return found, subject


def _error(
    kind: type[errors.ModelChoiceError] | type[errors.ModelNotFoundError],
    message: str,
    candidates: list[Any],
    rules: ModelWanted,
) -> Exception:
    if issubclass(kind, errors.ModelChoiceError):
        return kind(message, candidates=candidates, input=rules.input)
    return kind(message, candidates=candidates)
