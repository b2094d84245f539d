"""Each distinct image (by key) through the vision tower once per run, where that is provably the same
computation: Qwen2-VL and Qwen2.5-VL, whose vision tower attends within each image (its own ``image_grid_thw``
row) and whose forward takes the features back through its public ``mm_encoder_outputs`` argument.

An image's features are computed from the very patch rows the processor gave its prompt (the prompt's
``pixel_values`` split by ``image_grid_thw``), so a cached image is one the processor encoded the same way.
Elsewhere (LLaVA-OneVision's per-prompt image mode, Llama 3.2 Vision's cross-attention states, Gemma 3,
InternVL, SmolVLM, Qwen3-VL's deepstack features) every prompt's prefill encodes its own images.
"""

from __future__ import annotations

import torch

from flamingo_eval.models.flamingo.latent_cache import LatentCache

CACHED = ("qwen2_vl", "qwen2_5_vl")
CACHE_BYTES = 4 << 30  # Qwen2.5-VL-7B, a 640x480 image: 391 x 3584 bf16 = 2.8 MB


class ImageFeatures:
    """The run's image features by key (an LRU cache of a few GB)."""

    def __init__(self, model, max_bytes: int = CACHE_BYTES):
        self.model, self.cache = model, LatentCache(max_bytes)

    @staticmethod
    def applies(model) -> bool:
        return model.config.model_type in CACHED

    @torch.inference_mode()
    def of_prompt(self, keys: list[str], encoded: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The features of one prompt's images (``keys`` in prompt order), each (tokens, width)."""
        if not keys:
            return []
        grid = encoded["image_grid_thw"]
        rows = grid.prod(-1).tolist()
        if len(rows) != len(keys):
            raise ValueError(f"a prompt has {len(keys)} images but its processor output describes {len(rows)}")
        pixels = torch.split(encoded["pixel_values"], rows)
        out = []
        for key, patches, thw in zip(keys, pixels, grid, strict=True):
            cached = self.cache.get(key)
            if cached is None:
                device = self.model.device
                got = self.model.get_image_features(patches.to(device), thw[None].to(device))
                cached = got.pooler_output[0]
                self.cache.put(key, cached)
            out.append(cached)
        return out
