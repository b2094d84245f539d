"""Gated cross-attention from text to Perceiver latents (OpenFlamingo's GatedCrossAttentionBlock).

Parameter names match OpenFlamingo's checkpoints. The media keys/values are a separate step
(``media_kv``) so a caller can compute them once per image and reuse them for every decode step.

Three ways to give a block its media, all computing OpenFlamingo's function:
- ``(keys, values)`` over every image of each row, masked by token time (the plain full forward);
- ``SegmentKV``: each image's K/V once, and each ``<image>`` segment of a prompt attends only to its own
  image's latents (prefill: no L x (T_img * n) masked matrix);
- ``LastImageKV``: per query, the K/V of its last image only, shared by its beams (decode: a new token
  can only see the last image, and ``<image>`` is never generated).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SegmentKV:
    """K/V of each distinct image (U, heads, n, dim_head), and per prompt which image its t-th ``<image>`` shows."""

    keys: torch.Tensor
    values: torch.Tensor
    image_index: torch.Tensor  # (B, T_max) long into U; -1 past a prompt's last image


@dataclass
class LastImageKV:
    """Per query, its last image's K/V (Q, heads, n, dim_head); the rows fed are Q x (rows per query)."""

    keys: torch.Tensor
    values: torch.Tensor
    has_image: torch.Tensor  # (Q,) bool: a prompt without images gets no attention output


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    """LayerNorm -> Linear -> exact GELU -> Linear, no biases (names .0, .1, .3 as in the checkpoints)."""
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, dim * mult, bias=False),
        nn.GELU(),
        nn.Linear(dim * mult, dim, bias=False),
    )


def text_time(media_locations: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """Per token, the 1-based index of the latest ``<image>`` at or before it (0: none yet).

    ``offset`` (per row) is the number of images seen before these tokens, for continuing a sequence.
    """
    t = media_locations.to(torch.long).cumsum(dim=-1)
    return t if offset is None else t + offset[:, None]


class MaskedCrossAttention(nn.Module):
    """Each text token attends only to the latents of its latest image; tokens before any image get 0."""

    def __init__(self, dim: int, dim_visual: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head**-0.5
        inner = dim_head * heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def media_kv(self, media: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T_img, n, D_vis) latents -> keys, values of shape (B, heads, T_img * n, dim_head)."""
        b, t, n, _ = media.shape
        k, v = self.to_kv(media.reshape(b, t * n, media.shape[-1])).chunk(2, dim=-1)
        k = k.view(b, t * n, self.heads, self.dim_head).transpose(1, 2)
        v = v.view(b, t * n, self.heads, self.dim_head).transpose(1, 2)
        return k, v

    def forward(self, x: torch.Tensor, kv, times: torch.Tensor, n_latents: int) -> torch.Tensor:
        if isinstance(kv, LastImageKV):
            return self._last_image(x, kv)
        if isinstance(kv, SegmentKV):
            return self._segments(x, kv, times)
        k, v = kv
        b, length, _ = x.shape
        q = self.to_q(self.norm(x)).view(b, length, self.heads, self.dim_head).transpose(1, 2)
        if k.shape[2] == 0:  # no image anywhere in the batch
            return self.to_out(torch.zeros_like(q).transpose(1, 2).reshape(b, length, -1))
        q = q * self.scale
        sim = q @ k.transpose(-1, -2)  # (B, h, L, T_img * n)
        key_time = torch.arange(k.shape[2] // n_latents, device=x.device).repeat_interleave(n_latents) + 1
        visible = times[:, None, :, None] == key_time[None, None, None, :]
        sim = sim.masked_fill(~visible, -torch.finfo(sim.dtype).max)
        sim = sim - sim.amax(dim=-1, keepdim=True)
        attn = sim.softmax(dim=-1)
        attn = attn.masked_fill((times == 0)[:, None, :, None], 0.0)
        out = (attn @ v).transpose(1, 2).reshape(b, length, -1)
        return self.to_out(out)

    def _segments(self, x: torch.Tensor, kv: SegmentKV, times: torch.Tensor) -> torch.Tensor:
        """Pack each (prompt, image) segment's tokens as one query block against that image's n keys."""
        b, length, _ = x.shape
        q = self.to_q(self.norm(x))
        out = torch.zeros_like(q)
        valid = times > 0
        if kv.keys.shape[0] == 0 or not bool(valid.any()):
            return self.to_out(out)
        t_max = kv.image_index.shape[1]
        present = (kv.image_index >= 0).flatten()
        compact = present.long().cumsum(0) - 1  # segment (row, t) -> packed index
        seg = compact[(torch.arange(b, device=x.device)[:, None] * t_max + times - 1)[valid]]
        flat = torch.arange(b * length, device=x.device).view(b, length)[valid]
        n_seg = int(present.sum())
        start = torch.full((n_seg,), b * length, device=x.device, dtype=torch.long).scatter_reduce(0, seg, flat, "amin")
        within = flat - start[seg]  # times never decrease, so a segment's tokens are contiguous
        packed = q.new_zeros((n_seg, int(within.max()) + 1, q.shape[-1]))
        packed[seg, within] = q[valid]
        images = kv.image_index.flatten()[present]
        packed = packed.view(n_seg, -1, self.heads, self.dim_head).transpose(1, 2)
        att = F.scaled_dot_product_attention(packed, kv.keys[images], kv.values[images], scale=self.scale)
        out[valid] = att.transpose(1, 2).reshape(n_seg, -1, q.shape[-1])[seg, within]
        return self.to_out(out)

    def _last_image(self, x: torch.Tensor, kv: LastImageKV) -> torch.Tensor:
        """Rows of one query (its beams) are one query block against its last image: no per-beam K/V copy."""
        rows, length, _ = x.shape
        queries = kv.keys.shape[0]
        q = self.to_q(self.norm(x)).view(queries, -1, self.heads, self.dim_head).transpose(1, 2)
        att = F.scaled_dot_product_attention(q, kv.keys, kv.values, scale=self.scale)
        att = att * kv.has_image.to(att.dtype)[:, None, None, None]
        return self.to_out(att.transpose(1, 2).reshape(rows, length, -1))


class GatedCrossAttentionBlock(nn.Module):
    """x + tanh(attn_gate) * xattn(x); then x + tanh(ff_gate) * FF(x). The FF applies to every token."""

    def __init__(self, dim: int, dim_visual: int, dim_head: int = 64, heads: int = 8, ff_mult: int = 4):
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_visual, dim_head=dim_head, heads=heads)
        self.attn_gate = nn.Parameter(torch.tensor([0.0]))
        self.ff = feed_forward(dim, ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.0]))

    def media_kv(self, media: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn.media_kv(media)

    def forward(self, x: torch.Tensor, kv, times: torch.Tensor, n_latents: int) -> torch.Tensor:
        x = self.attn(x, kv, times, n_latents) * self.attn_gate.tanh() + x
        return self.ff(x) * self.ff_gate.tanh() + x
