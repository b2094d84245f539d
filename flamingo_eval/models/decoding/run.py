"""Generation and option ranking over any cached model pass: what every adapter's ``generate``/``rank`` do
once its prompts are tokenised. A model is reached through two functions:

    prefill(rows_per_prompt, room) -> (last logits (B, V) float32, state)   each prompt run once
    extend(state, tokens (R, t), all_logits) -> logits                       new tokens after the prompt

and the state's ``reorder`` / ``keep_queries`` (models/decoding/search.py) and ``branch`` (rank's chunks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import torch

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.base import GenerationSettings
from flamingo_eval.models.decoding import search
from flamingo_eval.models.decoding.attention import SuffixTree

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


TREE_WIDTH = 64  # positions per row of packed option trees (at least the longest option): few ancestor copies


@dataclass
class TreePass:
    """One pass of rank's options packed as token trees: rows of ``tokens`` where an option's tokens share
    the places of every other option's identical prefix; ``parent`` the column of each token's parent in its
    row (-1 at depth 0 and in the padding); ``picks`` (option, row, column, next token): the scores to read."""

    tokens: list[list[int]]
    depth: list[list[int]]
    parent: list[list[int]]
    picks: list[tuple[int, int, int, int]]

    @cached_property
    def tree(self) -> SuffixTree:
        """Each token sees itself and its ancestors in its row; padding only itself (on the CPU)."""
        parent = torch.tensor(self.parent)
        rows, width = parent.shape
        visible = torch.zeros((rows, width, width), dtype=torch.bool)
        for col in range(width):  # parents sit left of their children: their rows are final already
            visible[:, col, col] = True
            has = parent[:, col] >= 0
            visible[has, col] |= visible[has, parent[has, col]]
        return SuffixTree(torch.tensor(self.depth), visible)

    @cached_property
    def pick_index(self) -> tuple[torch.Tensor, ...]:
        """``picks`` as four index tensors: option, row, column, next token (on the CPU)."""
        return tuple(torch.tensor(x) for x in zip(*self.picks, strict=True))


def option_trees(options: Sequence[Sequence[int]], prompts: int, budget: int | None = None,
                 width: int | None = None) -> list[TreePass]:
    """The options' fed tokens (all but the last, which is only scored) as one prefix tree, walked depth
    first into rows of ``width`` places: a token joins the current row when its parent is there, else a new
    row starts with copies of its ancestors. Passes hold as many rows as fit ``budget`` fed positions
    (prompts x rows x width). Every option's k-th scored token is read once, at its prefix's first place."""
    budget = RANK_CHUNK_TOKENS if budget is None else budget
    fed = [tuple(o[:-1]) for o in options]
    longest = max((len(f) for f in fed), default=0)
    if not longest:
        return []
    children: dict[tuple[int, ...], list[tuple[int, ...]]] = {(): []}
    for f in sorted(set(fed)):
        for k in range(1, len(f) + 1):
            if f[:k] not in children:
                children[f[:k]] = []
                children[f[:k - 1]].append(f[:k])
    nodes = len(children) - 1
    width = max(longest, min(TREE_WIDTH if width is None else width, nodes))
    rows: list[list[tuple[int, ...]]] = []
    first: dict[tuple[int, ...], tuple[int, int]] = {}  # a prefix's first place: (row, column)
    here: dict[tuple[int, ...], int] = {}  # the current row's columns
    stack = list(reversed(children[()]))
    while stack:
        node = stack.pop()
        stack.extend(reversed(children[node]))
        if not rows or len(rows[-1]) == width or (len(node) > 1 and node[:-1] not in here):
            rows.append([node[:k] for k in range(1, len(node))])  # copies of its ancestors
            here = {prefix: col for col, prefix in enumerate(rows[-1])}
        here[node] = len(rows[-1])
        first.setdefault(node, (len(rows) - 1, len(rows[-1])))
        rows[-1].append(node)
    per_pass = max(1, budget // (prompts * width))
    picks: list[list[tuple[int, int, int, int]]] = [[] for _ in range(0, len(rows), per_pass)]
    for j, o in enumerate(map(tuple, options)):
        for k in range(len(o) - 1):
            row, col = first[o[:k + 1]]
            picks[row // per_pass].append((j, row % per_pass, col, o[k + 1]))
    passes = []
    for start, read in zip(range(0, len(rows), per_pass), picks, strict=True):
        pad = [(-1, 0, -1)] * width
        cells = [[(prefix[-1], len(prefix) - 1, row.index(prefix[:-1]) if len(prefix) > 1 else -1)
                  for prefix in row] + pad[len(row):] for row in rows[start:start + per_pass]]
        passes.append(TreePass([[c[0] for c in r] for r in cells], [[c[1] for c in r] for r in cells],
                               [[c[2] for c in r] for r in cells], read))
    return passes


@lru_cache(maxsize=8)
def _packed(options: tuple[tuple[int, ...], ...], prompts: int, budget: int) -> tuple[TreePass, ...]:
    """``option_trees``, once per option list: every batch of a run ranks the same 1000 class names."""
    return tuple(option_trees(options, prompts, budget))


def rank_options(prefill: Prefill, extend: Extend, prompts: int, options: list[list[int]], pad: int,
                 budget: int | None = None, trees: bool = False) -> list[list[float]]:
    """Summed log-probability of each option's ids after each prompt. One prefill per prompt; the options
    continue it a pass at a time, every row of a pass sharing its prompt's K/V through the cascade kernel, the
    prompt cut back to itself for each pass (``state.branch``). Each option's first token is scored from the
    prompt's last logits, so single-token options ("yes"/"no") cost no pass.

    ``trees`` (models whose decode state takes a ``SuffixTree``): the options packed as token trees
    (``option_trees``), every shared prefix fed once and nothing padded to a longer option. Otherwise options
    of similar length side by side, one per row (``option_chunks``)."""
    if any(not o for o in options):
        raise ConfigError("rank: an option tokenizes to nothing")
    logits, state = prefill(1, 0)
    first = torch.log_softmax(logits, dim=-1)  # (B, V): each option's first token
    scores = first[:, [o[0] for o in options]].clone()  # (B, O)
    if trees:
        budget = RANK_CHUNK_TOKENS if budget is None else budget
        for tp in _packed(tuple(map(tuple, options)), prompts, budget):
            rows, width = len(tp.tokens), len(tp.tokens[0])
            fed = torch.tensor([[pad if t < 0 else t for t in r] for r in tp.tokens], device=logits.device)
            tree = SuffixTree(tp.tree.offset.to(logits.device), tp.tree.visible.to(logits.device))
            later = extend(state.branch(rows, width, tree), fed.repeat(prompts, 1), True)
            later = later.view(prompts, rows, width, -1)
            option, row, col, target = (x.to(logits.device) for x in tp.pick_index)
            picked = later[:, row, col, target] - later.logsumexp(-1)[:, row, col]  # (B, picks)
            scores.index_add_(1, option, picked.to(scores.dtype))
        return scores.tolist()
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
