"""Flamingo, as OpenFlamingo builds it, top to bottom: the definition (fast.py holds what makes it fast).

    image  -> vision tower patch tokens (no final LayerNorm) -> Perceiver resampler -> latents (n per image)
    tokens -> LM layers; before every ``cross_attn_every_n_layers``-th one, a gated cross-attention block in
              which each text token attends to the latents of the latest ``<image>`` at or before it
    logits

Parameter names follow OpenFlamingo's (``perceiver.*``, the cross-attention block's ``attn.to_q`` ...); the
checkpoint loader (checkpoint.py) maps the released files onto them. How attention reaches its keys is a
strategy passed in: ``AllImages`` and ``SequenceAttention`` here are the plain definition (every image's K/V
over the whole sequence, masked by token time); fast.py passes cached ones that compute the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from flamingo_eval.models.flamingo.sizes import OPENFLAMINGO, FlamingoSizes
from flamingo_eval.models.lm.decoder import Attention, DecoderLM, SequenceAttention, positions_of

# ---- 1. vision: the tower's patch tokens, before its final LayerNorm ------------------------------------

def patch_tokens(visual: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, patches, width): the last block's outputs, class token dropped, no ``ln_post``
    (open_clip < 2.23 returned these, and the released checkpoints were trained on them)."""
    x = visual.conv1(pixels)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(x)
    x = visual.transformer(x)
    return x[:, 1:]


def vision_width(visual: nn.Module) -> int:
    return visual.conv1.out_channels


# ---- 2. the Perceiver resampler: patch tokens -> a fixed number of latents per image --------------------

def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    """LayerNorm -> Linear -> exact GELU -> Linear, no biases (names .0, .1, .3 as in the checkpoints)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class PerceiverAttention(nn.Module):
    """Latents attend to concat(image tokens, latents)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads, self.dim_head, self.scale = heads, dim_head, dim_head**-0.5
        inner = dim_head * heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:-1], self.heads, self.dim_head).transpose(-2, -3)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        x, latents = self.norm_media(x), self.norm_latents(latents)
        q = self._heads(self.to_q(latents)) * self.scale
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)
        sim = q @ self._heads(k).transpose(-1, -2)
        sim = sim - sim.amax(dim=-1, keepdim=True)
        out = sim.softmax(dim=-1) @ self._heads(v)
        return self.to_out(out.transpose(-2, -3).reshape(*latents.shape[:-1], -1))


class PerceiverResampler(nn.Module):
    """No media-time embeddings (the released checkpoints have none): each image is resampled on its own,
    so its latents do not depend on the prompt it appears in."""

    def __init__(self, dim: int, depth: int = 6, dim_head: int = 64, heads: int = 8, num_latents: int = 64,
                 ff_mult: int = 4):
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


# ---- 3. masked cross-attention: a text token sees the latents of its latest image only -----------------

def text_time(media_locations: torch.Tensor) -> torch.Tensor:
    """Per token, the 1-based index of the latest ``<image>`` at or before it (0: none yet)."""
    return media_locations.to(torch.long).cumsum(dim=-1)


MediaAttention = Callable[[torch.Tensor, float], torch.Tensor]  # queries (B, heads, L, d), scale -> same shape


class AllImages:
    """The definition: every image's K/V of the row, (B, heads, T_img * n, d), masked by token time; a token
    before any image gets no attention output."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, times: torch.Tensor, n_latents: int):
        self.keys, self.values, self.times, self.n_latents = keys, values, times, n_latents

    def __call__(self, q: torch.Tensor, scale: float) -> torch.Tensor:
        if self.keys.shape[2] == 0:  # no image anywhere in the batch
            return torch.zeros_like(q)
        sim = (q * scale) @ self.keys.transpose(-1, -2)  # (B, heads, L, T_img * n)
        key_time = torch.arange(self.keys.shape[2] // self.n_latents, device=q.device).repeat_interleave(self.n_latents) + 1
        visible = self.times[:, None, :, None] == key_time[None, None, None, :]
        sim = sim.masked_fill(~visible, -torch.finfo(sim.dtype).max)
        attn = (sim - sim.amax(dim=-1, keepdim=True)).softmax(dim=-1)
        attn = attn.masked_fill((self.times == 0)[:, None, :, None], 0.0)
        return attn @ self.values


class MaskedCrossAttention(nn.Module):
    def __init__(self, dim: int, dim_visual: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads, self.dim_head, self.scale = heads, dim_head, dim_head**-0.5
        inner = dim_head * heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def media_kv(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., m, D_vis) latents -> keys, values (..., heads, m, dim_head)."""
        k, v = self.to_kv(latents).chunk(2, dim=-1)
        split = lambda t: t.view(*t.shape[:-1], self.heads, self.dim_head).transpose(-2, -3)  # noqa: E731
        return split(k), split(v)

    def forward(self, x: torch.Tensor, attend: MediaAttention) -> torch.Tensor:
        b, length, _ = x.shape
        q = self.to_q(self.norm(x)).view(b, length, self.heads, self.dim_head).transpose(1, 2)
        return self.to_out(attend(q, self.scale).transpose(1, 2).reshape(b, length, -1))


