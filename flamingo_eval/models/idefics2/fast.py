"""What makes Idefics2/3 decoding fast: each prompt is prefilled once whatever the beam count, its K/V kept
once per query (the project's KV cache and cascade kernel, models/decoding); image features come in already
computed (once per distinct image, by the adapter's cache). Decoding by definition (``ImageTokenLM.forward``
over the whole sequence) must agree token for token."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flamingo_eval.models.decoding.cache import DecodeAttention, KVCache, PrefillAttention
from flamingo_eval.models.flamingo.fast import DecodeState
from flamingo_eval.models.idefics2.model import ImageTokenLM
from flamingo_eval.models.lm.decoder import positions_of


@torch.no_grad()
def prefill(model: ImageTokenLM, ids: torch.Tensor, mask: torch.Tensor, features: Sequence[torch.Tensor],
            beams: int = 1, room: int = 0) -> tuple[torch.Tensor, DecodeState]:
    """Each (left-padded) prompt once -> its last logits (B, V) in float32 and ``beams`` rows per prompt with
    room for ``room`` more tokens."""
    cache = KVCache(model.lm.config.layers, beams, room, mask)
    x = model.embed(ids, features)
    logits = model.run(x, positions_of(mask), PrefillAttention(cache), keep=1)[:, -1].float()
    next_position = mask.long().sum(-1).repeat_interleave(beams)
    return logits, DecodeState(cache, next_position, {}, beams)


@torch.no_grad()
def extend(model: ImageTokenLM, state: DecodeState, tokens: torch.Tensor, all_logits: bool = False) -> torch.Tensor:
    """Feed (R, t) new text tokens; the last position's logits (R, V), or every position's (R, t, V), float32."""
    t = tokens.shape[1]
    positions = state.next_position[:, None] + state.cache.offsets(t, tokens.device)
    logits = model.run(model.lm.embed(tokens), positions, DecodeAttention(state.cache), keep=0 if all_logits else 1)
    state.cache.advance(t)
    state.next_position = state.next_position + t
    return logits.float() if all_logits else logits[:, -1].float()
