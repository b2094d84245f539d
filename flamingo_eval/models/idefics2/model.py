"""Idefics2 and Idefics3 (SmolVLM), top to bottom: fully autoregressive, images enter as token embeddings.

    image  -> the checkpoint's own image features (transformers' ``get_image_features``: the SigLIP tower
              and the connector, used whole; Idefics2: modality MLP + Perceiver, 64 latents per image or
              crop; Idefics3: pixel shuffle + a linear projection, one block per tile and the global image)
    tokens -> embeddings, the k-th ``<image>`` token's embedding replaced by the prompt's k-th image feature
           -> Mistral (Idefics2) or Llama (Idefics3) layers (models/lm) -> logits

transformers' ``Idefics2ForConditionalGeneration`` / ``Idefics3ForConditionalGeneration`` compute the same
function and are the test oracle. There is no cross-attention: once the prompt is prefilled, decoding is a
plain LM's (fast.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from flamingo_eval.models.lm.decoder import Attention, DecoderLM, SequenceAttention, positions_of


class ImageFeatures:
    """The checkpoint's ``get_image_features`` (public API) behind a plain call, so the transformers model is
    not a submodule: its language-model half is replaced by ours and never moved or run."""

    def __init__(self, hf_model):
        self._hf = hf_model

    def __call__(self, pixel_values: torch.Tensor, pixel_attention_mask: torch.Tensor | None) -> torch.Tensor:
        """(1, crops, 3, H, W) pixels of one image -> (crops x tokens, width) features in prompt order."""
        out = self._hf.get_image_features(pixel_values=pixel_values, pixel_attention_mask=pixel_attention_mask)
        return torch.cat(list(out.pooler_output), dim=0)


class ImageTokenLM(nn.Module):
    def __init__(self, features: ImageFeatures, vision: nn.Module, connector: nn.Module, lm: DecoderLM,
                 image_token_id: int):
        super().__init__()
        self.features = features
        self.vision, self.connector = vision, connector  # what ``features`` runs; submodules so .to() moves them
        self.lm = lm
        self.image_token_id = image_token_id

    @property
    def device(self) -> torch.device:
        return self.lm.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm.embed.weight.dtype

    def encode_image(self, pixel_values: torch.Tensor, pixel_attention_mask: torch.Tensor | None) -> torch.Tensor:
        mask = None if pixel_attention_mask is None else pixel_attention_mask.to(self.device)
        return self.features(pixel_values.to(self.device, self.dtype), mask)

    def embed(self, ids: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, L) ids -> (B, L, width) embeddings with row b's ``<image>`` tokens replaced, in order, by the
        rows of ``features[b]`` ((tokens, width): the row's images' features concatenated)."""
        x = self.lm.embed(ids)
        slots = ids == self.image_token_id
        for b, f in enumerate(features):
            n = int(slots[b].sum())
            if n != f.shape[0]:
                raise ValueError(f"a prompt has {n} image tokens but its images give {f.shape[0]} features")
            if n:
                x[b, slots[b]] = f.to(x.dtype)
        return x

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """By definition: (B, L) ids, (B, L) mask (1 = token, 0 = left padding), per row its image features
        -> (B, L, V) logits."""
        return self.lm.run(self.embed(ids, features), positions_of(mask), SequenceAttention(mask.bool()))

    def run(self, x: torch.Tensor, positions: torch.Tensor, attention: Attention, keep: int = 0) -> torch.Tensor:
        return self.lm.run(x, positions, attention, keep)
