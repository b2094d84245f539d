"""Classification by ranking the task's options after each prompt: what a classification item's record is.

Options are compared by their mean per-token log-probability (OpenFlamingo's ``normalize_length=True``), so a
long class name does not lose for its length. With prompt ensembling (``--prompt-ensemble N``) each item is
ranked after up to N orderings of its demonstrations (the built order first, then distinct permutations drawn
by a seed of the item's id) and the log-probabilities are averaged, as OpenFlamingo's
``--classification_prompt_ensembling`` does (it draws min(6, shots!) shuffles).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.base import ModelAdapter
from flamingo_eval.prompt import Prompt, separator_of


def orderings(prompt: list, n: int, key: str) -> list[Prompt]:
    """``prompt`` and up to n - 1 other orderings of its demonstrations (the query stays last): min(n, k!)
    in all for k demonstrations, the same for the same ``key`` in every run."""
    if n < 1:
        raise ConfigError(f"--prompt-ensemble must be at least 1, not {n}")
    demos, query = list(prompt[:-1]), prompt[-1]
    wanted = min(n, math.factorial(len(demos)))
    rng = random.Random(int.from_bytes(hashlib.sha256(f"ensemble:{key}".encode()).digest()[:8], "big"))
    seen, out = {tuple(range(len(demos)))}, [list(range(len(demos)))]
    while len(out) < wanted:
        order = rng.sample(range(len(demos)), len(demos))
        if tuple(order) not in seen:
            seen.add(tuple(order))
            out.append(order)
    return [Prompt([demos[i] for i in order] + [query], separator=separator_of(prompt)) for order in out]


def mean_logprobs(model: ModelAdapter, prompts: Sequence[list], options: Sequence[str], keys: Sequence[str],
                  ensemble: int = 1) -> list[list[float]]:
    """Per prompt, each option's mean per-token log-probability, averaged over the prompt's orderings."""
    lengths = model.option_lengths(list(options))
    variants = [orderings(p, ensemble, k) for p, k in zip(prompts, keys, strict=True)]
    sums = model.rank([v for vs in variants for v in vs], list(options))
    out, at = [], 0
    for vs in variants:
        rows = sums[at: at + len(vs)]
        at += len(vs)
        out.append([sum(r[j] for r in rows) / len(rows) / lengths[j] for j in range(len(options))])
    return out
