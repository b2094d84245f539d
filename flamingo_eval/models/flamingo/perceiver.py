"""Perceiver resampler: 256 patch tokens per image -> 64 latents (OpenFlamingo's released configuration).

No media-time or frame embeddings (the released checkpoints have none), so each image is
resampled on its own and its latents can be cached by image.
"""

from __future__ import annotations

import torch
from torch import nn

from flamingo_eval.models.flamingo.xattn import feed_forward


class PerceiverAttention(nn.Module):
    """Latents attend to concat(image tokens, latents)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head**-0.5
        inner = dim_head * heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:-1], self.heads, self.dim_head).transpose(-2, -3)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        x = self.norm_media(x)
        latents = self.norm_latents(latents)
        q = self._heads(self.to_q(latents)) * self.scale
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)
        sim = q @ self._heads(k).transpose(-1, -2)
        sim = sim - sim.amax(dim=-1, keepdim=True)
        out = sim.softmax(dim=-1) @ self._heads(v)
        out = out.transpose(-2, -3).reshape(*latents.shape[:-1], -1)
        return self.to_out(out)


class PerceiverResampler(nn.Module):
    def __init__(self, dim: int, depth: int = 6, dim_head: int = 64, heads: int = 8, num_latents: int = 64, ff_mult: int = 4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head=dim_head, heads=heads), feed_forward(dim, ff_mult)])
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    @property
    def num_latents(self) -> int:
        return self.latents.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, tokens, D) image tokens -> (N, num_latents, D)."""
        latents = self.latents.expand(x.shape[0], -1, -1)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)
