"""What makes the Flamingo of model.py fast: the same function, computed with less work. Idefics (v1), a
Flamingo reproduction, runs on the same machinery (models/idefics): only its blocks and its image rule differ.

- Each distinct image's cross-attention K/V is computed once per layer (not per prompt, beam or step).
- Prefill: each ``<image>`` segment of a prompt attends to its own image's n keys only (``PerImage``), not
  to an L x (T_img * n) masked matrix; each prompt runs once whatever the beam count (models/decoding).
- Decode: a new token can only see the prompt's last image (``<image>`` is never generated), so its K/V is
  all that is kept (``LastImage``), once per query for all its beams; the self-attention reads the prompt
  once per query (the cascade kernel of models/decoding).

``prefill`` and ``extend`` are all a decode loop needs; decoding by definition (uncached.py) must agree
with them token for token, and the load-time self-check (selfcheck.py) verifies that again at every load.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from flamingo_eval.models.decoding.attention import SuffixTree
from flamingo_eval.models.decoding.cache import DecodeAttention, KVCache, PrefillAttention
from flamingo_eval.models.flamingo.model import CrossAttentionLM, Flamingo, patch_tokens, text_time
from flamingo_eval.models.lm.decoder import SequenceAttention, positions_of


@dataclass
class PromptImages:
    """The images of a batch of prompts: latents of each distinct image once, and which one each
    prompt's t-th ``<image>`` shows (an image shared by prompts is stored and projected once)."""

    latents: torch.Tensor  # (U, n, D_vis)
    index: torch.Tensor  # (B, T_max) long into latents; -1 past a prompt's last image


