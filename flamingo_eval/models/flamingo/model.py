"""The Flamingo module: images -> Perceiver latents (separately), then the media-conditioned LM pass.

Submodule names are OpenFlamingo's (``vision_encoder``, ``perceiver``, ``lang_encoder``) so its
checkpoints load by key. Image encoding is its own step (``encode_images``), so a caller can cache latents.

Two ways through the LM: ``forward`` (the whole sequence, every image's K/V, masked by token time: the
plain definition, used as the reference) and ``prefill``/``extend`` for decoding, which compute each
distinct image's cross-attention K/V once, prefill each prompt once whatever the beam count, keep only
each query's last image for the new tokens, and grow the self-attention cache in place (kv_cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from flamingo_eval.models.flamingo import mpt_attention, shared_attention
from flamingo_eval.models.flamingo.kv_cache import BeamCache
from flamingo_eval.models.flamingo.lm import (
    CrossAttnState,
    Family,
    add_cross_attention,
    cache_argument,
    position_ids,
)
from flamingo_eval.models.flamingo.perceiver import PerceiverResampler
from flamingo_eval.models.flamingo.sizes import OPENFLAMINGO, FlamingoSizes
from flamingo_eval.models.flamingo.vision import patch_tokens, vision_width
from flamingo_eval.models.flamingo.xattn import LastImageKV, SegmentKV, text_time

MediaKV = list  # per LM layer: None (no cross-attention block) or what that block attends to


@dataclass
class PromptImages:
    """The images of a batch of prompts: latents of each distinct image once, and which one each
    prompt's t-th ``<image>`` shows (an image shared by prompts is stored and projected once)."""

    latents: torch.Tensor  # (U, n, D_vis)
    index: torch.Tensor  # (B, T_max) long into latents; -1 past a prompt's last image


