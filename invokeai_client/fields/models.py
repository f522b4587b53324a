"""Model fields: identifiers of installed models and the structures that carry them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._base import UNSET, FieldRuleError, ImageResolver
from .resources import StructField

MODEL_KEYS = ("key", "hash", "name", "base", "type")


def model_identifier(value: Any) -> dict[str, Any] | None:
    """``{key, hash, name, base, type[, submodel_type]}`` from a dict or any object with those
    attributes (a model config from ``client.models``), or None if it is not one."""
    if isinstance(value, Mapping):
        source: Mapping[str, Any] = value
    elif hasattr(value, "key") and hasattr(value, "base"):
        source = {k: getattr(value, k, None) for k in (*MODEL_KEYS, "submodel_type")}
    else:
        return None
    result: dict[str, Any] = {}
    for key in MODEL_KEYS:
        item = source.get(key)
        if item is not None and hasattr(item, "value"):  # an Enum member
            item = item.value
        result[key] = item
    submodel = source.get("submodel_type")
    if submodel is not None and hasattr(submodel, "value"):
        submodel = submodel.value
    if submodel is not None:
        result["submodel_type"] = submodel
    return result


@dataclass(frozen=True)
class ModelName:
    """A model input set to a model's key or name (``wf.set("Model", "tiny-sdxl")``).

    Keys are local to a server, so the name is looked up among the server's installed models
    of the input's base and type when the handle is synced or submitted (key, exact name, or
    a case-insensitive fragment of exactly one name, as ``client.generate(model=)`` does)."""

    text: str

    def __str__(self) -> str:
        return self.text


class ModelIdentifierField(StructField):
    """A model of the server: ``{key, hash, name, base, type[, submodel_type]}``, a model
    config object, or a model's key or name (a :class:`ModelName`, looked up on the server at
    sync/submit time). ``base`` and ``type`` are open strings (new servers add values), checked
    against the node's ``ui_model_base`` / ``ui_model_type`` hints when the schema has them."""

    kind = "model"
    schema_name: str = "ModelIdentifierField"

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, ModelName):
            value = value.text
        if isinstance(value, str):
            if not value.strip():
                raise FieldRuleError("model key or name", "a model key or name cannot be empty")
            return ModelName(value)
        ident = model_identifier(value)
        if ident is None:
            raise FieldRuleError(
                "model",
                f"expected a model key or name, a model identifier {{key, hash, name, base, "
                f"type}} or a model config, "
                f"got {type(value).__name__} {value!r:.60}",
            )
        missing = [k for k in MODEL_KEYS if not isinstance(ident.get(k), str) or not ident[k]]
        if missing:
            raise FieldRuleError(
                "model identifier",
                f"a model identifier needs {list(MODEL_KEYS)}; missing {missing}",
            )
        for hint, key in (("ui_model_type", "type"), ("ui_model_base", "base")):
            allowed = _as_list(self.ui.get(hint))
            if allowed and ident[key] not in allowed and "any" not in allowed:
                raise FieldRuleError(
                    f"model {key} in {allowed}",
                    f"this input takes a model whose {key} is one of {allowed}, got "
                    f"{ident[key]!r} ({ident['name']!r})",
                )
        return ident

    def _to_api(self, value: Any, images: ImageResolver | None) -> Any:
        # A name not looked up yet has no wire form: left out (compile names it).
        return UNSET if isinstance(value, ModelName) else value

    @property
    def pending_name(self) -> ModelName | None:
        """The key or name this input was set to, until the server's model replaces it."""
        value = self.value
        return value if isinstance(value, ModelName) else None

    @property
    def model_types(self) -> list[str]:
        """The model types this input accepts (from the schema), empty when unknown."""
        return _as_list(self.ui.get("ui_model_type"))

    @property
    def model_bases(self) -> list[str]:
        """The model bases this input accepts (from the schema), empty when unknown."""
        return _as_list(self.ui.get("ui_model_base"))

    def describe(self) -> str:
        parts = [f"type in {self.model_types}"] if self.model_types else []
        if self.model_bases:
            parts.append(f"base in {self.model_bases}")
        return "model" + (f" ({', '.join(parts)})" if parts else "")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


class ModelCarrierField(StructField):
    """A structure that carries model identifiers between nodes (UNet, CLIP, VAE, ...);
    normally fed by an edge from a model loader."""

    kind = "model_carrier"


class UNetField(ModelCarrierField):
    """``{unet, scheduler, loras, seamless_axes?, freeu_config?}`` from a main model loader."""

    kind = "unet"


class CLIPField(ModelCarrierField):
    """``{tokenizer, text_encoder, skipped_layers, loras}`` from a model loader."""

    kind = "clip"


class VAEField(ModelCarrierField):
    """``{vae, seamless_axes?}`` from a model or VAE loader."""

    kind = "vae"


class TransformerField(ModelCarrierField):
    """``{transformer, loras}`` from a FLUX/SD3/... model loader."""

    kind = "transformer"


class T5EncoderField(ModelCarrierField):
    """``{tokenizer, text_encoder, loras}`` of a T5 encoder."""

    kind = "t5_encoder"


class LoRAField(ModelCarrierField):
    """``{lora, weight}``: a LoRA and its weight."""

    kind = "lora"


class ControlField(ModelCarrierField):
    """A ControlNet: image, control model, weights and step range."""

    kind = "control"


class IPAdapterField(ModelCarrierField):
    """An IP-Adapter: images, model, image encoder, weights and step range."""

    kind = "ip_adapter"


class T2IAdapterField(ModelCarrierField):
    """A T2I-Adapter: image, model, weight and step range."""

    kind = "t2i_adapter"
