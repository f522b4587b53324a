"""The IvkField type system: typed, validated values for workflow inputs.

Each input of a workflow gets an :class:`IvkField` subclass chosen from the server's OpenAPI
invocation schemas (or, offline, from the workflow's values): primitives, enums, colors,
resources (images, boards, latents, tensors, conditioning ...), model identifiers and the
structures that carry models (UNet, CLIP, VAE, transformer ...), and collections. Setting a
value checks its type and the schema's constraints and raises
:class:`~invokeai_client.errors.ValidationError` naming the input and the rule.

Custom node packs: :func:`register_field` maps a node input or a custom field type to your own
:class:`IvkField` subclass.
"""

from ._base import UNSET, FieldRuleError, IvkField
from .collections import CollectionField
from .models import (
    CLIPField,
    ControlField,
    IPAdapterField,
    LoRAField,
    ModelCarrierField,
    ModelIdentifierField,
    ModelName,
    T2IAdapterField,
    T5EncoderField,
    TransformerField,
    UNetField,
    VAEField,
)
from .primitives import (
    AnyField,
    BooleanField,
    DictField,
    EnumField,
    FloatField,
    IntegerField,
    NumberField,
    StringField,
)
from .registry import FieldRegistry, default_registry, register_field
from .resources import (
    BoardField,
    ColorField,
    ConditioningField,
    DenoiseMaskField,
    ImageField,
    LatentsField,
    LocalImage,
    MetadataField,
    StructField,
    TensorField,
    VideoField,
)
from .schema import InvocationSchemas, NodeSchema

__all__ = [
    "UNSET",
    "AnyField",
    "BoardField",
    "BooleanField",
    "CLIPField",
    "CollectionField",
    "ColorField",
    "ConditioningField",
    "ControlField",
    "DenoiseMaskField",
    "DictField",
    "EnumField",
    "FieldRegistry",
    "FieldRuleError",
    "FloatField",
    "IPAdapterField",
    "ImageField",
    "IntegerField",
    "InvocationSchemas",
    "IvkField",
    "LatentsField",
    "LoRAField",
    "LocalImage",
    "MetadataField",
    "ModelCarrierField",
    "ModelIdentifierField",
    "ModelName",
    "NodeSchema",
    "NumberField",
    "StringField",
    "StructField",
    "T2IAdapterField",
    "T5EncoderField",
    "TensorField",
    "TransformerField",
    "UNetField",
    "VAEField",
    "VideoField",
    "default_registry",
    "register_field",
]
