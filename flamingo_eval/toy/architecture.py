"""The toy Flamingo's shape, its from-scratch construction and its export in the published formats.

The model is the bundled architecture at toy scale: an open_clip ViT at the toy images' size, an MPT
LM over the word-level toy tokenizer, the standard Perceiver and gated cross-attention. ``export``
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

from flamingo_eval.models.flamingo.lm import (
    END_OF_CHUNK,
    FAMILIES,
    IMAGE,
    add_flamingo_tokens,
    resize_embeddings,
)
from flamingo_eval.models.flamingo.model import Flamingo
from flamingo_eval.models.flamingo.presets import TOY_SIZES
from flamingo_eval.models.flamingo.sizes import FlamingoSizes

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


def new_language_model(arch: ToyArch, tokenizer) -> torch.nn.Module:
    """An MPT LM over the base vocabulary (as an LM directory holds it, before Flamingo's tokens)."""
    import transformers

    config = transformers.MptConfig(
        d_model=arch.lm_dim, n_heads=arch.lm_heads, n_layers=arch.lm_layers, expansion_ratio=arch.lm_expansion,
        max_seq_len=arch.max_seq_len, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=None,
    )
    return transformers.MptForCausalLM(config)


def new_flamingo(arch: ToyArch, base_tokenizer) -> tuple[Flamingo, Any, Any, Any]:
    """(Flamingo, CLIP model, tokenizer with Flamingo's tokens, image transform), assembled as the loader does."""
    import copy

    clip, transform = new_vision(arch)
    lm = new_language_model(arch, base_tokenizer)
    tokenizer = copy.deepcopy(base_tokenizer)
    add_flamingo_tokens(tokenizer)
    resize_embeddings(lm, len(tokenizer))
    model = Flamingo(clip.visual, lm, FAMILIES["mpt"], arch.cross_attn_every_n_layers,
                     media_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
                     eoc_token_id=tokenizer.convert_tokens_to_ids(END_OF_CHUNK), sizes=arch.sizes)
    return model, clip, tokenizer, transform


def _lm_body_state(model: Flamingo, n_base: int) -> dict[str, torch.Tensor]:
    """The LM's own weights under transformers' names: Flamingo's wrappers and added rows removed."""
    layers = model.family.layers_attr + "."
    out = {}
    for key, value in model.lang_encoder.state_dict().items():
        if ".gated_cross_attn_layer." in key:
            continue
        if key.startswith(layers):
            key = key.replace(".decoder_layer.", ".", 1)
        out[key] = value[:n_base] if key in ("transformer.wte.weight", "lm_head.weight") else value
    return out


def checkpoint_state(model: Flamingo) -> dict[str, torch.Tensor]:
    """What OpenFlamingo's checkpoint.pt holds: Perceiver, cross-attention blocks, input embeddings."""
    emb = model.lang_encoder.get_input_embeddings().weight
    keep = {k for k, p in model.named_parameters() if p is emb}
    return {k: v.detach().clone().half() for k, v in model.state_dict().items()
            if k.startswith("perceiver.") or ".gated_cross_attn_layer." in k or k in keep}


def export(model: Flamingo, clip, base_tokenizer, arch: ToyArch, out: Path, meta: dict[str, Any]) -> None:
    """Write lm/, vit/, checkpoint.pt and toy.json (training facts) under ``out``, all weights in fp16."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lm = new_language_model(arch, base_tokenizer)
    lm.load_state_dict(_lm_body_state(model, len(base_tokenizer)))
    lm.to(torch.float16).save_pretrained(out / "lm", safe_serialization=True)
    base_tokenizer.save_pretrained(out / "lm")
    vit = out / "vit"
    vit.mkdir(exist_ok=True)
    clip_state = {k: v.detach().contiguous().half() for k, v in clip.state_dict().items()}
    save_file(clip_state, str(vit / "open_clip_model.safetensors"))
    preprocess = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic",
                  "resize_mode": "shortest"}
    (vit / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": arch.open_clip_config(), "preprocess_cfg": preprocess}, indent=1) + "\n")
    torch.save(checkpoint_state(model), out / "checkpoint.pt")
    (out / "toy.json").write_text(json.dumps({"arch": asdict(arch), **meta}, indent=1) + "\n")
