"""A decoder-only transformer LM, one definition for every family ``LMConfig`` describes.

    x = embed(ids)
    for each layer:   h = norm_1(x);  a = attention(h)          (positions: ALiBi bias or rotary rotation)
                      x = x + a + mlp(norm_2(x))                 (parallel residual, GPT-NeoX)
                   or x = x + a;  x = x + mlp(norm_2(x))         (MPT, Llama, Mistral)
    logits = head(norm(x))

The layers compute their projections and positions; how queries meet keys is an ``Attention`` passed in,
so the same layers run the plain full-sequence attention (``SequenceAttention`` here, the definition) or
the cached decoding kernels of ``models/decoding`` without a line of them changing.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from flamingo_eval.models.lm.config import LMConfig

Rope = tuple[torch.Tensor, torch.Tensor] | None  # (cos, sin) per row and position, or None for ALiBi


class Attention(Protocol):
    """Queries (B, heads, t, d) against keys/values (B, kv_heads, t, d) of the same t tokens, plus whatever
    the strategy holds (earlier tokens, masks); ``slopes`` (heads,) is ALiBi's bias per key position;
    ``window``: a query sees only keys fewer than ``window`` positions back (Mistral), None for all."""

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 slopes: torch.Tensor | None, scale: float, window: int | None = None) -> torch.Tensor: ...


# ---- positions ------------------------------------------------------------------------------------------

@cache
def alibi_slopes(heads: int, alibi_max: float = 8.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """MPT's slopes: 1 / 2^(max * i / n) over the next power of two of heads, interleaved when n is not one."""
    n = 2 ** math.ceil(math.log2(heads))
    with torch.device("cpu"):  # a constant of the model, never a meta tensor
        slopes = 1.0 / torch.pow(2, torch.arange(1, n + 1, dtype=torch.float32) * (alibi_max / n))
    if n != heads:
        slopes = torch.cat([slopes[1::2], slopes[::2]])[:heads]
    return slopes.to(device)


def alibi_bias(slopes: torch.Tensor, kv_length: int, device) -> torch.Tensor:
    """(heads, kv) float32: slope * (j - last key), as MPT; a per-row constant shift leaves softmax unchanged."""
    return slopes.to(device)[:, None] * torch.arange(1 - kv_length, 1, device=device, dtype=torch.float32)[None, :]


