"""The model's inputs: the processor's output for each prompt alone, then left-padded into one batch here.

Each prompt goes through ``processor(text=[text], images=[[its images]] or None)`` on its own, so a prompt's
inputs never depend on the batch it lands in. The batch is built key by key, by what each key holds:

- per token (``input_ids``, ``token_type_ids``, ``mm_token_type_ids``, ``cross_attention_mask``): left-padded
  along the token axis (pad id for ids, zeros otherwise), the attention mask built from the lengths;
- per prompt, padded to the batch's most images (Llama 3.2 Vision's ``pixel_values``, ``aspect_ratio_ids``,
  ``aspect_ratio_mask``, as its processor pads a batch: a zero slot is no image, its first tile unmasked);
- image rows concatenated over the batch (Qwen's patches and ``image_grid_thw``, Gemma 3's and LLaVA's
  ``pixel_values``, ``image_sizes``, ``batch_num_images``); LLaVA-OneVision's patches per image padded to the
  batch's most, as its image processor pads them.

A key not in these lists stops the run: guessing how to batch it could silently change outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from flamingo_eval.errors import ConfigError

PER_TOKEN = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids", "cross_attention_mask")
PADDED = ("aspect_ratio_ids", "aspect_ratio_mask", "pixel_attention_mask")
CONCATENATED = ("pixel_values", "image_grid_thw", "image_sizes", "batch_num_images", "num_patches",
                "image_num_patches")
PADDED_PIXELS = ("mllama", "idefics2", "idefics3", "smolvlm")  # pixel_values (1, images, ...) per prompt
# pixel_values (images, patches, ...): a batch pads each image's patches to the most; the model reads
# image_sizes to drop the padding
PATCH_PADDED = ("llava_onevision", "llava_next")
# Models whose outputs change when a prompt's image slots are padded: they batch only prompts with as many
# images (Llama 3.2 Vision: a token before the first image attends to every slot, transformers issue 39379)
SAME_IMAGE_COUNT = ("mllama",)


def encode(processor, text: str, pictures: list) -> dict[str, torch.Tensor]:
    """One prompt through the processor, as the protocol calls it."""
    out = processor(text=[text], images=[pictures] if pictures else None, return_tensors="pt")
    return {k: v for k, v in out.items() if v is not None}


def _pad_to(t: torch.Tensor, shape: Sequence[int], left_dim: int | None = None, value: int = 0) -> torch.Tensor:
    """``t`` zero-padded on the right of each dim (on the left of ``left_dim``) to ``shape``."""
    pads: list[int] = []
    for d in reversed(range(1, t.dim())):
        extra = shape[d] - t.shape[d]
        pads += [extra, 0] if d == left_dim else [0, extra]
    return F.pad(t, pads, value=value) if any(pads) else t


def collate(encoded: list[dict[str, torch.Tensor]], model_type: str, pad_id: int) -> dict[str, Any]:
    """One processor output per prompt -> the batch's keyword arguments for the model."""
    keys = list(dict.fromkeys(k for e in encoded for k in e))
    lengths = [int(e["input_ids"].shape[1]) for e in encoded]
    width = max(lengths)
    batch: dict[str, Any] = {}
    for key in keys:
        if key == "attention_mask":
            continue
        parts = [e.get(key) for e in encoded]
        if key in PER_TOKEN:
            shape = [max(p.shape[d] for p in parts) for d in range(parts[0].dim())]
            shape[1] = width
            value = pad_id if key == "input_ids" else 0
            batch[key] = torch.cat([_pad_to(p, shape, left_dim=1, value=value) for p in parts])
        elif key in PADDED or (key == "pixel_values" and model_type in PADDED_PIXELS):
            if any(p is None for p in parts):
                raise ConfigError(f"a batch mixes prompts with and without images, which {model_type} cannot "
                                  "batch; use --batch-size 1")
            shape = [max(p.shape[d] for p in parts) for d in range(parts[0].dim())]
            padded = [_pad_to(p, shape) for p in parts]
            if key == "aspect_ratio_mask":  # as MllamaImageProcessor pads: an empty slot keeps its first tile
                for p, q in zip(parts, padded, strict=True):
                    q[:, p.shape[1]:, 0] = 1
            batch[key] = torch.cat(padded)
        elif key in CONCATENATED:
            rows = [p for p in parts if p is not None]
            if key == "pixel_values" and model_type in PATCH_PADDED:  # as their image processor pads a batch
                shape = [max(p.shape[d] for p in rows) for d in range(rows[0].dim())]
                rows = [_pad_to(p, shape) for p in rows]
            if len({p.shape[1:] for p in rows}) > 1:
                raise ConfigError(f"the {model_type} processor returns {key!r} of different shapes per prompt "
                                  f"({', '.join(str(tuple(p.shape)) for p in rows)}); use --batch-size 1")
            batch[key] = torch.cat(rows)
        else:
            raise ConfigError(f"the {model_type} processor returns {key!r}, which the transformers family does not "
                              "know how to batch")
    batch["attention_mask"] = torch.tensor([[0] * (width - n) + [1] * n for n in lengths], dtype=torch.long)
    return batch
