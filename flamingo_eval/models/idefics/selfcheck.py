"""Idefics' fast path checks itself at load, as Flamingo's does (flamingo/selfcheck.py): a tiny twin with
the loaded LLaMA's options and the same gated cross-attention layout (interval, query/key norms, gate shape)
decodes by cache and by definition; any difference stops the run with one line."""

from __future__ import annotations

import torch

from flamingo_eval.models.flamingo import fast
from flamingo_eval.models.flamingo.model import text_time
from flamingo_eval.models.flamingo.selfcheck import (
    VISION_WIDTH,
    VOCAB,
    WIDTH,
    compare,
    prompts,
    randomize,
    twin_lm,
    verdict,
)
from flamingo_eval.models.idefics.model import Idefics

LATENTS = 4


def tiny_twin(model: Idefics, seed: int = 0) -> Idefics:
    gate = tuple(next(iter(model.xattn.values())).attn_gate.shape)
    gate = gate if len(gate) == 1 else (*gate[:-1], WIDTH)
    qk_norm = next(iter(model.xattn.values())).q_norm is not None
    torch.manual_seed(seed)
    lm = twin_lm(model.lm.config, model.cross_layer_interval + 1)
    return randomize(Idefics(None, None, lm, model.cross_layer_interval, VISION_WIDTH, LATENTS, qk_norm, gate))


@torch.no_grad()
def largest_difference(twin: Idefics) -> float:
    g = torch.Generator().manual_seed(1)
    device, dtype = twin.device, twin.dtype
    media_id = VOCAB - 2
    ids, mask = prompts(media_id, g)
    latents = torch.randn((3, LATENTS, VISION_WIDTH), generator=g).to(device, dtype)
    index = torch.tensor([[0, 1], [1, -1], [-1, -1]])
    ids, mask, index = ids.to(device), mask.to(device), index.to(device)
    media = latents[index.clamp(min=0)] * (index >= 0)[:, :, None, None].to(dtype)
    times = text_time(ids == media_id)
    return compare(
        lambda beams, room: fast.prefill(twin, ids, mask, fast.PromptImages(latents, index), beams, room, times=times),
        lambda state, tokens: fast.extend(twin, state, tokens),
        lambda i, m, origin: twin(i, m, media[origin], text_time(i == media_id)), ids, mask, g)


def check_fast_path(model: Idefics) -> float:
    return verdict("Idefics", lambda: largest_difference(tiny_twin(model).to(model.device)))
