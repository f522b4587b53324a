"""Write tiny random-weight diffusion models in diffusers format (a build script).

Run by :mod:`invokeai_client.testing.tiny_models` with the local InvokeAI's Python, which
has torch, diffusers and transformers (this SDK does not depend on them)::

    <invokeai venv>/bin/python _tiny_build.py <out dir> [name ...]

Every model is seeded, so two builds give the same weights. Each lands in ``<out>/<name>``
(written to a temporary folder first, then renamed, so a half-written model never exists).
The shapes are the smallest InvokeAI still recognises as the real thing: it probes a main
model by ``unet/config.json`` (``cross_attention_dim`` 768 = SD1.x, 2048 = SDXL) and the
pipeline class in ``model_index.json``; a VAE by its class; a LoRA by the width of its
cross-attention keys (768 = SD1.x).

Each ``tokenizer*/`` folder also gets the slow tokenizer's ``vocab.json`` and ``merges.txt``:
transformers 5 (InvokeAI 6.13+) writes only ``tokenizer.json``, and the transformers 4.x of
InvokeAI 5.x-6.12 opens those two files (``vocab_file=None`` otherwise: the model installs
but no prompt can be encoded).
"""

from __future__ import annotations

import json
import shutil
import string
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch  # type: ignore[import-not-found, unused-ignore]
from diffusers import (  # type: ignore[import-not-found, unused-ignore]
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (  # type: ignore[import-not-found, unused-ignore]
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

SEED = 1234


def _tokenizer() -> Any:
    """A CLIP tokenizer over a byte-level vocab: printable ASCII and their word-end forms."""
    chars = [c for c in string.printable if not c.isspace()]
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[],
                         model_max_length=77)


def _text_config(tok: Any, hidden: int, projection: int | None = None) -> Any:
    end = tok.convert_tokens_to_ids("<|endoftext|>")
    return CLIPTextConfig(
        vocab_size=len(tok), hidden_size=hidden, projection_dim=projection or hidden,
        num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=77, bos_token_id=tok.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=end, pad_token_id=end,
    )


def _vae() -> Any:
    # Four blocks keep InvokeAI's 8x latent scale (three 2x downsamples).
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, sample_size=64,
    )


def _unet(cross_attention_dim: int, **extra: Any) -> Any:
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim, **extra,
    )


def _write_slow_tokenizer_files(pipeline_dir: Path) -> None:
    """vocab.json + merges.txt beside every tokenizer.json (for transformers 4.x readers)."""
    for fast in pipeline_dir.glob("tokenizer*/tokenizer.json"):
        model = json.loads(fast.read_text(encoding="utf-8"))["model"]
        vocab = dict(model["vocab"])
        for added in json.loads(fast.read_text(encoding="utf-8")).get("added_tokens", []):
            vocab.setdefault(added["content"], added["id"])
        (fast.parent / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        (fast.parent / "merges.txt").write_text(
            "\n".join(["#version: 0.2", *merges]) + "\n", encoding="utf-8"
        )


def build_sd1(out: Path) -> None:
    torch.manual_seed(SEED)
    tok = _tokenizer()
    pipe = StableDiffusionPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(tok, 768)), tokenizer=tok,
        unet=_unet(768), scheduler=DDIMScheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(str(out), safe_serialization=True)
    _write_slow_tokenizer_files(out)


def build_sdxl(out: Path) -> None:
    torch.manual_seed(SEED + 1)
    tok = _tokenizer()
    unet = _unet(
        2048, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=1280 + 6 * 8,
        transformer_layers_per_block=1,
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(tok, 768)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(tok, 1280, 1280)),
        tokenizer=tok, tokenizer_2=tok, unet=unet, scheduler=EulerDiscreteScheduler(),
    )
    pipe.save_pretrained(str(out), safe_serialization=True)
    _write_slow_tokenizer_files(out)


def build_vae(out: Path) -> None:
    torch.manual_seed(SEED + 2)
    _vae().save_pretrained(str(out), safe_serialization=True)


def build_lora(out: Path) -> None:
    """A kohya-style LoRA for the tiny SD1.x UNet's cross-attention (rank 2)."""
    from safetensors.torch import save_file  # type: ignore[import-not-found, unused-ignore]

    torch.manual_seed(SEED + 3)
    tensors: dict[str, Any] = {}
    blocks = {"down_blocks_0_attentions_0": 16, "up_blocks_1_attentions_0": 16,
              "up_blocks_1_attentions_1": 16}
    for block, width in blocks.items():
        for proj, fan_in in (("to_k", 768), ("to_v", 768), ("to_q", width)):
            key = f"lora_unet_{block}_transformer_blocks_0_attn2_{proj}"
            tensors[f"{key}.lora_down.weight"] = torch.randn(2, fan_in) * 0.01
            tensors[f"{key}.lora_up.weight"] = torch.randn(width, 2) * 0.01
            tensors[f"{key}.alpha"] = torch.tensor(2.0)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "tiny-sd1-lora.safetensors"))


BUILDERS = {
    "tiny-sd1": build_sd1,
    "tiny-sdxl": build_sdxl,
    "tiny-sd1-vae": build_vae,
    "tiny-sd1-lora": build_lora,
}


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    names = argv[1:] or list(BUILDERS)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (root / name).exists():
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            BUILDERS[name](tmp / name)
            (tmp / name).rename(root / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(name, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
