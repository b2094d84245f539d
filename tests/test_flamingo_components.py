"""The bundled Flamingo's parts, each against its specification, on tiny random modules."""

from pathlib import Path

import pytest
import torch

from flamingo_eval.models.flamingo import decode
from flamingo_eval.models.flamingo.lm import position_ids
from flamingo_eval.models.flamingo.perceiver import PerceiverResampler
from flamingo_eval.models.flamingo.vision import load_vision, patch_tokens
from flamingo_eval.models.flamingo.xattn import GatedCrossAttentionBlock, text_time

GOLDEN = Path(__file__).parent / "golden" / "flamingo"
IMAGE_ID = 7


def _block(dim=16, dim_visual=8):
    torch.manual_seed(0)
    block = GatedCrossAttentionBlock(dim, dim_visual, dim_head=4, heads=2)
    with torch.no_grad():
        block.attn_gate.fill_(0.8)
        block.ff_gate.fill_(0.5)
    return block.eval()


def test_text_time_counts_images_at_or_before_each_token():
    ids = torch.tensor([[1, IMAGE_ID, 2, 3, IMAGE_ID, 4], [5, 6, 2, IMAGE_ID, 3, 4]])
    assert text_time(ids == IMAGE_ID).tolist() == [[0, 1, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1]]
    assert text_time(torch.tensor([[False, False]]), offset=torch.tensor([3])).tolist() == [[3, 3]]


def test_each_token_attends_only_to_its_latest_image():
    block = _block()
    ids = torch.tensor([[1, IMAGE_ID, 2, 3, IMAGE_ID, 4, 5]])
    times = text_time(ids == IMAGE_ID)
    x = torch.randn(1, ids.shape[1], 16)
    media = torch.randn(1, 2, 3, 8)  # two images, three latents each
    with torch.no_grad():
        base = block(x, block.media_kv(media), times, 3)
        changed = media.clone()
        changed[:, 0] += 1.0  # only the first image changes
        out = block(x, block.media_kv(changed), times, 3)
    moved = (out - base).abs().amax(-1)[0]
    assert moved[1:4].min() > 1e-4  # tokens after the first <image> (it included) see it
    assert moved[0] == 0 and moved[4:].max() == 0  # before any image, and after the second: untouched


def test_tokens_before_any_image_get_no_attention_but_the_gated_ff():
    block = _block()
    x = torch.randn(1, 3, 16)
    times = torch.zeros(1, 3, dtype=torch.long)
    with torch.no_grad():
        out = block(x, block.media_kv(torch.randn(1, 2, 3, 8)), times, 3)
        ff_only = block.ff(x) * block.ff_gate.tanh() + x
    torch.testing.assert_close(out, ff_only)


def test_perceiver_resamples_each_image_independently():
    torch.manual_seed(0)
    p = PerceiverResampler(8, depth=2, num_latents=4).eval()
    a, b = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    with torch.no_grad():
        joint = p(torch.cat([a, b]))
        torch.testing.assert_close(joint[1:], p(b))
    assert joint.shape == (2, 4, 8)