# ---- 4. the gated block: tanh gates (0 at initialisation) keep the LM's function until trained ----------

class GatedCrossAttentionBlock(nn.Module):
    """x + tanh(attn_gate) * xattn(x); then x + tanh(ff_gate) * FF(x). The FF applies to every token."""

    def __init__(self, dim: int, dim_visual: int, dim_head: int = 64, heads: int = 8, ff_mult: int = 4):
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_visual, dim_head=dim_head, heads=heads)
        self.attn_gate = nn.Parameter(torch.tensor([0.0]))
        self.ff = feed_forward(dim, ff_mult)
        self.ff_gate = nn.Parameter(torch.tensor([0.0]))

    def media_kv(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn.media_kv(latents)

    def forward(self, x: torch.Tensor, attend: MediaAttention) -> torch.Tensor:
        x = self.attn(x, attend) * self.attn_gate.tanh() + x
        return self.ff(x) * self.ff_gate.tanh() + x


# ---- 5. the language model with its cross-attention layers ----------------------------------------------

class CrossAttentionLM(nn.Module):
    """An LM with cross-attention blocks (``xattn``, keyed by the index of the LM layer they precede) that
    read image latents: Flamingo here, Idefics (models/idefics) too. A block has ``media_kv(latents)`` and
    ``forward(x, attend)``."""

    lm: DecoderLM
    xattn: nn.ModuleDict

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(latents per image, their width)."""
        raise NotImplementedError

    def run(self, ids: torch.Tensor, positions: torch.Tensor, attention: Attention,
            media: Mapping[str, MediaAttention], keep: int = 0) -> torch.Tensor:
        """The LM pass with cross-attention before its chosen layers; logits of the last ``keep`` positions
        (all when 0). ``attention`` and ``media`` (per block) say how attention reaches its keys."""
        x = self.lm.embed(ids)
        rope = self.lm.rope(positions, x.dtype)
        for i, layer in enumerate(self.lm.layers):
            block = self.xattn[str(i)] if str(i) in self.xattn else None
            if block is not None:
                x = block(x, media[str(i)])
            x = layer(x, rope, attention)
        return self.lm.logits(x[:, -keep:] if keep else x)


class Flamingo(CrossAttentionLM):
    def __init__(self, vision_encoder: nn.Module, lm: DecoderLM, cross_attn_every_n_layers: int,
                 media_token_id: int, eoc_token_id: int, sizes: FlamingoSizes = OPENFLAMINGO,
                 dim_visual: int | None = None):
        super().__init__()
        dim_visual = dim_visual or vision_width(vision_encoder)
        self.vision_encoder = vision_encoder
        self.perceiver = PerceiverResampler(dim_visual, depth=sizes.perceiver_depth, dim_head=sizes.perceiver_dim_head,
                                            heads=sizes.perceiver_heads, num_latents=sizes.num_latents)
        self.lm = lm
        self.cross_attn_every_n_layers = cross_attn_every_n_layers
        # LM layer i is preceded by a block when (i + 1) % every_n == 0, keyed by i
        self.xattn = nn.ModuleDict({
            str(i): GatedCrossAttentionBlock(lm.config.width, dim_visual, dim_head=sizes.xattn_dim_head,
                                             heads=sizes.xattn_heads)
            for i in range(lm.config.layers) if (i + 1) % cross_attn_every_n_layers == 0
        })
        self.media_token_id = media_token_id
        self.eoc_token_id = eoc_token_id

    @property
    def device(self) -> torch.device:
        return self.perceiver.latents.device

    @property
    def dtype(self) -> torch.dtype:
        return self.perceiver.latents.dtype

    @property
    def latent_shape(self) -> tuple[int, int]:
        return tuple(self.perceiver.latents.shape)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) preprocessed images -> (N, num_latents, D_vis) Perceiver latents."""
        return self.perceiver(patch_tokens(self.vision_encoder, pixels.to(self.device, self.dtype)))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """By definition: (B, L) ids, (B, L) mask (1 = token, 0 = left padding), (B, T_img, n, D) latents of
        each row's images in order -> (B, L, V) logits. Each token sees its latest image."""
        b, t, n, dim = latents.shape
        times = text_time(ids == self.media_token_id)
        media = {}
        for key, block in self.xattn.items():
            k, v = block.media_kv(latents.reshape(b, t * n, dim))
            media[key] = AllImages(k, v, times, n)
        return self.run(ids, positions_of(mask), SequenceAttention(mask.bool()), media)

