"""What differs between the language-model families, read from their Hugging Face configs.

One decoder (decoder.py) computes every family; ``LMConfig`` names each difference explicitly. A config
option the decoder does not implement is refused with one line, never approximated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from flamingo_eval.errors import ConfigError

FAMILIES = ("mpt", "mosaic_gpt", "gpt_neox", "llama", "mistral")
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "silu", "relu")


@dataclass(frozen=True)
class LMConfig:
    family: str
    vocab_size: int
    width: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp_width: int
    mlp: str  # "plain": down(act(up(x))) | "gated": down(act(gate(x)) * up(x))
    activation: str
    norm: str  # "layernorm" | "rmsnorm"
    norm_eps: float
    norm_bias: bool
    attn_bias: bool  # the q/k/v and output projections
    mlp_bias: bool
    parallel_residual: bool  # GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x))
    tied_head: bool
    positions: str  # "alibi" (an additive bias) | "rotary" (a rotation)
    max_positions: int  # the context the model has: MPT's ALiBi table, rotary models' trained range
    softmax_scale: float
    alibi_max: float = 8.0
    rotary_dims: int = 0
    rope_theta: float = 10000.0
    rope_scaling: tuple[tuple[str, Any], ...] = ()  # ("rope_type", ...) plus its parameters, for linear / llama3
    qk_norm: bool = False  # MosaicGPT: LayerNorm over the full width on queries and keys
    clip_qkv: float | None = None
    sliding_window: int | None = None  # Mistral: a token sees the keys of the last ``sliding_window`` tokens

    def shrunk(self, **sizes: int) -> LMConfig:
        """The same options at other sizes (the load-time self-check's tiny twin)."""
        return replace(self, **sizes)


def from_hf(config: dict[str, Any], where: str) -> LMConfig:
    """The LMConfig of a transformers config dict (``AutoConfig(...).to_dict()``, or a raw MosaicGPT config)."""
    family = config.get("model_type", "")
    parse = {"mpt": _mpt, "mosaic_gpt": _mosaic_gpt, "gpt_neox": _gpt_neox, "llama": _llama, "mistral": _llama}.get(family)
    if parse is None:
        raise ConfigError(f"lang_encoder {where}: model_type {family!r} is not supported (supported: {', '.join(FAMILIES)})")
    lm = parse(config, where)
    if lm.activation not in ACTIVATIONS:
        raise ConfigError(f"lang_encoder {where}: activation {lm.activation!r} is not supported")
    if lm.heads % lm.kv_heads:
        raise ConfigError(f"lang_encoder {where}: {lm.heads} heads do not group over {lm.kv_heads} key/value heads")
    return lm


def _refuse(where: str, family: str, problems: list[str]) -> None:
    if problems:
        raise ConfigError(f"lang_encoder {where}: {family} options not supported: {', '.join(problems)}")


def _mpt(c: dict, where: str) -> LMConfig:
    attn = c.get("attn_config") or {}
    _refuse(where, "MPT", [p for p, bad in (
        ("qk_ln", attn.get("qk_ln")), ("alibi=false", not attn.get("alibi", True)),
        (f"alibi_bias_max={attn.get('alibi_bias_max')}", attn.get("alibi_bias_max", 8) != 8),
        ("no_bias=false", c.get("no_bias", True) is False), (f"logit_scale={c.get('logit_scale')}", c.get("logit_scale") is not None),
        ("prefix_lm", attn.get("prefix_lm")),
    ) if bad])
    width, heads = c["d_model"], c["n_heads"]
    return LMConfig(
        family="mpt", vocab_size=c["vocab_size"], width=width, layers=c["n_layers"], heads=heads, kv_heads=heads,
        head_dim=width // heads, mlp_width=4 * width,  # transformers' MPT is 4x whatever expansion_ratio says
        mlp="plain", activation="gelu", norm="layernorm",
        norm_eps=c.get("layer_norm_epsilon", 1e-5), norm_bias=False, attn_bias=False, mlp_bias=False,
        parallel_residual=False, tied_head=c.get("tie_word_embeddings", True), positions="alibi",
        max_positions=c["max_seq_len"], softmax_scale=attn.get("softmax_scale") or 1 / math.sqrt(width // heads),
        clip_qkv=attn.get("clip_qkv"),
    )


def _mosaic_gpt(c: dict, where: str) -> LMConfig:
    """MosaicGPT (``anas-awadalla/mpt-1b-redpajama-200b``, OpenFlamingo-3B's LM): MPT's predecessor, with
    LayerNorm on queries and keys (``attn_qk_ln``) and its own config keys."""
    _refuse(where, "MosaicGPT", [f"{key}={c.get(key)!r}" for key, want, default in (
        ("alibi", True, False), ("no_bias", True, False), ("mlp_ratio", 4, 4), ("alibi_bias_max", 8, 8),
        ("logit_scale", None, None), ("prefix_lm", False, False), ("learned_pos_emb", False, False),
    ) if c.get(key, default) != want])
    if c.get("attn_clip_qkv") and not c.get("attn_qk_ln"):
        raise ConfigError(f"lang_encoder {where}: MosaicGPT with attn_clip_qkv but no attn_qk_ln is not supported")
    width, heads = c["d_model"], c["n_heads"]
    return LMConfig(
        family="mosaic_gpt", vocab_size=c["vocab_size"], width=width, layers=c["n_layers"], heads=heads,
        kv_heads=heads, head_dim=width // heads, mlp_width=4 * width, mlp="plain", activation="gelu",
        norm="layernorm", norm_eps=1e-5, norm_bias=False, attn_bias=False, mlp_bias=False, parallel_residual=False,
        tied_head=True, positions="alibi", max_positions=c["max_seq_len"],
        softmax_scale=c.get("softmax_scale") or 1 / math.sqrt(width // heads), qk_norm=bool(c.get("attn_qk_ln")),
        clip_qkv=c.get("attn_clip_qkv"),
    )


def _rope(c: dict, where: str, family: str) -> tuple[float, float, tuple[tuple[str, Any], ...]]:
    """(theta, partial rotary factor, scaling) from ``rope_parameters`` (transformers 5) or the older keys."""
    rope = dict(c.get("rope_parameters") or {})
    legacy = c.get("rope_scaling") or {}
    theta = rope.get("rope_theta", c.get("rope_theta", c.get("rotary_emb_base", 10000.0)))
    partial = rope.get("partial_rotary_factor", c.get("partial_rotary_factor", c.get("rotary_pct", 1.0)))
    kind = rope.get("rope_type", legacy.get("rope_type", legacy.get("type", "default")))
    if kind == "default":
        return theta, partial, ()
    if kind == "linear":
        return theta, partial, (("rope_type", "linear"), ("factor", float(rope.get("factor", legacy.get("factor")))))
    if kind == "llama3":
        params = {**legacy, **rope}
        keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        return theta, partial, (("rope_type", "llama3"), *((k, float(params[k])) for k in keys))
    raise ConfigError(f"lang_encoder {where}: {family} rope type {kind!r} is not supported (default, linear, llama3)")


def _gpt_neox(c: dict, where: str) -> LMConfig:
    width, heads = c["hidden_size"], c["num_attention_heads"]
    head_dim = width // heads
    theta, partial, scaling = _rope(c, where, "GPT-NeoX")
    bias = c.get("attention_bias", True)
    return LMConfig(
        family="gpt_neox", vocab_size=c["vocab_size"], width=width, layers=c["num_hidden_layers"], heads=heads,
        kv_heads=heads, head_dim=head_dim, mlp_width=c["intermediate_size"], mlp="plain",
        activation=c.get("hidden_act", "gelu"), norm="layernorm", norm_eps=c.get("layer_norm_eps", 1e-5),
        norm_bias=True, attn_bias=bias, mlp_bias=True, parallel_residual=c.get("use_parallel_residual", True),
        tied_head=c.get("tie_word_embeddings", False), positions="rotary",
        max_positions=c.get("max_position_embeddings", 2048), softmax_scale=head_dim**-0.5,
        rotary_dims=int(head_dim * partial), rope_theta=theta, rope_scaling=scaling,
    )


def _llama(c: dict, where: str) -> LMConfig:
    """Llama and Mistral (whose attention may see only a sliding window of the latest keys)."""
    family = c["model_type"]
    width, heads = c["hidden_size"], c["num_attention_heads"]
    head_dim = c.get("head_dim") or width // heads
    theta, partial, scaling = _rope(c, where, family)
    if c.get("pretraining_tp", 1) != 1:
        raise ConfigError(f"lang_encoder {where}: {family} pretraining_tp={c['pretraining_tp']} is not supported")
    context = c.get("max_position_embeddings", 2048)
    window = c.get("sliding_window") if family == "mistral" else None
    return LMConfig(
        family=family, vocab_size=c["vocab_size"], width=width, layers=c["num_hidden_layers"], heads=heads,
        kv_heads=c.get("num_key_value_heads") or heads, head_dim=head_dim, mlp_width=c["intermediate_size"],
        mlp="gated", activation=c.get("hidden_act", "silu"), norm="rmsnorm", norm_eps=c.get("rms_norm_eps", 1e-6),
        norm_bias=False, attn_bias=c.get("attention_bias", False), mlp_bias=c.get("mlp_bias", False),
        parallel_residual=False, tied_head=c.get("tie_word_embeddings", False), positions="rotary",
        max_positions=context, softmax_scale=head_dim**-0.5, rotary_dims=int(head_dim * partial), rope_theta=theta,
        rope_scaling=scaling, sliding_window=window or None,
    )
