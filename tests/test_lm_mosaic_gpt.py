"""OpenFlamingo-3B's LM (MosaicGPT, remote code upstream) loads from its own layout without remote code
and computes MosaicGPT's function (written out below): ALiBi, q/k LayerNorm over the full width, no biases,
tied output."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.lm.decoder import SequenceAttention, positions_of
from flamingo_eval.models.lm.load import load_lm

D, HEADS, LAYERS, VOCAB = 32, 4, 2, 48
CONFIG = {
    "model_type": "mosaic_gpt", "architectures": ["MosaicGPT"], "d_model": D, "n_heads": HEADS, "n_layers": LAYERS,
    "mlp_ratio": 4, "max_seq_len": 64, "vocab_size": VOCAB, "alibi": True, "alibi_bias_max": 8, "attn_qk_ln": True,
    "attn_clip_qkv": None, "softmax_scale": None, "no_bias": True, "logit_scale": None, "attn_impl": "torch",
    "prefix_lm": False, "auto_map": {"AutoModelForCausalLM": "mosaic_gpt.MosaicGPT"},
}


def mosaic_weights(seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, s=1.0: torch.randn(*shape, generator=g) * s  # noqa: E731
    w = {"transformer.wte.weight": r(VOCAB, D, s=0.5), "transformer.ln_f.weight": 1 + r(D, s=0.3)}
    for i in range(LAYERS):
        p = f"transformer.blocks.{i}."
        w |= {p + "ln_1.weight": 1 + r(D, s=0.3), p + "attn.Wqkv.weight": r(3 * D, D, s=D**-0.5),
              p + "attn.q_ln.weight": 1 + r(D, s=0.3), p + "attn.k_ln.weight": 1 + r(D, s=0.3),
              p + "attn.out_proj.weight": r(D, D, s=D**-0.5), p + "ln_2.weight": 1 + r(D, s=0.3),
              p + "mlp.mlp_up.weight": r(4 * D, D, s=D**-0.5), p + "mlp.mlp_down.weight": r(D, 4 * D, s=(4 * D) ** -0.5)}
    return w


def mosaic_reference(w, ids):
    """MosaicGPT's forward written out (one sequence, no padding)."""
    length, hd = ids.shape[1], D // HEADS
    slopes = 1 / 2 ** (torch.arange(1, HEADS + 1) * 8 / HEADS)
    alibi = torch.arange(1 - length, 1)[None, :] * slopes[:, None]  # (heads, keys)
    causal = torch.ones(length, length).tril().bool()
    split = lambda t: t.view(1, length, HEADS, hd).transpose(1, 2)  # noqa: E731
    x = w["transformer.wte.weight"][ids]
    for i in range(LAYERS):
        p = f"transformer.blocks.{i}."
        a = F.layer_norm(x, (D,), w[p + "ln_1.weight"])
        q, k, v = (a @ w[p + "attn.Wqkv.weight"].T).chunk(3, -1)
        q, k = F.layer_norm(q, (D,), w[p + "attn.q_ln.weight"]), F.layer_norm(k, (D,), w[p + "attn.k_ln.weight"])
        s = split(q) @ split(k).transpose(-1, -2) / math.sqrt(hd) + alibi[None, :, None, :]
        s = s.masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + (s @ split(v)).transpose(1, 2).reshape(1, length, D) @ w[p + "attn.out_proj.weight"].T
        m = F.layer_norm(x, (D,), w[p + "ln_2.weight"])
        x = x + F.gelu(m @ w[p + "mlp.mlp_up.weight"].T) @ w[p + "mlp.mlp_down.weight"].T
    return F.layer_norm(x, (D,), w["transformer.ln_f.weight"]) @ w["transformer.wte.weight"].T


def write_mosaic_dir(tmp_path, config=CONFIG):
    (tmp_path / "config.json").write_text(json.dumps(config))
    torch.save(mosaic_weights(), tmp_path / "pytorch_model.bin")
    return str(tmp_path)


def logits(model, ids):
    real = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        return model(ids, positions_of(real), SequenceAttention(real))


def test_mosaic_gpt_layout_loads_and_computes_mosaic_gpt(tmp_path):
    model = load_lm(write_mosaic_dir(tmp_path))
    assert model.config.family == "mosaic_gpt" and model.config.qk_norm
    ids = torch.tensor([[3, 17, 5, 40, 22, 9, 1]])
    torch.testing.assert_close(logits(model, ids), mosaic_reference(mosaic_weights(), ids), atol=1e-5, rtol=1e-5)


def test_mosaic_gpt_options_the_decoder_does_not_implement_are_refused(tmp_path):
    for change, name in (({"no_bias": False}, "no_bias"), ({"mlp_ratio": 2}, "mlp_ratio"),
                         ({"learned_pos_emb": True}, "learned_pos_emb")):
        with pytest.raises(ConfigError, match=name):
            load_lm(write_mosaic_dir(tmp_path, {**CONFIG, **change}))
