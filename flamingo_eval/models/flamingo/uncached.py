"""Decoding by definition, for tests and the benchmark: no cache of any kind.

Each step runs ``Flamingo.forward`` (the definition) over the whole sequence so far (prompt + generated
tokens) for every row, beams included, with every image's cross-attention K/V recomputed and masked by
token time, and every image occurrence encoded afresh. The cached path (``FlamingoAdapter.generate_ids``)
must reproduce it token for token; both share only the search loops, which are checked against
transformers' generate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flamingo_eval.models.base import GenerationSettings
from flamingo_eval.models.decoding import search
from flamingo_eval.prompt import Chunk


class UncachedState:
    """Whole sequences, one row per beam; ``step`` appends tokens and recomputes everything."""

    def __init__(self, model, ids: torch.Tensor, mask: torch.Tensor, latents: torch.Tensor):
        self.model = model
        self.ids, self.mask, self.latents = ids, mask, latents

    def logits(self) -> torch.Tensor:
        return self.model(self.ids, self.mask, self.latents)[:, -1].float()

    def reorder(self, rows: torch.Tensor) -> None:
        self.ids, self.mask = self.ids[rows], self.mask[rows]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.ids = torch.cat([self.ids, tokens], dim=1)
        self.mask = torch.cat([self.mask, torch.ones_like(tokens)], dim=1)
        return self.logits()


def latents_by_row(adapter, prompts: Sequence[list[Chunk]]) -> torch.Tensor:
    """(B, T_max, n, D): each row's images encoded afresh, in order, zeros where a row has fewer."""
    model = adapter.model
    per_row = [[im for c in p for im in c.images] for p in prompts]
    n, dim = model.perceiver.latents.shape
    out = torch.zeros((len(prompts), max(map(len, per_row), default=0), n, dim), dtype=model.dtype, device=model.device)
    for b, row in enumerate(per_row):
        if row:
            out[b, : len(row)] = model.encode_images(torch.stack([adapter.transform(im.load()) for im in row]))
    return out


@torch.inference_mode()
def generate_ids_uncached(adapter, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[list[int]]:
    """What ``adapter.generate_ids`` returns, computed without caching anything."""
    model = adapter.model
    ids, mask = adapter._pad_left(adapter._tokenize(prompts))
    k = settings.num_beams
    latents = latents_by_row(adapter, prompts)
    state = UncachedState(model, *(x.repeat_interleave(k, dim=0) for x in (ids, mask, latents)))
    common = dict(
        eos_id=model.eoc_token_id,
        max_new_tokens=settings.max_new_tokens,
        min_new_tokens=settings.min_new_tokens,
        banned=[model.media_token_id],
    )
    step = UncachedState.step
    if k == 1:
        return search.greedy(state.logits(), state, step, **common)
    return search.beam_search(state.logits(), state, step, num_beams=k, length_penalty=settings.length_penalty, **common)
