"""The Flamingo module: images -> Perceiver latents (separately), then the media-conditioned LM pass.

Submodule names are OpenFlamingo's (``vision_encoder``, ``perceiver``, ``lang_encoder``) so its
checkpoints load by key. Image encoding is its own step (``encode_images``), and the per-layer
cross-attention K/V are computed once from the latents (``media_kv``), so a caller can cache both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from flamingo_eval.models.flamingo.lm import CrossAttnState, Family, add_cross_attention, position_ids
from flamingo_eval.models.flamingo.perceiver import PerceiverResampler
from flamingo_eval.models.flamingo.vision import patch_tokens, vision_width
from flamingo_eval.models.flamingo.xattn import text_time

MediaKV = list[tuple[torch.Tensor, torch.Tensor] | None]


@dataclass
class DecodeState:
    """A conditioned sequence being extended: the LM cache and what the next tokens need."""

    cache: object
    attention_mask: torch.Tensor  # (R, L) over everything seen so far
    image_counts: torch.Tensor  # (R,) images seen so far: later tokens attend to the last one
    media_kv: MediaKV

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep rows ``rows`` (beam search). Rows only move within a query, so media K/V stay put."""
        self.cache.reorder_cache(rows)
        self.attention_mask = self.attention_mask[rows]
        self.image_counts = self.image_counts[rows]


class Flamingo(nn.Module):
    def __init__(
        self,
        vision_encoder: nn.Module,
        lang_encoder: nn.Module,
        family: Family,
        cross_attn_every_n_layers: int,
        media_token_id: int,
        eoc_token_id: int,
    ):
        super().__init__()
        dim_visual = vision_width(vision_encoder)
        self.vision_encoder = vision_encoder
        self.perceiver = PerceiverResampler(dim_visual)
        self.lang_encoder = lang_encoder
        self.family = family
        self.media_token_id = media_token_id
        self.eoc_token_id = eoc_token_id
        self._xattn_state = CrossAttnState(n_latents=self.perceiver.num_latents)
        self._xattn_blocks = add_cross_attention(
            lang_encoder, family, dim_visual, cross_attn_every_n_layers, self._xattn_state
        )

    @property
    def device(self) -> torch.device:
        return self.perceiver.latents.device

    @property
    def dtype(self) -> torch.dtype:
        return self.perceiver.latents.dtype

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) preprocessed images -> (N, num_latents, D_vis) Perceiver latents."""
        tokens = patch_tokens(self.vision_encoder, pixels.to(self.device, self.dtype))
        return self.perceiver(tokens)

    @torch.no_grad()
    def media_kv(self, media: torch.Tensor) -> MediaKV:
        """(B, T_img, n, D_vis) latents per row -> cross-attention K/V for each layer (None: no block)."""
        return [None if blk is None else blk.media_kv(media) for blk in self._xattn_blocks]

    def _lm(self, input_ids, attention_mask, media_kv, times, cache, use_cache):
        st = self._xattn_state
        st.media_kv, st.times = media_kv, times
        kwargs = {}
        if self.family.uses_position_ids:
            kwargs["position_ids"] = position_ids(attention_mask, input_ids.shape[1])
        try:
            return self.lang_encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                past_key_values=cache,
                use_cache=use_cache,
                return_dict=True,
                **kwargs,
            )
        finally:
            st.media_kv, st.times = [], None

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, media_kv: MediaKV) -> torch.Tensor:
        """Full-sequence logits (B, L, V), no cache: each token sees its latest image."""
        times = text_time(input_ids == self.media_token_id)
        return self._lm(input_ids, attention_mask, media_kv, times, None, False).logits

    @torch.no_grad()
    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, media_kv: MediaKV) -> tuple[torch.Tensor, DecodeState]:
        """Run the prompt once; returns the last position's logits (float32) and the state to extend."""
        from transformers import DynamicCache

        media = input_ids == self.media_token_id
        cache = DynamicCache(config=self.lang_encoder.config)
        out = self._lm(input_ids, attention_mask, media_kv, text_time(media), cache, True)
        state = DecodeState(out.past_key_values, attention_mask, media.sum(-1), media_kv)
        return out.logits[:, -1, :].float(), state

    @torch.no_grad()
    def extend(self, state: DecodeState, tokens: torch.Tensor) -> torch.Tensor:
        """Feed (R, t) new tokens after the state; returns the last position's logits (float32)."""
        media = tokens == self.media_token_id
        times = text_time(media, state.image_counts)
        state.attention_mask = torch.cat([state.attention_mask, torch.ones_like(tokens)], dim=1)
        out = self._lm(tokens, state.attention_mask, state.media_kv, times, state.cache, True)
        state.cache = out.past_key_values
        state.image_counts = state.image_counts + media.sum(-1)
        return out.logits[:, -1, :].float()

    def forward_train(
        self, pixels: torch.Tensor, media_index: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Grad-enabled logits (B, L, V) for training: the inference methods above run without autograd.

        ``pixels`` (N, 3, H, W) holds each distinct image once; ``media_index`` (B, T_img) picks row b's
        t-th image from it (-1 where a row has fewer images; those latents are zeros and never attended).
        """
        latents = self.perceiver(patch_tokens(self.vision_encoder, pixels))
        media = latents[media_index.clamp(min=0)] * (media_index >= 0)[..., None, None].to(latents.dtype)
        kv = [None if blk is None else blk.media_kv(media) for blk in self._xattn_blocks]
        times = text_time(input_ids == self.media_token_id)
        return self._lm(input_ids, attention_mask, kv, times, None, False).logits