@cache
def inverse_frequencies(config: LMConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """Rotary frequencies over ``rotary_dims``, with linear or Llama-3 scaling where the config has it."""
    with torch.device("cpu"):
        return _inverse_frequencies(config).to(device)


def _inverse_frequencies(config: LMConfig) -> torch.Tensor:
    dim = config.rotary_dims
    inv = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = dict(config.rope_scaling)
    if scaling.get("rope_type") == "linear":
        return inv / scaling["factor"]
    if scaling.get("rope_type") == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        original = scaling["original_max_position_embeddings"]
        wavelength = 2 * math.pi / inv
        scaled = torch.where(wavelength > original / low, inv / factor, inv)
        smooth = (original / wavelength - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelength >= original / high) & (wavelength <= original / low)
        return torch.where(medium, smoothed, scaled)
    return inv


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def rotate(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """(B, heads, t, d): the first ``rotary_dims`` of each head rotated by its position, the rest untouched."""
    cos, sin = rope
    cos, sin = cos[:, None], sin[:, None]
    dims = cos.shape[-1]
    turned = x[..., :dims] * cos + rotate_half(x[..., :dims]) * sin
    return torch.cat([turned, x[..., dims:]], dim=-1) if dims < x.shape[-1] else turned


# ---- the layers -----------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """Llama's: normalised in float32, scaled in the input's dtype."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def norm(config: LMConfig, dim: int | None = None) -> nn.Module:
    dim = dim or config.width
    if config.norm == "rmsnorm":
        return RMSNorm(dim, config.norm_eps)
    return nn.LayerNorm(dim, eps=config.norm_eps, bias=config.norm_bias)


def activation(name: str):
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    return {"gelu": F.gelu, "silu": F.silu, "relu": F.relu}[name]


class SelfAttention(nn.Module):
    """Fused q/k/v projection (rows: heads x d queries, then kv_heads x d keys, then values), positions,
    attention, output projection. MosaicGPT normalises the full-width queries and keys first."""

    def __init__(self, config: LMConfig, index: int):
        super().__init__()
        self.index = index
        self.heads, self.kv_heads, self.head_dim = config.heads, config.kv_heads, config.head_dim
        self.scale = config.softmax_scale
        self.clip = config.clip_qkv
        self.qkv = nn.Linear(config.width, (config.heads + 2 * config.kv_heads) * config.head_dim, bias=config.attn_bias)
        self.out = nn.Linear(config.heads * config.head_dim, config.width, bias=config.attn_bias)
        if config.qk_norm:
            self.q_norm = norm(config, config.heads * config.head_dim)
            self.k_norm = norm(config, config.kv_heads * config.head_dim)
        else:
            self.q_norm = self.k_norm = None
        self.alibi = (config.heads, config.alibi_max) if config.positions == "alibi" else None
        self.window = config.sliding_window

    def forward(self, x: torch.Tensor, rope: Rope, attention: Attention) -> torch.Tensor:
        b, t, _ = x.shape
        qkv = self.qkv(x)
        if self.clip:
            qkv = qkv.clamp(min=-self.clip, max=self.clip)
        q, k, v = qkv.split([self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim], -1)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if rope is not None:
            q, k = rotate(q, rope), rotate(k, rope)
        slopes = None if self.alibi is None else alibi_slopes(*self.alibi, device=x.device)
        out = attention(self.index, q, k, v, slopes, self.scale, self.window)
        return self.out(out.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.act = activation(config.activation)
        self.up = nn.Linear(config.width, config.mlp_width, bias=config.mlp_bias)
        self.gate = nn.Linear(config.width, config.mlp_width, bias=config.mlp_bias) if config.mlp == "gated" else None
        self.down = nn.Linear(config.mlp_width, config.width, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is None:
            return self.down(self.act(self.up(x)))
        return self.down(self.act(self.gate(x)) * self.up(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: LMConfig, index: int):
        super().__init__()
        self.parallel = config.parallel_residual
        self.norm_1 = norm(config)
        self.attn = SelfAttention(config, index)
        self.norm_2 = norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope: Rope, attention: Attention) -> torch.Tensor:
        a = self.attn(self.norm_1(x), rope, attention)
        if self.parallel:
            return x + a + self.mlp(self.norm_2(x))
        x = x + a
        return x + self.mlp(self.norm_2(x))


class DecoderLM(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.layers))
        self.norm = norm(config)
        self.head = None if config.tied_head else nn.Linear(config.width, config.vocab_size, bias=False)

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> Rope:
        """(cos, sin) of each (row, token) position, computed in float32 and used in the weights' dtype."""
        if self.config.positions != "rotary":
            return None
        freqs = positions[..., None].float() * inverse_frequencies(self.config, positions.device)
        angles = torch.cat([freqs, freqs], dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.embed.weight if self.head is None else self.head.weight
        return F.linear(self.norm(x).to(weight.device), weight)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, attention: Attention) -> torch.Tensor:
        """(B, t) ids at (B, t) positions -> (B, t, vocab) logits."""
        return self.run(self.embed(ids), positions, attention)

    def run(self, x: torch.Tensor, positions: torch.Tensor, attention: Attention, keep: int = 0) -> torch.Tensor:
        """(B, t, width) input embeddings (token embeddings, or image features in their place) -> logits of the
        last ``keep`` positions (all when 0)."""
        rope = self.rope(positions, x.dtype)
        for layer in self.layers:
            x = layer(x, rope, attention)
        return self.logits(x[:, -keep:] if keep else x)


# ---- the plain attention: every token against the tokens before it in its own row ----------------------

def visible_keys(real: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """(B, L, L) bool: causal, not padding and, with a ``window``, fewer than ``window`` positions back. A
    padding query sees itself, so no row is empty (no NaN)."""
    length = real.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
    if window is not None:
        causal = causal.triu(1 - window)
    eye = torch.eye(length, dtype=torch.bool, device=real.device)
    return (causal[None] & real[:, None, :].bool()) | eye[None]


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, real: torch.Tensor,
                     slopes: torch.Tensor | None, scale: float, window: int | None = None) -> torch.Tensor:
    """(B, heads, L, d) against (B, kv_heads, L, d) keys of the same L tokens; ``real`` (B, L) marks the
    tokens that are not padding.

    Rotary models: SDPA. ALiBi: scores in the weights' dtype, the float32 bias added, float32 softmax, as
    MPT computes it, one row at a time (a (heads, L, L) float32 bias, not a (B, heads, L, L) one)."""
    visible = visible_keys(real, window)
    groups = q.shape[1] // k.shape[1]
    if slopes is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible[:, None], scale=scale, enable_gqa=groups > 1)
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    bias = alibi_bias(slopes, q.shape[2], q.device)[:, None, :]
    out = []
    for row in range(q.shape[0]):
        scores = torch.matmul(q[row], k[row].transpose(-1, -2)) * scale + bias
        scores = scores.masked_fill(~visible[row][None], torch.finfo(torch.float32).min)
        out.append(torch.matmul(scores.softmax(dim=-1).to(v.dtype), v[row]))
    return torch.stack(out)


class SequenceAttention:
    """The definition: each row's whole sequence at once, causal, padding hidden (``real``: (B, L))."""

    def __init__(self, real: torch.Tensor):
        self.real = real

    def __call__(self, layer, q, k, v, slopes, scale, window=None):
        return causal_attention(q, k, v, self.real.to(q.device), slopes, scale, window)


def positions_of(real: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift rotary positions."""
    pos = real.long().cumsum(-1) - 1
    return pos.masked_fill(real == 0, 1)
