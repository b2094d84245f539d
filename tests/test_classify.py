"""Classification by ranking (classify.py): mean per-token log-probabilities, averaged over up to N
orderings of the same demonstrations."""

from __future__ import annotations

import math

import pytest

from flamingo_eval.classify import mean_logprobs, orderings
from flamingo_eval.prompt import Chunk, Prompt


def a_prompt(k: int) -> Prompt:
    return Prompt([Chunk(None, f"Output:{i}") for i in range(k)] + [Chunk(None, "Output:")], separator="")


def test_orderings_start_with_the_built_one_and_are_distinct_and_reproducible():
    got = orderings(a_prompt(4), 6, "item-1")
    texts = [tuple(c.text for c in p) for p in got]
    assert len(set(texts)) == 6 and texts[0] == tuple(c.text for c in a_prompt(4))
    assert all(t[-1] == "Output:" and sorted(t[:-1]) == sorted(texts[0][:-1]) for t in texts)
    assert texts == [tuple(c.text for c in p) for p in orderings(a_prompt(4), 6, "item-1")]


def test_no_more_orderings_than_permutations():
    assert len(orderings(a_prompt(2), 6, "x")) == math.factorial(2)
    assert len(orderings(a_prompt(3), 1, "x")) == 1


class Scripted:
    """Scores an option by how many demonstrations precede the demonstration "Output:0", times its length."""

    def option_lengths(self, options):
        return [len(o) for o in options]

    def rank(self, prompts, options):
        return [[-float([c.text for c in p].index("Output:0")) * len(o) for o in options] for p in prompts]


def test_mean_logprobs_divide_by_length_and_average_the_orderings():
    prompts = [a_prompt(2)]
    assert mean_logprobs(Scripted(), prompts, ["ab", "abcd"], ["k"]) == [[0.0, 0.0]]
    assert mean_logprobs(Scripted(), prompts, ["ab", "abcd"], ["k"], ensemble=2) == [pytest.approx([-0.5, -0.5])]