class PerImage:
    """Prefill: each (prompt, image) segment's tokens are one packed query block against that image's keys.

    ``keys``/``values`` (U, heads, n, d) per distinct image; ``index`` (B, T_max) into them; ``times`` (B, L)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor, times: torch.Tensor):
        self.keys, self.values, self.index, self.times = keys, values, index, times

    def __call__(self, q: torch.Tensor, scale: float) -> torch.Tensor:
        b, heads, length, d = q.shape
        q = q.transpose(1, 2).reshape(b, length, heads * d)
        out = torch.zeros_like(q)
        self.index, self.times = self.index.to(q.device), self.times.to(q.device)
        valid = self.times > 0
        if self.keys.shape[0] == 0 or not bool(valid.any()):
            return out.view(b, length, heads, d).transpose(1, 2)
        t_max = self.index.shape[1]
        present = (self.index >= 0).flatten()
        compact = present.long().cumsum(0) - 1  # segment (row, t) -> packed index
        seg = compact[(torch.arange(b, device=q.device)[:, None] * t_max + self.times - 1)[valid]]
        flat = torch.arange(b * length, device=q.device).view(b, length)[valid]
        n_seg = int(present.sum())
        start = torch.full((n_seg,), b * length, device=q.device, dtype=torch.long).scatter_reduce(0, seg, flat, "amin")
        within = flat - start[seg]  # times never decrease, so a segment's tokens are contiguous
        packed = q.new_zeros((n_seg, int(within.max()) + 1, heads * d))
        packed[seg, within] = q[valid]
        images = self.index.flatten()[present]
        packed = packed.view(n_seg, -1, heads, d).transpose(1, 2)
        att = F.scaled_dot_product_attention(packed, self.keys[images], self.values[images], scale=scale)
        out[valid] = att.transpose(1, 2).reshape(n_seg, -1, heads * d)[seg, within]
        return out.view(b, length, heads, d).transpose(1, 2)


class LastImage:
    """Decode: per query, its last image's K/V (Q, heads, n, d); its rows (beams) are one query block.
    ``has_image`` (Q,) bool: a prompt without images gets no attention output."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, has_image: torch.Tensor):
        self.keys, self.values, self.has_image = keys, values, has_image

    def __call__(self, q: torch.Tensor, scale: float) -> torch.Tensor:
        rows, heads, length, d = q.shape
        queries = self.keys.shape[0]
        by_query = q.reshape(queries, rows // queries, heads, length, d).transpose(1, 2).reshape(queries, heads, -1, d)
        att = F.scaled_dot_product_attention(by_query, self.keys, self.values, scale=scale)
        att = att * self.has_image.to(att.device, att.dtype)[:, None, None, None]
        return att.view(queries, heads, rows // queries, length, d).transpose(1, 2).reshape(rows, heads, length, d)

    def keep(self, queries: torch.Tensor) -> LastImage:
        queries = queries.to(self.keys.device)
        return LastImage(self.keys[queries], self.values[queries], self.has_image.to(queries.device)[queries])


@dataclass
class DecodeState:
    """Prompts being extended, ``beams`` rows per query: the self-attention cache, each row's next position,
    and per cross-attention block each query's last image (all a new token can attend to)."""

    cache: KVCache
    next_position: torch.Tensor  # (R,) the position of each row's next token (real tokens counted)
    last_image: dict[str, LastImage]
    beams: int
    media_token_id: int | None = None  # a token that would open a new image (Flamingo's <image>): never fed

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep rows ``rows`` (beam search). Rows only move within a query: the prompt, its positions and its
        image stay put, and only the generated suffix of the cache moves."""
        self.cache.reorder(rows)

    def branch(self, rows_per_query: int, room: int, tree: SuffixTree | None = None) -> DecodeState:
        """The same prompts continued afresh by ``rows_per_query`` rows each (rank's options, a chunk at a
        time): the prompt's K/V and images are shared, the rows start right after the prompt. ``tree``: each
        row holds a token tree (options sharing their prefixes), fed whole."""
        cache = self.cache.branch(rows_per_query, room, tree)
        next_position = cache.prompt_real.long().sum(-1).to(self.next_position.device).repeat_interleave(rows_per_query)
        return DecodeState(cache, next_position, self.last_image, rows_per_query, self.media_token_id)

    def keep_queries(self, queries: torch.Tensor) -> None:
        """Drop every other query (all of them finished), so later steps compute only what is still running."""
        rows = (queries[:, None] * self.beams + torch.arange(self.beams, device=queries.device)).flatten()
        self.cache.keep_queries(queries)
        self.next_position = self.next_position[rows]
        self.last_image = {key: kv.keep(queries) for key, kv in self.last_image.items()}


def image_kv(model: CrossAttentionLM, latents: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per block, the K/V of each distinct image once: (U, n, D) latents -> (U, heads, n, d) each."""
    return {key: block.media_kv(latents.to(block_device(block))) for key, block in model.xattn.items()}


def block_device(block: torch.nn.Module) -> torch.device:
    """Where a block's weights are (one device, or one of several under ``--device-map auto``)."""
    return next(block.parameters()).device


def _with_dummy_image(model: CrossAttentionLM, images: PromptImages, rows: int) -> PromptImages:
    """Text-only prompts: one zero image that no token attends to, so the shapes stay the same."""
    if images.latents.shape[0]:
        return images
    return PromptImages(images.latents.new_zeros((1, *model.latent_shape)), images.index.new_full((rows, 1), -1))


@torch.no_grad()
def prefill(model: CrossAttentionLM, ids: torch.Tensor, mask: torch.Tensor, images: PromptImages, beams: int = 1,
            room: int = 0, times: torch.Tensor | None = None) -> tuple[torch.Tensor, DecodeState]:
    """Run each (left-padded) prompt once; returns its last position's logits (B, V) in float32 and a state of
    ``beams`` rows per prompt with room for ``room`` more tokens.

    ``times`` (B, L): which image (1-based, 0: none) each token attends to; by default Flamingo's rule, the
    latest ``<image>`` token at or before it. New tokens attend to the image of the prompt's last token."""
    images = _with_dummy_image(model, images, len(ids))
    media_token = None
    if times is None:
        media_token = model.media_token_id
        times = text_time(ids == media_token)
    if bool((times.amax(-1) > (images.index >= 0).sum(-1)).any()):
        raise ValueError("a prompt has more <image> tokens than images")
    kv = image_kv(model, images.latents)
    cache = KVCache(model.lm.config.layers, beams, room, mask)
    per_image = {key: PerImage(k, v, images.index, times) for key, (k, v) in kv.items()}
    logits = model.run(ids, positions_of(mask), PrefillAttention(cache), per_image, keep=1)[:, -1].float()
    last_time = times[:, -1]
    last = images.index.gather(1, (last_time - 1).clamp(min=0)[:, None])[:, 0].clamp(min=0)
    last_image = {key: LastImage(k[last.to(k.device)], v[last.to(k.device)], last_time > 0) for key, (k, v) in kv.items()}
    next_position = mask.long().sum(-1).repeat_interleave(beams)
    return logits, DecodeState(cache, next_position, last_image, beams, media_token)


@torch.no_grad()
def extend(model: CrossAttentionLM, state: DecodeState, tokens: torch.Tensor, all_logits: bool = False) -> torch.Tensor:
    """Feed (R, t) new tokens; they attend to their prompt's last image. Returns the last position's logits
    (R, V), or every position's (R, t, V), in float32."""
    if state.media_token_id is not None and bool((tokens == state.media_token_id).any()):
        raise ValueError("<image> cannot be fed after the prompt: its image would be unknown")
    t = tokens.shape[1]
    positions = state.next_position[:, None] + state.cache.offsets(t, tokens.device)
    logits = model.run(tokens, positions, DecodeAttention(state.cache), state.last_image, keep=0 if all_logits else 1)
    state.cache.advance(t)
    state.next_position = state.next_position + t
    return logits.float() if all_logits else logits[:, -1].float()


def forward_train(model: Flamingo, pixels: torch.Tensor, media_index: torch.Tensor, ids: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Grad-enabled logits (B, L, V) for training, with the packed per-image cross-attention.

    ``pixels`` (N, 3, H, W) holds each distinct image once; ``media_index`` (B, T_img) picks row b's t-th image
    from it (-1 where a row has fewer images; those are never attended)."""
    latents = model.perceiver(patch_tokens(model.vision_encoder, pixels))
    times = text_time(ids == model.media_token_id)
    media = {key: PerImage(k, v, media_index, times) for key, (k, v) in image_kv(model, latents).items()}
    return model.run(ids, positions_of(mask), SequenceAttention(mask.bool()), media)