@dataclass
class DecodeState:
    """Prompts being extended, ``beams`` rows per query: the self-attention cache, the mask over everything
    seen so far, and per query its last image's cross-attention K/V (all a new token can attend to)."""

    cache: BeamCache
    attention_mask: torch.Tensor  # (R, L)
    last_image: MediaKV  # LastImageKV per cross-attention layer, one per query
    beams: int

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep rows ``rows`` (beam search). Rows only move within a query: the prompt, its mask and its image
        stay put, and only the generated suffix of the cache moves."""
        self.cache.reorder_cache(rows)

    def keep_queries(self, queries: torch.Tensor) -> None:
        """Drop every other query (all of them finished), so later steps compute only what is still running."""
        rows = (queries[:, None] * self.beams + torch.arange(self.beams, device=queries.device)).flatten()
        self.cache.keep_queries(queries)
        self.attention_mask = self.attention_mask[rows]
        self.last_image = [
            None if kv is None else LastImageKV(kv.keys[queries], kv.values[queries], kv.has_image[queries])
            for kv in self.last_image
        ]


class Flamingo(nn.Module):
    def __init__(
        self,
        vision_encoder: nn.Module,
        lang_encoder: nn.Module,
        family: Family,
        cross_attn_every_n_layers: int,
        media_token_id: int,
        eoc_token_id: int,
        sizes: FlamingoSizes = OPENFLAMINGO,
    ):
        super().__init__()
        dim_visual = vision_width(vision_encoder)
        self.vision_encoder = vision_encoder
        self.perceiver = PerceiverResampler(dim_visual, depth=sizes.perceiver_depth, dim_head=sizes.perceiver_dim_head,
                                            heads=sizes.perceiver_heads, num_latents=sizes.num_latents)
        self.lang_encoder = lang_encoder
        self.family = family
        self.cross_attn_every_n_layers = cross_attn_every_n_layers
        self.media_token_id = media_token_id
        self.eoc_token_id = eoc_token_id
        self._xattn_state = CrossAttnState(n_latents=self.perceiver.num_latents)
        self._xattn_blocks = add_cross_attention(
            lang_encoder, family, dim_visual, cross_attn_every_n_layers, self._xattn_state, sizes
        )
        self._cache_argument = cache_argument(lang_encoder)
        if family.name == "mpt":  # each attention reads one prompt copy per query for all its beams
            mpt_attention.install(lang_encoder)
        else:
            shared_attention.install(lang_encoder, self._xattn_state)

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

    def _lm(self, input_ids, attention_mask, media_kv, times, cache, use_cache, logits_to_keep=0):
        st = self._xattn_state
        st.media_kv, st.times, st.cache = media_kv, times, cache
        kwargs = {"logits_to_keep": logits_to_keep} if logits_to_keep else {}
        if self.family.uses_position_ids:
            kwargs["position_ids"] = position_ids(attention_mask, input_ids.shape[1])
        kwargs[self._cache_argument] = cache
        try:
            out = self.lang_encoder(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache, return_dict=True, **kwargs
            )
        finally:
            st.media_kv, st.times, st.cache = [], None, None
        if cache is not None:
            cache.check_written(attention_mask.shape[1], type(self.lang_encoder).__name__)
        return out

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, media_kv: MediaKV) -> torch.Tensor:
        """Full-sequence logits (B, L, V), no cache: each token sees its latest image."""
        times = text_time(input_ids == self.media_token_id)
        return self._lm(input_ids, attention_mask, media_kv, times, None, False).logits

    @torch.no_grad()
    def prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images: PromptImages, beams: int = 1, room: int = 0
    ) -> tuple[torch.Tensor, DecodeState]:
        """Run each (left-padded) prompt once; returns its last position's logits (B, V) in float32 and a
        state of ``beams`` rows per prompt with room for ``room`` more tokens."""
        media = input_ids == self.media_token_id
        counts = media.sum(-1)
        if images.latents.shape[0] == 0:  # text-only prompts: one dummy image, never attended
            n, dim = self.perceiver.latents.shape
            images = PromptImages(images.latents.new_zeros((1, n, dim)), images.index.new_full((len(input_ids), 1), -1))
        if bool((counts > (images.index >= 0).sum(-1)).any()):
            raise ValueError("a prompt has more <image> tokens than images")
        per_image = [None if blk is None else blk.media_kv(images.latents[:, None]) for blk in self._xattn_blocks]
        segments = [None if kv is None else SegmentKV(kv[0], kv[1], images.index) for kv in per_image]
        cache = BeamCache(len(self._xattn_blocks), beams, room)
        out = self._lm(input_ids, attention_mask, segments, text_time(media), cache, True, logits_to_keep=1)
        has_image = counts > 0
        last = images.index.gather(1, (counts - 1).clamp(min=0)[:, None])[:, 0].clamp(min=0)
        last_image = [
            None if kv is None else LastImageKV(kv[0][last], kv[1][last], has_image) for kv in per_image
        ]
        mask = attention_mask.repeat_interleave(beams, dim=0) if beams > 1 else attention_mask
        return out.logits[:, -1, :].float(), DecodeState(cache, mask, last_image, beams)

    @torch.no_grad()
    def extend(self, state: DecodeState, tokens: torch.Tensor, all_logits: bool = False) -> torch.Tensor:
        """Feed (R, t) new tokens; they attend to their prompt's last image. Returns the last position's
        logits (R, V), or every position's (R, t, V), in float32."""
        if bool((tokens == self.media_token_id).any()):
            raise ValueError("<image> cannot be fed after the prompt: its image would be unknown")
        state.attention_mask = torch.cat([state.attention_mask, torch.ones_like(tokens)], dim=1)
        times = torch.ones_like(tokens)  # unused by LastImageKV; the layers require a value
        keep = 0 if all_logits else 1
        logits = self._lm(tokens, state.attention_mask, state.last_image, times, state.cache, True, keep).logits
        return logits.float() if all_logits else logits[:, -1, :].float()

    def forward_train(
        self, pixels: torch.Tensor, media_index: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Grad-enabled logits (B, L, V) for training: the inference methods above run without autograd.

        ``pixels`` (N, 3, H, W) holds each distinct image once; ``media_index`` (B, T_img) picks row b's
        t-th image from it (-1 where a row has fewer images; those latents are zeros and never attended).
        """
        latents = self.perceiver(patch_tokens(self.vision_encoder, pixels))
        kv = [None if blk is None else SegmentKV(*blk.media_kv(latents[:, None]), media_index)
              for blk in self._xattn_blocks]
        times = text_time(input_ids == self.media_token_id)
        return self._lm(input_ids, attention_mask, kv, times, None, False).logits