def test_cascade_attention_equals_attention_over_each_beams_own_copy_of_the_prompt():
    """shared_attention's decode step: one prompt copy per query, grouped K/V heads (Llama), several new
    tokens (rank's options) with and without a padding mask; the reference copies the prompt per beam."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    from flamingo_eval.models.flamingo.shared_attention import _cascade

    torch.manual_seed(0)
    queries, beams, heads, kv_heads, prompt, suffix, t, dim = 2, 3, 4, 2, 5, 4, 2, 8
    rows = queries * beams
    layer = SimpleNamespace(keys=torch.randn(queries, kv_heads, prompt, dim),
                            values=torch.randn(queries, kv_heads, prompt, dim))
    q = torch.randn(rows, heads, t, dim)
    sk, sv = torch.randn(rows, kv_heads, suffix, dim), torch.randn(rows, kv_heads, suffix, dim)
    k = torch.cat([layer.keys.repeat_interleave(beams, 0), sk], 2).repeat_interleave(heads // kv_heads, 1)
    v = torch.cat([layer.values.repeat_interleave(beams, 0), sv], 2).repeat_interleave(heads // kv_heads, 1)
    causal = torch.ones((t, prompt + suffix), dtype=torch.bool)
    causal[:, prompt:] = torch.arange(suffix)[None, :] <= torch.arange(t)[:, None] + suffix - t
    padded = causal.expand(rows, 1, t, prompt + suffix).clone()
    padded[:beams, :, :, :2] = False  # the first query's prompt is left-padded by two
    for mask, reference in ((None, causal), (padded, padded)):
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=reference, scale=dim**-0.5).transpose(1, 2)
        torch.testing.assert_close(_cascade(layer, q, sk, sv, mask, dim**-0.5), want, atol=1e-5, rtol=1e-5)


def test_vision_tokens_are_open_clip_tokens_before_ln_post():
    visual, transform = load_vision(f"local-dir:{GOLDEN / 'vit'}", None)
    pixels = torch.randn(2, 3, 32, 32)
    visual.output_tokens = True
    with torch.no_grad():
        ours = patch_tokens(visual, pixels)
        _, theirs = visual(pixels)  # open_clip >= 2.23 normalises every token with ln_post
        torch.testing.assert_close(visual.ln_post(ours), theirs)
        assert (ours - theirs).abs().max() > 0.1  # and the difference is not negligible
    assert ours.shape == (2, 16, 16)


class _LMState:
    """A plain HF causal LM behind the step/reorder interface the decoders use."""

    def __init__(self, lm, ids, mask):
        from transformers import DynamicCache

        self.lm, self.mask = lm, mask
        cache = DynamicCache(config=lm.config)
        out = lm(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask, ids.shape[1]), past_key_values=cache, use_cache=True)
        self.cache, self.first = out.past_key_values, out.logits[:, -1].float()

    def reorder(self, rows):
        self.cache.reorder_cache(rows)
        self.mask = self.mask[rows]

    def step(self, tokens):
        self.mask = torch.cat([self.mask, torch.ones_like(tokens)], 1)
        out = self.lm(input_ids=tokens, attention_mask=self.mask, position_ids=position_ids(self.mask, 1),
                      past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
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
    "num_beams,length_penalty,min_new", [(1, 0.0, 0), (1, 0.0, 3), (3, 0.0, 0), (3, -2.0, 2), (3, 1.0, 0), (4, 0.5, 1)]
)
def test_decoders_equal_transformers_generate(tiny_lm, num_beams, length_penalty, min_new):
    eos, banned, pad = 5, 7, 39
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
            ours = decode.greedy(state.first, state, lambda s, t: s.step(t), **kw)
        else:
            ours = decode.beam_search(state.first, state, lambda s, t: s.step(t), num_beams=num_beams,
                                      length_penalty=length_penalty, **kw)
    assert ours == ref
    assert len(set(map(tuple, ours))) == len(rows)  # not degenerate


def test_greedy_never_emits_a_banned_token_even_when_it_is_the_best():
    logits = torch.zeros(2, 10)
    logits[:, 4] = 100.0  # token 4 dominates

    class Fixed:
        def reorder(self, rows):
            pass

    out = decode.greedy(logits, Fixed(), lambda s, t: logits, eos_id=9, max_new_tokens=3, banned=[4])
    assert all(4 not in row and len(row) == 3 for row in out)


def test_decoded_text_is_cleaned_up_as_transformers_4_did_unless_the_tokenizer_says_not_to(tmp_path):
    import json
    import shutil

    from transformers import AutoTokenizer

    from flamingo_eval.models.flamingo.lm import clean_up_spaces, cleans_up_spaces

    assert clean_up_spaces("a dog 's toy , is n't it ?") == "a dog's toy, isn't it?"
    assert not cleans_up_spaces(AutoTokenizer.from_pretrained(GOLDEN / "lm-mpt"))  # says false explicitly
    for f in (GOLDEN / "lm-mpt").glob("tokenizer*"):
        shutil.copy(f, tmp_path / f.name)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    del cfg["clean_up_tokenization_spaces"]  # like EleutherAI/gpt-neox-20b's config: unset
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert cleans_up_spaces(AutoTokenizer.from_pretrained(tmp_path))
