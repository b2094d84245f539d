"""Gated cross-attention from text to Perceiver latents (OpenFlamingo's GatedCrossAttentionBlock).

Parameter names match OpenFlamingo's checkpoints. The media keys/values are a separate step
(``media_kv``) so a caller can compute them once per image and reuse them for every decode step.
"""

from __future__ import annotations

import torch
from torch import nn


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

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], times: torch.Tensor, n_latents: int) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], times: torch.Tensor, n_latents: int) -> torch.Tensor:
        x = self.attn(x, kv, times, n_latents) * self.attn_gate.tanh() + x
        return self.ff(x) * self.ff_gate.tanh() + x
