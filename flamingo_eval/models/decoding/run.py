"""Generation and option ranking over any cached model pass: what every adapter's ``generate``/``rank`` do
once its prompts are tokenised. A model is reached through two functions:

    prefill(rows_per_prompt, room) -> (last logits (B, V) float32, state)   each prompt run once
    extend(state, tokens (R, t), all_logits) -> logits                       new tokens after the prompt

and the state's ``reorder`` / ``keep_queries`` (models/decoding/search.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.base import GenerationSettings
from flamingo_eval.models.decoding import search

Prefill = Callable[[int, int], tuple[torch.Tensor, object]]
Extend = Callable[[object, torch.Tensor, bool], torch.Tensor]


def check_settings(settings: GenerationSettings) -> None:
    if settings.num_beams < 1 or settings.max_new_tokens < 1:
        raise ConfigError(f"generation needs num_beams >= 1 and max_new_tokens >= 1, got {settings}")


def generate_ids(prefill: Prefill, extend: Extend, settings: GenerationSettings, stop_ids: int | Sequence[int],
                 banned: Sequence[int] = ()) -> list[list[int]]:
    """The new ids per prompt (greedy for one beam, else beam search), ending with the stop id where
    generation stopped at one."""
    check_settings(settings)
    k = settings.num_beams
    logits, state = prefill(k, settings.max_new_tokens)
    common = dict(eos_id=stop_ids, max_new_tokens=settings.max_new_tokens, min_new_tokens=settings.min_new_tokens,
                  banned=list(banned))
    step = lambda s, tokens: extend(s, tokens, False)  # noqa: E731
    if k == 1:
        return search.greedy(logits, state, step, **common)
    return search.beam_search(logits.repeat_interleave(k, dim=0), state, step, num_beams=k,
                              length_penalty=settings.length_penalty, **common)


def rank_options(prefill: Prefill, extend: Extend, prompts: int, options: list[list[int]], pad: int) -> list[list[float]]:
    """Summed log-probability of each option's ids after each prompt. One prefill per prompt; the options
    continue it (one row each), their first token scored from the prompt's last logits, so single-token
    options ("yes"/"no") cost no extra pass."""
    if any(not o for o in options):
        raise ConfigError("rank: an option tokenizes to nothing")
    longest = max(map(len, options))
    rows_per_prompt = len(options) if longest > 1 else 1
    logits, state = prefill(rows_per_prompt, longest - 1)
    first = torch.log_softmax(logits, dim=-1)  # (B, V): each option's first token
    scores = first[:, [o[0] for o in options]].clone()  # (B, O)
    if longest > 1:  # after an option's end: padding, causal, so never seen by its tokens
        rest = torch.tensor([o[:-1] + [pad] * (longest - len(o)) for o in options], device=logits.device)
        later = extend(state, rest.repeat(prompts, 1), True)  # (B*O, longest-1, V)
        logp = torch.log_softmax(later, dim=-1).view(prompts, len(options), longest - 1, -1)
        for j, o in enumerate(options):
            if len(o) > 1:
                target = torch.tensor(o[1:], device=logp.device)
                scores[:, j] += logp[:, j, torch.arange(len(o) - 1), target].sum(-1)
    return scores.tolist()
