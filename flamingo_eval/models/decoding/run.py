"""Generation and option ranking over any cached model pass: what every adapter's ``generate``/``rank`` do
once its prompts are tokenised. A model is reached through two functions:

    prefill(rows_per_prompt, room) -> (last logits (B, V) float32, state)   each prompt run once
    extend(state, tokens (R, t), all_logits) -> logits                       new tokens after the prompt

and the state's ``reorder`` / ``keep_queries`` (models/decoding/search.py) and ``branch`` (rank's chunks).
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


RANK_CHUNK_TOKENS = 4096  # option positions fed per pass (rows x length): bounds rank's memory, not its scores


def option_chunks(lengths: Sequence[int], prompts: int, budget: int | None = None) -> list[list[int]]:
    """Option indices in passes of at most ``budget`` fed positions (prompts x options x width), shortest
    options first, so a pass pads each option only to the longest of its own similar-length neighbours
    (not to the longest of all). An option of one token needs no pass; one option too wide still gets one."""
    budget = RANK_CHUNK_TOKENS if budget is None else budget
    order = sorted((j for j, n in enumerate(lengths) if n > 1), key=lambda j: lengths[j])
    chunks: list[list[int]] = []
    for j in order:
        width = lengths[j] - 1  # an option's last token is scored, never fed
        if chunks and prompts * (len(chunks[-1]) + 1) * width <= budget:
            chunks[-1].append(j)
        else:
            chunks.append([j])
    return chunks


def rank_options(prefill: Prefill, extend: Extend, prompts: int, options: list[list[int]], pad: int,
                 budget: int | None = None) -> list[list[float]]:
    """Summed log-probability of each option's ids after each prompt. One prefill per prompt; the options
    continue it a chunk at a time (``option_chunks``), every row of a chunk sharing its prompt's K/V through
    the cascade kernel, the prompt cut back to itself for each chunk (``state.branch``). Each option's first
    token is scored from the prompt's last logits, so single-token options ("yes"/"no") cost no pass."""
    if any(not o for o in options):
        raise ConfigError("rank: an option tokenizes to nothing")
    logits, state = prefill(1, 0)
    first = torch.log_softmax(logits, dim=-1)  # (B, V): each option's first token
    scores = first[:, [o[0] for o in options]].clone()  # (B, O)
    for chunk in option_chunks([len(o) for o in options], prompts, budget):
        width = max(len(options[j]) for j in chunk) - 1
        # after an option's end: padding, causal, so never seen by its tokens
        fed = torch.tensor([options[j][:-1] + [pad] * (width + 1 - len(options[j])) for j in chunk],
                           device=logits.device)
        target = torch.tensor([options[j][1:] + [pad] * (width + 1 - len(options[j])) for j in chunk],
                              device=logits.device)
        real = torch.arange(width, device=logits.device)[None, :] < torch.tensor(
            [len(options[j]) - 1 for j in chunk], device=logits.device)[:, None]
        later = extend(state.branch(len(chunk), width), fed.repeat(prompts, 1), True)  # (B*C, width, V)
        later = later.view(prompts, len(chunk), width, -1)
        picked = later.gather(-1, target.expand(prompts, -1, -1)[..., None])[..., 0] - later.logsumexp(-1)
        scores[:, chunk] += (picked * real).sum(-1).to(scores.dtype)
    return scores.tolist()
