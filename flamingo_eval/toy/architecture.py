"""The toy Flamingo's shape, its from-scratch construction and its export in the published formats.

The model is the bundled architecture at toy scale: an open_clip ViT at the toy images' size, an MPT
LM (the project's decoder) over the word-level toy tokenizer, the standard Perceiver and gated cross-attention. ``export``
writes exactly what a released OpenFlamingo model consists of (an LM directory with its tokenizer, an
open_clip ``local-dir:`` folder, a ``checkpoint.pt`` of Perceiver, cross-attention and embeddings),
so the shipped model loads through ``load_model`` like any real preset.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from flamingo_eval.models.flamingo.checkpoint import to_openflamingo_keys
from flamingo_eval.models.flamingo.model import Flamingo
from flamingo_eval.models.flamingo.presets import TOY_SIZES
from flamingo_eval.models.flamingo.sizes import FlamingoSizes
from flamingo_eval.models.flamingo.tokens import END_OF_CHUNK, IMAGE, add_flamingo_tokens
from flamingo_eval.models.lm.config import LMConfig, from_hf
from flamingo_eval.models.lm.decoder import DecoderLM
from flamingo_eval.models.lm.weights import to_published

VIT_NAME = "flamingo-eval-toy-vit"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ToyArch:
    """Sizes chosen so that training fits in minutes on two CPU cores and the files in a few MB."""

    image_size: int = 32  # the 64-pixel toy images, downscaled by the open_clip transform
    patch_size: int = 8
    vit_width: int = 32
    vit_layers: int = 2
    vit_head_width: int = 16
    lm_dim: int = 128
    lm_layers: int = 4
    lm_heads: int = 4
    lm_expansion: int = 4
    max_seq_len: int = 512
    cross_attn_every_n_layers: int = 2
    sizes: FlamingoSizes = TOY_SIZES  # Perceiver and cross-attention: what the of-toy preset declares

    def open_clip_config(self) -> dict[str, Any]:
        # open_clip needs a text tower; it is never used (RICES and the Flamingo use the image tower only)
        return {
            "embed_dim": 32,
            "vision_cfg": {"image_size": self.image_size, "layers": self.vit_layers, "width": self.vit_width,
                           "head_width": self.vit_head_width, "patch_size": self.patch_size},
            "text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1},
        }


def new_vision(arch: ToyArch):
    """(open_clip CLIP model, its val transform), randomly initialised from the current torch seed."""
    import tempfile

    import open_clip

    with tempfile.TemporaryDirectory() as d:  # open_clip registers configs from files only
        cfg = Path(d) / f"{VIT_NAME}.json"
        cfg.write_text(json.dumps(arch.open_clip_config()))
        open_clip.add_model_config(str(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clip, _, transform = open_clip.create_model_and_transforms(
            VIT_NAME, pretrained=None, image_mean=OPENAI_MEAN, image_std=OPENAI_STD)
    return clip, transform


def mpt_config(arch: ToyArch, tokenizer):
    """The LM directory's config: an MPT over the base vocabulary (before Flamingo's tokens)."""
    import transformers

    return transformers.MptConfig(
        d_model=arch.lm_dim, n_heads=arch.lm_heads, n_layers=arch.lm_layers, expansion_ratio=arch.lm_expansion,
        max_seq_len=arch.max_seq_len, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=None,
    )


def new_language_model(arch: ToyArch, base_tokenizer, vocab_size: int) -> DecoderLM:
    """The MPT LM with ``vocab_size`` rows, initialised as MPT initialises (normal, std 0.02)."""
    config = from_hf(mpt_config(arch, base_tokenizer).to_dict(), "toy").shrunk(vocab_size=vocab_size)
    lm = DecoderLM(config)
    with torch.no_grad():
        for p in lm.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    return lm


def new_flamingo(arch: ToyArch, base_tokenizer) -> tuple[Flamingo, Any, Any, Any]:
    """(Flamingo, CLIP model, tokenizer with Flamingo's tokens, image transform), assembled as the loader does."""
    import copy

    clip, transform = new_vision(arch)
    tokenizer = copy.deepcopy(base_tokenizer)
    add_flamingo_tokens(tokenizer)
    lm = new_language_model(arch, base_tokenizer, len(tokenizer))
    model = Flamingo(clip.visual, lm, arch.cross_attn_every_n_layers,
                     media_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
                     eoc_token_id=tokenizer.convert_tokens_to_ids(END_OF_CHUNK), sizes=arch.sizes)
    return model, clip, tokenizer, transform


def lm_directory_state(model: Flamingo, n_base: int) -> dict[str, torch.Tensor]:
    """The LM's own weights under the published names, over the base vocabulary (Flamingo's rows removed)."""
    config: LMConfig = model.lm.config
    ours = {k: v[:n_base] if k in ("embed.weight", "head.weight") else v for k, v in model.lm.state_dict().items()}
    return to_published(config.shrunk(vocab_size=n_base), ours)


def export(model: Flamingo, clip, base_tokenizer, arch: ToyArch, out: Path, meta: dict[str, Any]) -> None:
    """Write lm/, vit/, checkpoint.pt and toy.json (training facts) under ``out``, all weights in fp16."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lm_dir = out / "lm"
    lm_dir.mkdir(parents=True, exist_ok=True)
    config = mpt_config(arch, base_tokenizer)
    config.dtype = "float16"
    config.save_pretrained(lm_dir)
    lm_state = {k: v.detach().contiguous().half() for k, v in lm_directory_state(model, len(base_tokenizer)).items()}
    save_file(lm_state, str(lm_dir / "model.safetensors"), metadata={"format": "pt"})
    base_tokenizer.save_pretrained(lm_dir)
    vit = out / "vit"
    vit.mkdir(exist_ok=True)
    clip_state = {k: v.detach().contiguous().half() for k, v in clip.state_dict().items()}
    save_file(clip_state, str(vit / "open_clip_model.safetensors"))
    preprocess = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic",
                  "resize_mode": "shortest"}
    (vit / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": arch.open_clip_config(), "preprocess_cfg": preprocess}, indent=1) + "\n")
    torch.save({k: v.detach().clone().half() for k, v in to_openflamingo_keys(model).items()}, out / "checkpoint.pt")
    (out / "toy.json").write_text(json.dumps({"arch": asdict(arch), **meta}, indent=1) + "\n")
