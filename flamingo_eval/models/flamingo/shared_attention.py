"""Self-attention for the rotary LMs (GPT-NeoX, Llama) with the beams of a query reading its prompt K/V once.

Their transformers attention modules call ``past_key_values.update`` and then the attention function
named by ``config._attn_implementation``. ``install`` registers one that is transformers' SDPA everywhere
except at decode steps over a ``SharedPromptLayer`` (whose ``update`` then returns the beam's own suffix):
there, as mpt_attention does, a query's beams score its single prompt copy in one block of rows, and those
scores join each beam's scores against its own suffix in one softmax row (cascade attention, exact).
"""

from __future__ import annotations

import torch
from torch import nn

from flamingo_eval.models.flamingo.kv_cache import SharedPromptLayer

NAME = "flamingo_shared_prompt_sdpa"


def install(lang_encoder: nn.Module, state) -> None:
    """Route every attention module of ``lang_encoder`` through ``attention``; ``state.cache`` is the
    cache of the current pass (set by the Flamingo model around each LM call)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    for module in lang_encoder.modules():
        if hasattr(module, "layer_idx") and hasattr(module, "scaling"):
            module._flamingo_state = state
    lang_encoder.config._attn_implementation = NAME


def attention(module: nn.Module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cache = getattr(getattr(module, "_flamingo_state", None), "cache", None)
    layer = None if cache is None else cache.layers[module.layer_idx]
    if not isinstance(layer, SharedPromptLayer) or layer.filled == 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    return _cascade(layer, query, key, value, attention_mask, scaling), None


def _cascade(layer: SharedPromptLayer, q, sk, sv, mask, scaling: float) -> torch.Tensor:
    """(rows, heads, t, d) queries against the prompt (queries, kv_heads, P, d), once per query, and each
    row's suffix (rows, kv_heads, S, d); returns (rows, t, heads, d) as transformers' SDPA does."""
    pk, pv = layer.keys, layer.values
    rows, heads, t, dim = q.shape
    queries, kv_heads, prompt, _ = pk.shape
    beams, groups, suffix = rows // queries, heads // kv_heads, sk.shape[2]
    # a query's beams (and a key head's query-head group) are one block of rows against its prompt
    qq = q.view(queries, beams, kv_heads, groups, t, dim).transpose(1, 2).reshape(queries, kv_heads, -1, dim)
    s_prompt = torch.matmul(qq, pk.transpose(-1, -2)) * scaling
    s_prompt = s_prompt.view(queries, kv_heads, beams, groups, t, prompt).transpose(1, 2).reshape(rows, heads, t, prompt)
    sk, sv = (x.repeat_interleave(groups, dim=1) if groups > 1 else x for x in (sk, sv))
    s_suffix = torch.matmul(q, sk.transpose(-1, -2)) * scaling
    scores = torch.cat([s_prompt, s_suffix], dim=-1).float()
    if mask is None:  # no padding anywhere: only the new tokens' causality hides anything
        new = torch.arange(t, device=q.device)[:, None] + (suffix - t)
        mask = torch.cat([torch.ones((t, prompt), dtype=torch.bool, device=q.device),
                          torch.arange(suffix, device=q.device)[None, :] <= new], dim=-1)
    if mask.dtype == torch.bool:  # True: attended, as SDPA reads it
        scores = scores.masked_fill(~mask[..., -(prompt + suffix):], torch.finfo(torch.float32).min)
    else:
        scores = scores + mask[..., -(prompt + suffix):].float()
    probs = scores.softmax(dim=-1).to(pv.dtype)
    p_prompt = probs[..., :prompt].reshape(queries, beams, kv_heads, groups, t, prompt).transpose(1, 2)
    out = torch.matmul(p_prompt.reshape(queries, kv_heads, -1, prompt), pv)
    out = out.view(queries, kv_heads, beams, groups, t, dim).transpose(1, 2).reshape(rows, heads, t, dim)
    out = out + torch.matmul(probs[..., prompt:], sv)
    return out.transpose(1, 2).contiguous()
