"""Model manager DTOs: model configs, install jobs, scan results.

InvokeAI describes a model with one of ~130 ``*_Config`` classes; this SDK reads them all into
one lenient :class:`ModelConfig` with typed access to the identity fields. ``base``, ``type``
and ``format`` are open strings: every minor InvokeAI release adds values (the ones 6.14.2
knows are listed in :data:`KNOWN_BASES`, :data:`KNOWN_TYPES` and :data:`KNOWN_FORMATS`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import ServerModel

__all__ = [
    "INSTALL_TERMINAL_STATUSES",
    "KNOWN_BASES",
    "KNOWN_FORMATS",
    "KNOWN_TYPES",
    "FoundModel",
    "ModelConfig",
    "ModelInstallJob",
]

KNOWN_BASES = (
    "any", "sd-1", "sd-2", "sd-3", "sdxl", "sdxl-refiner", "flux", "flux2", "cogview4",
    "z-image", "ernie-image", "ideogram-4", "external", "qwen-image", "anima", "krea-2", "wan",
    "unknown",
)  # fmt: skip
"""Base model values of InvokeAI 6.14.2 (newer servers add more; any string is accepted)."""

KNOWN_TYPES = (
    "onnx", "main", "vae", "lora", "control_lora", "controlnet", "embedding", "ip_adapter",
    "clip_vision", "clip_embed", "t2i_adapter", "t5_encoder", "qwen3_encoder", "qwen_vl_encoder",
    "qwen3_vl_encoder", "mistral_encoder", "wan_t5_encoder", "gemma2_encoder",
    "spandrel_image_to_image", "siglip", "flux_redux", "llava_onevision", "prompt_enhancer",
    "text_llm", "external_image_generator", "pid_decoder", "unknown",
)  # fmt: skip
"""Model type values of InvokeAI 6.14.2 (open: any string is accepted)."""

KNOWN_FORMATS = (
    "omi", "diffusers", "checkpoint", "lycoris", "onnx", "olive", "embedding_file",
    "embedding_folder", "invokeai", "t5_encoder", "qwen3_encoder", "qwen_vl_encoder",
    "qwen3_vl_encoder", "mistral_encoder", "wan_t5_encoder", "gemma2_encoder",
    "bnb_quantized_int8b", "bnb_quantized_nf4b", "gguf_quantized", "external_api",
    "sdnq_quantized", "unknown",
)  # fmt: skip
"""Model format values of InvokeAI 6.14.2 (open: any string is accepted)."""

INSTALL_TERMINAL_STATUSES = frozenset({"completed", "error", "cancelled"})
"""Install job statuses a job never leaves."""


_IDENTIFIER_FIELDS = {"key", "hash", "name", "base", "type"}


class ModelConfig(ServerModel):
    """One installed model as the server describes it (any of its config classes).

    ``key`` is the install's id (changes on reinstall); ``hash`` (``"blake3:..."``) identifies
    the weights and survives a reinstall. Type-specific fields (``variant``,
    ``prediction_type``, ...) are kept as extra fields.
    """

    key: str
    hash: str | None = None
    name: str = ""
    base: str = "unknown"
    type: str = "unknown"
    format: str | None = None
    path: str | None = None
    file_size: int | None = None
    description: str | None = None
    source: str | None = None
    source_type: str | None = None
    source_url: str | None = None
    cover_image: str | None = None
    trigger_phrases: list[str] | None = None
    default_settings: dict[str, Any] | None = None

    @property
    def is_identified(self) -> bool:
        """False when the server could not tell what the file is (base or type unknown)."""
        return self.type != "unknown" and self.base != "unknown"

    def identifier(self) -> dict[str, Any]:
        """The ``{key, hash, name, base, type}`` reference a graph's model fields take."""
        return self.model_dump(include=_IDENTIFIER_FIELDS)


class ModelInstallJob(ServerModel):
    """A model install job on the server: ``status`` is one of ``waiting``, ``downloading``,
    ``downloads_done``, ``running``, ``paused``, ``completed``, ``error``, ``cancelled``."""

    id: int
    status: str = "waiting"
    source: Any = None
    local_path: str | None = None
    inplace: bool = False
    bytes: int = 0
    total_bytes: int = 0
    config_in: dict[str, Any] | None = None
    config_out: ModelConfig | None = None
    error_reason: str | None = None
    error: str | None = None
    error_traceback: str | None = None
    source_metadata: dict[str, Any] | None = None
    download_parts: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        """Whether the job is over (completed, error or cancelled)."""
        return self.status in INSTALL_TERMINAL_STATUSES

    @property
    def source_text(self) -> str:
        """The source as text: the local path, URL or Hugging Face repo id."""
        return describe_source(self.source)


class FoundModel(ServerModel):
    """A model file or folder found by a folder scan, and whether it is installed already."""

    path: str
    is_installed: bool = False


def describe_source(source: Any) -> str:
    """A model source (``{"type": "local", "path": ...}``, a URL, a repo id) as one string."""
    if isinstance(source, dict):
        for key in ("path", "url", "repo_id"):
            if source.get(key):
                text = str(source[key])
                if key == "repo_id" and source.get("variant"):
                    text += f":{source['variant']}"
                return text
        return str(source)
    return "" if source is None else str(source)
