"""Option ranking's passes (models/decoding/run.py): options grouped shortest first under a budget of fed
positions, so memory is bounded and an option is padded only to its similar-length neighbours; or packed as
token trees, so a prefix that options share is fed once."""

from __future__ import annotations

import torch

from flamingo_eval.models.decoding.run import option_chunks, option_trees


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


def picks_by_option(passes):
    return sorted((j, p, row, col, target) for p, tp in enumerate(passes) for j, row, col, target in tp.picks)


def test_a_shared_prefix_is_fed_once():
    options = [[1, 2, 3], [1, 2, 4], [1, 5], [7]]  # fed: (1, 2), (1, 2), (1,), nothing
    (tp,) = option_trees(options, prompts=8)
    assert tp.tokens == [[1, 2]] and tp.depth == [[0, 1]] and tp.parent == [[-1, 0]]
    # option 0 reads 2 after (1) at column 0 and 3 after (1, 2) at column 1; option 2 reads 5 after (1)
    assert sorted(tp.picks) == [(0, 0, 0, 2), (0, 0, 1, 3), (1, 0, 0, 2), (1, 0, 1, 4), (2, 0, 0, 5)]


def test_a_full_row_continues_in_a_new_row_that_starts_with_copies_of_the_ancestors():
    options = [[1, 2, 3, 9], [1, 2, 4, 9], [1, 6, 9], [8, 9]]
    passes = option_trees(options, prompts=1, budget=100, width=3)
    (tp,) = passes
    assert tp.tokens == [[1, 2, 3], [1, 2, 4], [1, 6, 8]]  # a depth-0 token (8) joins any row
    assert tp.depth == [[0, 1, 2], [0, 1, 2], [0, 1, 0]]
    assert tp.parent == [[-1, 0, 1], [-1, 0, 1], [-1, 0, -1]]
    # every scored token is read once, at the first place of its prefix (never at a copy)
    assert [(j, row, col) for j, _, row, col, _ in picks_by_option(passes)] == [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (1, 0, 0), (1, 0, 1), (1, 1, 2), (2, 0, 0), (2, 2, 1), (3, 2, 2)]
    visible = tp.tree.visible
    assert visible[1, 2].tolist() == [True, True, True]  # 4 sees its copied ancestors 1, 2
    assert visible[2, 1].tolist() == [True, True, False]  # 6 sees 1 and itself
    assert visible[2, 2].tolist() == [False, False, True]  # 8 sees only itself


def test_a_row_not_filled_is_padded_and_the_padding_sees_only_itself():
    (tp,) = option_trees([[1, 2, 3, 9], [1, 6, 9]], prompts=1, budget=100, width=3)
    assert tp.tokens == [[1, 2, 3], [1, 6, -1]] and tp.parent[1] == [-1, 0, -1]
    assert tp.tree.visible[1, 2].tolist() == [False, False, True]


def test_passes_hold_the_rows_that_fit_the_budget():
    options = [[t, t + 1, t + 2] for t in range(0, 60, 3)]  # 20 unrelated two-token stems
    passes = option_trees(options, prompts=2, budget=16, width=2)  # 2 prompts x rows x 2 <= 16: 4 rows a pass
    assert [len(tp.tokens) for tp in passes] == [4] * 5
    assert len(picks_by_option(passes)) == 20 * 2
    assert option_trees([[1], [2]], prompts=8) == []  # single-token options: no pass


def test_the_thousand_imagenet_names_feed_fewer_positions_as_trees():
    lengths = [1 + (j * 7) % 9 for j in range(1000)]
    options = [[j % 50] + [100 + j] * (n - 1) for j, n in enumerate(lengths)]  # 50 shared first tokens
    passes = option_trees(options, prompts=8)
    fed = sum(len(tp.tokens) * len(tp.tokens[0]) for tp in passes)
    real = sum(n - 1 for n in lengths)
    assert fed < real and all(8 * len(tp.tokens) * len(tp.tokens[0]) <= 4096 for tp in passes)
    assert torch.tensor([len(tp.picks) for tp in passes]).sum() == real
