"""Idefics2/3's fast path checks itself at load, as Flamingo's does (flamingo/selfcheck.py): a tiny twin with
the loaded Mistral/Llama's options decodes prompts holding image features by cache and by definition; any
difference stops the run with one line."""

from __future__ import annotations

import torch

from flamingo_eval.models.flamingo.selfcheck import (
    VOCAB,
    WIDTH,
    compare,
    prompts,
    randomize,
    twin_lm,
    verdict,
)
from flamingo_eval.models.idefics2 import fast
from flamingo_eval.models.idefics2.model import ImageTokenLM


def tiny_twin(model: ImageTokenLM, seed: int = 0) -> ImageTokenLM:
    torch.manual_seed(seed)
    return randomize(ImageTokenLM(None, None, None, twin_lm(model.lm.config, 2), image_token_id=VOCAB - 2))


@torch.no_grad()
def largest_difference(twin: ImageTokenLM) -> float:
    g = torch.Generator().manual_seed(1)
    ids, mask = prompts(twin.image_token_id, g)
    ids, mask = ids.to(twin.device), mask.to(twin.device)
    features = [torch.randn((int(n), WIDTH), generator=g).to(twin.device, twin.dtype)
                for n in (ids == twin.image_token_id).sum(-1)]
    return compare(lambda beams, room: fast.prefill(twin, ids, mask, features, beams, room),
                   lambda state, tokens: fast.extend(twin, state, tokens),
                   lambda i, m, origin: twin(i, m, [features[o] for o in origin.tolist()]), ids, mask, g)


def check_fast_path(model: ImageTokenLM) -> float:
    return verdict(f"the {model.lm.config.family} LM", lambda: largest_difference(tiny_twin(model).to(model.device)))
