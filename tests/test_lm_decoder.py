"""The project's decoder computes what transformers' models compute, family by family (transformers as the
oracle, in tests only): tiny random models saved with ``save_pretrained``, loaded by the project's loader,
logits equal to 1e-5 in float32 with left padding, and close in bfloat16."""

import pytest
import torch

from flamingo_eval.models.lm.decoder import SequenceAttention, positions_of
from flamingo_eval.models.lm.load import load_lm

VOCAB = 50


def mpt(**kw):
    from transformers import MptConfig, MptForCausalLM

    return MptForCausalLM(MptConfig(**{**dict(d_model=32, n_heads=4, n_layers=2, max_seq_len=64, vocab_size=VOCAB), **kw}))


def neox(**kw):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    return GPTNeoXForCausalLM(GPTNeoXConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
                                            intermediate_size=64, vocab_size=VOCAB, **kw))


def llama(**kw):
    from transformers import LlamaConfig, LlamaForCausalLM

    base = dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=64,
                vocab_size=VOCAB)
    return LlamaForCausalLM(LlamaConfig(**{**base, **kw}))


def mistral(**kw):
    from transformers import MistralConfig, MistralForCausalLM

    return MistralForCausalLM(MistralConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                            num_hidden_layers=2, intermediate_size=64, vocab_size=VOCAB, **kw))


LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
MODELS = {
    "mpt": lambda: mpt(),
    "mpt-6-heads-clip-qkv": lambda: mpt(d_model=48, n_heads=6, attn_config={"clip_qkv": 0.5, "softmax_scale": 0.3}),
    "gpt_neox-parallel-partial-rotary": lambda: neox(rotary_pct=0.5),
    "gpt_neox-sequential-gelu-tanh": lambda: neox(use_parallel_residual=False, hidden_act="gelu_new"),
    "gpt_neox-no-attention-bias": lambda: neox(attention_bias=False, tie_word_embeddings=True),
    "llama-grouped-kv-bias": lambda: llama(attention_bias=True, mlp_bias=True),
    "llama3-rope-tied": lambda: llama(num_key_value_heads=1, max_position_embeddings=16384, rope_theta=500000.0,
                                      rope_scaling=LLAMA3_ROPE, tie_word_embeddings=True),
    "llama-linear-rope": lambda: llama(rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "mistral": lambda: mistral(),
    "mistral-sliding-window": lambda: mistral(sliding_window=8),  # the batch's rows are longer than 8
}


def saved(build, tmp_path, seed=0):
    torch.manual_seed(seed)
    hf = build().eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0.0, 0.3)  # far from initialisation: every weight matters
    hf.save_pretrained(tmp_path)
    return hf


def batch(length=40):
    """Three rows, two of them left-padded, long enough for rotary positions to turn."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, length), generator=g)
    mask = torch.ones(3, length, dtype=torch.long)
    mask[1, :9], mask[2, :31] = 0, 0
    return ids, mask


@pytest.mark.parametrize("name", MODELS)
def test_logits_equal_transformers_with_left_padding(name, tmp_path):
    hf = saved(MODELS[name], tmp_path)
    ours = load_lm(str(tmp_path))
    ids, mask = batch()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, positions_of(mask), SequenceAttention(mask.bool()))
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["mpt", "llama-grouped-kv-bias", "gpt_neox-parallel-partial-rotary"])
def test_bfloat16_weights_stay_close_to_transformers_in_bfloat16(name, tmp_path):
    saved(MODELS[name], tmp_path)
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.bfloat16).eval()
    ours = load_lm(str(tmp_path), dtype=torch.bfloat16)
    assert {p.dtype for p in ours.parameters()} == {torch.bfloat16}
    ids, mask = batch(16)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).logits.float()
        got = ours(ids, positions_of(mask), SequenceAttention(mask.bool())).float()
    real = mask.bool()
    scale = want[real].abs().max()
    assert (got[real] - want[real]).abs().max() < 0.05 * scale


def test_a_vocabulary_resize_keeps_the_published_rows(tmp_path):
    hf = saved(MODELS["llama-grouped-kv-bias"], tmp_path)
    grown, shrunk = load_lm(str(tmp_path), vocab_size=VOCAB + 3), load_lm(str(tmp_path), vocab_size=VOCAB - 5)
    torch.testing.assert_close(grown.embed.weight[:VOCAB], hf.model.embed_tokens.weight)
    assert grown.embed.weight[VOCAB:].abs().sum() == 0 and grown.head.weight.shape[0] == VOCAB + 3
    torch.testing.assert_close(shrunk.head.weight, hf.lm_head.weight[: VOCAB - 5])


def test_mistrals_sliding_window_limits_attention_not_the_context(tmp_path):
    saved(lambda: mistral(sliding_window=24, max_position_embeddings=4096), tmp_path)
    config = load_lm(str(tmp_path)).config
    assert (config.max_positions, config.sliding_window) == (4096, 24)
