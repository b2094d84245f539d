"""Greedy and beam search (models/decoding/search.py) against transformers' generate, the oracle: the same
tokens on a tiny Llama, every setting OpenFlamingo's evaluation uses, finished rows and banned tokens."""

import inspect

import pytest
import torch

from flamingo_eval.models.decoding import search


def cache_argument(lm) -> str:
    """transformers 5.24 renamed the cache argument (``past_key_values`` -> ``cache``)."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


def position_ids(mask: torch.Tensor, new_tokens: int) -> torch.Tensor:
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)[:, -new_tokens:]


class _LMState:
    """A plain HF causal LM behind the step/reorder interface the decoders use."""

    def __init__(self, lm, ids, mask):
        from transformers import DynamicCache

        self.lm, self.mask = lm, mask
        cache = DynamicCache(config=lm.config)
        self.arg = cache_argument(lm)
        out = lm(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask, ids.shape[1]), use_cache=True,
                 **{self.arg: cache})
        self.cache, self.first = cache, out.logits[:, -1].float()

    def reorder(self, rows):
        self.cache.reorder_cache(rows)
        self.mask = self.mask[rows]

    def step(self, tokens):
        self.mask = torch.cat([self.mask, torch.ones_like(tokens)], 1)
        out = self.lm(input_ids=tokens, attention_mask=self.mask, position_ids=position_ids(self.mask, 1),
                      use_cache=True, **{self.arg: self.cache})
        return out.logits[:, -1].float()


@pytest.fixture(scope="module")
def tiny_lm():
    """Random but not degenerate: varied tokens, some rows reach the stop token, beams differ from greedy."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                         intermediate_size=64, vocab_size=40, max_position_embeddings=64, tie_word_embeddings=False)
    lm = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in lm.parameters():
            if p.ndim == 2:
                p.normal_(0, p.shape[1] ** -0.5)
        lm.lm_head.weight.mul_(3.0)
        lm.lm_head.weight[5] *= 2.0  # the stop token
    return lm


@pytest.mark.parametrize(
    "num_beams,length_penalty,min_new,eos",
    [(1, 0.0, 0, 5), (1, 0.0, 3, 5), (3, 0.0, 0, 5), (3, -2.0, 2, 5), (3, 1.0, 0, 5), (4, 0.5, 1, 5),
     # several stop ids (the Hugging Face families stop at EOS or at any token holding a newline)
     (1, 0.0, 0, [5, 17, 22]), (1, 0.0, 2, [5, 17, 22]), (3, 0.0, 0, [5, 17, 22]), (3, -2.0, 2, [5, 17, 22])],
)
def test_decoders_equal_transformers_generate(tiny_lm, num_beams, length_penalty, min_new, eos):
    banned, pad = 7, 39
    rows = [[11, 12, 13, 14, 15, 16], [20, 21], [30, 8, 9, 10]]
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(r) for r in rows])[:, None]).long()
    with torch.no_grad():
        ref = tiny_lm.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=8, min_new_tokens=min_new, num_beams=num_beams,
            length_penalty=length_penalty, eos_token_id=eos, pad_token_id=pad, bad_words_ids=[[banned], [pad]],
            do_sample=False, early_stopping=False,
        )[:, width:].tolist()
        ref = [[t for t in r if t != pad] for r in ref]
        ex = lambda t: t.repeat_interleave(num_beams, 0)  # noqa: E731
        state = _LMState(tiny_lm, ex(ids), ex(mask))
        kw = dict(eos_id=eos, max_new_tokens=8, min_new_tokens=min_new, banned=[banned, pad])
        if num_beams == 1:
            ours = search.greedy(state.first, state, lambda s, t: s.step(t), **kw)
        else:
            ours = search.beam_search(state.first, state, lambda s, t: s.step(t), num_beams=num_beams,
                                      length_penalty=length_penalty, **kw)
    assert ours == ref
    assert len(set(map(tuple, ours))) == len(rows)  # not degenerate


def test_greedy_never_emits_a_banned_token_even_when_it_is_the_best():
    logits = torch.zeros(2, 10)
    logits[:, 4] = 100.0  # token 4 dominates

    class Fixed:
        def reorder(self, rows):
            pass

    out = search.greedy(logits, Fixed(), lambda s, t: logits, eos_id=9, max_new_tokens=3, banned=[4])
    assert all(4 not in row and len(row) == 3 for row in out)


