"""Option ranking's passes (models/decoding/run.py): options grouped shortest first under a budget of fed
positions, so memory is bounded and an option is padded only to its similar-length neighbours."""

from __future__ import annotations

from flamingo_eval.models.decoding.run import option_chunks


def test_single_token_options_need_no_pass():
    assert option_chunks([1, 1, 1], prompts=8) == []


def test_chunks_go_shortest_first_and_stay_within_the_budget():
    lengths = [5, 2, 3, 2, 4, 1, 3]
    chunks = option_chunks(lengths, prompts=2, budget=8)
    assert [j for c in chunks for j in c] == [1, 3, 2, 6, 4, 0]  # by length; the 1-token option is absent
    for c in chunks:
        fed = 2 * len(c) * (max(lengths[j] for j in c) - 1)
        assert fed <= 8 or len(c) == 1


def test_an_option_wider_than_the_budget_still_gets_its_own_pass():
    assert option_chunks([40, 2], prompts=4, budget=10) == [[1], [0]]


def test_a_thousand_class_names_pad_little():
    lengths = [1 + (j * 7) % 9 for j in range(1000)]
    chunks = option_chunks(lengths, prompts=8)
    fed = sum(8 * len(c) * (max(lengths[j] for j in c) - 1) for c in chunks)
    real = sum(8 * (n - 1) for n in lengths)
    assert fed <= 1.1 * real  # padded to the longest of all: 2x
