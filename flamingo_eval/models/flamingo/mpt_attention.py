"""MPT self-attention through SDPA, with the beams of a query reading its prompt keys/values once.

transformers' ``MptAttention`` is eager only: it materialises (rows, heads, q, kv) fp32 scores, adds
ALiBi and masks in separate passes, and at each decode step every beam reads its own copy of the prompt
K/V. ``install`` swaps the forward of every MPT attention module for one computing the same function:
ALiBi (MPT's slopes, relative to the last key as transformers has it) and the padding/causal mask fold
into one additive bias for ``F.scaled_dot_product_attention``; with a ``SharedPromptLayer`` cache, decode
steps attend to the query's single prompt copy and to the beam's own generated suffix, the two softmax
halves joined over one row of scores (Hydragen / cascade attention, exact).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

from flamingo_eval.models.flamingo.kv_cache import Cache, SharedPromptLayer, transformers_version


def install(lang_encoder: nn.Module) -> None:
    """Replace the forward of every ``MptAttention`` in an ``MptForCausalLM`` (weights untouched)."""
    shared = _LastBias()
    for block in lang_encoder.transformer.blocks:
        attn = block.decoder_layer.attn if hasattr(block, "decoder_layer") else block.attn
        attn._last_bias = shared
        attn.forward = types.MethodType(forward, attn)


class _LastBias:
    """The (rows, heads, q, kv) bias of the current pass: every layer gets the same mask object, so the
    bias is built once per pass, not once per layer."""

    def __init__(self):
        self.key: tuple | None = None
        self.bias: torch.Tensor | None = None

    def get(self, module: nn.Module, mask: torch.Tensor | None, kv_length: int, dtype: torch.dtype, device) -> torch.Tensor:
        key = (mask, kv_length, dtype)
        if self.key is None or self.key[0] is not mask or self.key[1:] != key[1:]:
            self.key, self.bias = key, _bias(_alibi(module, kv_length, device), mask, dtype)
        return self.bias


def _alibi(module: nn.Module, kv_length: int, device: torch.device) -> torch.Tensor:
    """(heads, kv) bias: slope_h * (j - (kv - 1)), MPT's slopes, float32."""
    from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

    cached = getattr(module, "_alibi_full", None)
    if cached is None or cached.device != device:
        # transformers builds it with the default alibi_bias_max (8), whatever the config says: so do we
        cached = build_mpt_alibi_tensor(module.n_heads, module.max_seq_length, device=device)[:, 0].float()
        module._alibi_full = cached
    if kv_length > cached.shape[-1]:
        raise ValueError(f"sequence of {kv_length} tokens is longer than MPT's max_seq_len {cached.shape[-1]}")
    return cached[:, cached.shape[-1] - kv_length :]


def _bias(alibi: torch.Tensor, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """ALiBi (heads, kv) plus a bool mask (rows, 1, q, kv; True = hidden) -> (rows|1, heads, q|1, kv)."""
    bias = alibi[None, :, None, :]
    if mask is not None:
        bias = bias.masked_fill(mask, torch.finfo(dtype).min)
    return bias.to(dtype)


def forward(self, hidden_states, position_bias=None, cache=None, attention_mask=None, past_key_values=None, **kwargs):
    # transformers < 5.24 passes the cache as ``past_key_values``, 5.24 and later as ``cache``
    if cache is None:
        cache = past_key_values
    stray = [name for name, value in kwargs.items() if isinstance(value, Cache)]
    if stray:
        raise RuntimeError(f"MptAttention (flamingo_eval mpt_attention.forward) received its KV cache as {stray[0]!r}, an "
                           f"argument it does not know, from transformers {transformers_version()}")
    rows, length = hidden_states.shape[:2]
    qkv = self.Wqkv(hidden_states)
    if self.clip_qkv:
        qkv = qkv.clamp(min=-self.clip_qkv, max=self.clip_qkv)
    q, k, v = (t.reshape(rows, length, self.n_heads, self.head_dim).transpose(1, 2) for t in qkv.chunk(3, dim=2))
    layer = None if cache is None else cache.layers[self.layer_idx]
    if isinstance(layer, SharedPromptLayer) and layer.is_initialized:
        out = _shared_prompt(self, layer, q, k, v, attention_mask)
    else:
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        bias = self._last_bias.get(self, attention_mask, k.shape[2], q.dtype, q.device)
        dropout = self.attn_dropout_p if self.training else 0.0  # as transformers' MPT (a training forward)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=self.softmax_scale)
    return self.out_proj(out.transpose(1, 2).reshape(rows, length, -1)), None


def _shared_prompt(self, layer: SharedPromptLayer, q, k, v, attention_mask):
    """Scores against the prompt are computed once per query for all its beams, then joined with each
    beam's scores against its own suffix into one softmax row."""
    rows, heads, length, dim = q.shape
    pk, pv, sk, sv = layer.append(k, v)
    queries, prompt = pk.shape[0], pk.shape[2]
    beams = rows // queries
    kv = prompt + sk.shape[2]
    alibi = _alibi(self, kv, q.device)
    mask = attention_mask if attention_mask is not None else torch.zeros((rows, 1, length, kv), dtype=torch.bool, device=q.device)
    # (queries, heads, beams * length, dim): a query's beams are one block of rows against its prompt
    qq = q.view(queries, beams, heads, length, dim).transpose(1, 2).reshape(queries, heads, beams * length, dim)
    s_prompt = torch.matmul(qq, pk.transpose(-1, -2)) * self.softmax_scale
    s_prompt = s_prompt.view(queries, heads, beams, length, prompt).transpose(1, 2).reshape(rows, heads, length, prompt)
    s_suffix = torch.matmul(q, sk.transpose(-1, -2)) * self.softmax_scale
    scores = torch.cat([s_prompt, s_suffix], dim=-1).float() + alibi[None, :, None, :]
    scores = scores.masked_fill(mask, torch.finfo(torch.float32).min)
    probs = scores.softmax(dim=-1).to(v.dtype)
    p_prompt = probs[..., :prompt].reshape(queries, beams, heads, length, prompt).transpose(1, 2)
    out = torch.matmul(p_prompt.reshape(queries, heads, beams * length, prompt), pv)
    out = out.view(queries, heads, beams, length, dim).transpose(1, 2).reshape(rows, heads, length, dim)
    return out + torch.matmul(probs[..., prompt:], sv)
