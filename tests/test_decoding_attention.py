"""The cascade kernel against attention over each beam's own copy of the prompt (the definition)."""

import pytest
import torch

from flamingo_eval.models.decoding.attention import cascade_attention
from flamingo_eval.models.lm.decoder import alibi_bias, alibi_slopes


def reference(q, prompt_keys, prompt_values, prompt_real, suffix_keys, suffix_values, slopes, scale, window=None):
    """Every beam with its own copy of the prompt, key heads repeated per query head, one softmax."""
    beams = q.shape[0] // prompt_keys.shape[0]
    groups = q.shape[1] // prompt_keys.shape[1]
    t, prompt, suffix = q.shape[2], prompt_keys.shape[2], suffix_keys.shape[2]
    k = torch.cat([prompt_keys.repeat_interleave(beams, 0), suffix_keys], 2).repeat_interleave(groups, 1)
    v = torch.cat([prompt_values.repeat_interleave(beams, 0), suffix_values], 2).repeat_interleave(groups, 1)
    scores = q @ k.transpose(-1, -2) * scale
    if slopes is not None:
        scores = scores + alibi_bias(slopes, prompt + suffix, q.device)[None, :, None, :]
    visible = torch.ones((q.shape[0], t, prompt + suffix), dtype=torch.bool)
    visible[:, :, :prompt] = prompt_real.repeat_interleave(beams, 0)[:, None, :]
    visible[:, :, prompt:] = torch.arange(suffix)[None, :] <= torch.arange(t)[:, None] + suffix - t
    if window is not None:  # key index > query index - window, indices over the padded prompt + suffix
        query_index = prompt + suffix - t + torch.arange(t)
        visible &= torch.arange(prompt + suffix)[None, None, :] > (query_index[None, :, None] - window)
    return scores.masked_fill(~visible[:, None], float("-inf")).softmax(-1) @ v


@pytest.mark.parametrize("alibi,window", [(False, None), (True, None), (False, 4), (False, 7)])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize("t", [1, 3])
def test_cascade_attention_equals_attention_over_each_beams_own_copy_of_the_prompt(alibi, window, kv_heads, t):
    """One prompt copy per query; grouped K/V heads (Llama, Mistral); one new token (a decode step) or
    several (rank's options); the first query left-padded; ALiBi (MPT) or none (rotary, already in q/k);
    Mistral's sliding window reaching into the prompt (7) or only the suffix and the prompt's end (4)."""
    torch.manual_seed(0)
    queries, beams, heads, prompt, suffix, dim = 2, 3, 4, 5, 4, 8
    rows = queries * beams
    inputs = dict(
        q=torch.randn(rows, heads, t, dim),
        prompt_keys=torch.randn(queries, kv_heads, prompt, dim), prompt_values=torch.randn(queries, kv_heads, prompt, dim),
        prompt_real=torch.tensor([[False, False, True, True, True], [True] * 5]),
        suffix_keys=torch.randn(rows, kv_heads, suffix, dim), suffix_values=torch.randn(rows, kv_heads, suffix, dim),
        slopes=alibi_slopes(heads) if alibi else None, scale=dim**-0.5, window=window,
    )
    torch.testing.assert_close(cascade_attention(**inputs), reference(**inputs), atol=1e-5, rtol=1e-5)


def test_a_beam_sees_only_its_own_suffix_and_its_querys_prompt():
    torch.manual_seed(1)
    q = torch.randn(4, 2, 1, 8)
    pk, pv = torch.randn(2, 2, 3, 8), torch.randn(2, 2, 3, 8)
    sk, sv = torch.randn(4, 2, 2, 8), torch.randn(4, 2, 2, 8)
    real = torch.ones(2, 3, dtype=torch.bool)
    base = cascade_attention(q, pk, pv, real, sk, sv, None, 0.3)
    changed = sv.clone()
    changed[1] += 5.0  # row 1's suffix
    pv2 = pv.clone()
    pv2[1] += 5.0  # query 1's prompt (rows 2 and 3)
    moved = (cascade_attention(q, pk, pv, real, sk, changed, None, 0.3) - base).abs().amax((1, 2, 3))
    assert moved[1] > 0.1 and moved[[0, 2, 3]].max() == 0
    moved = (cascade_attention(q, pk, pv2, real, sk, sv, None, 0.3) - base).abs().amax((1, 2, 3))
    assert moved[2:].min() > 0.1 and moved[:2].max() == 0


@pytest.mark.parametrize("alibi,window", [(False, None), (True, None), (False, 2)])
def test_a_token_tree_in_the_suffix_attends_as_each_tokens_own_path_would(alibi, window):
    """Rank's options packed as a tree (two "queries", two rows each): every token gets what the plain kernel
    gives it over its own path (ancestors, then itself) as the suffix; siblings and other branches unseen."""
    from flamingo_eval.models.decoding.attention import SuffixTree

    torch.manual_seed(2)
    queries, beams, heads, kv_heads, prompt, dim = 2, 2, 4, 2, 5, 8
    parent = [[-1, 0, 0, 2, -1, 4], [-1, 0, 1, -1, 3, -1]]  # per row: the column of each token's parent
    depth = [[0, 1, 1, 2, 0, 1], [0, 1, 2, 0, 1, 0]]
    width, rows = len(parent[0]), queries * beams
    visible = torch.zeros(beams, width, width, dtype=torch.bool)
    for r in range(beams):
        for c in range(width):
            k = c
            while k >= 0:
                visible[r, c, k], k = True, parent[r][k]
    tree = SuffixTree(torch.tensor(depth).repeat(queries, 1), visible.repeat(queries, 1, 1))
    q = torch.randn(rows, heads, width, dim)
    pk, pv = torch.randn(queries, kv_heads, prompt, dim), torch.randn(queries, kv_heads, prompt, dim)
    real = torch.tensor([[False, True, True, True, True], [True] * 5])
    sk, sv = torch.randn(rows, kv_heads, width, dim), torch.randn(rows, kv_heads, width, dim)
    slopes = alibi_slopes(heads) if alibi else None
    got = cascade_attention(q, pk, pv, real, sk, sv, slopes, dim**-0.5, window, tree)
    for row in range(rows):
        query, r = divmod(row, beams)
        for c in range(width):
            path = [k for k in range(width) if tree.visible[row, c, k]]  # ancestors in order, then c
            assert [depth[r][k] for k in path] == list(range(len(path)))
            alone = cascade_attention(q[row:row + 1, :, c:c + 1], pk[query:query + 1], pv[query:query + 1],
                                      real[query:query + 1], sk[row:row + 1, :, path], sv[row:row + 1, :, path],
                                      slopes, dim**-0.5, window)
            torch.testing.assert_close(got[row:row + 1, :, c:c + 1], alone, atol=1e-5, rtol=1e-5)
