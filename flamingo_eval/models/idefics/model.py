"""Idefics (v1), Hugging Face's reproduction of Flamingo, top to bottom (transformers'
``IdeficsForVisionText2Text`` computes the same function and is the test oracle, never the runtime):

    image  -> CLIP ViT-H (the checkpoint's vision tower, a whole transformers module) -> Perceiver resampler
              (likewise) -> latents (64 per image)
    tokens -> LLaMA layers (models/lm); before every ``cross_layer_interval``-th one (layer i with
              i % n == 0, where OpenFlamingo puts its blocks at (i + 1) % n == 0), a gated cross-attention
              layer in which each token attends to the latents of the image the processor assigned it
              (``image_attention_mask``: the latest image at or before it; none before the first)
    logits over the LLaMA vocabulary and the additional tokens (``<fake_token_around_image>``, ``<image>``)

It differs from Flamingo's block in its parts, not its shape: RMSNorms, separate q/k/v projections (optional
RMSNorm on each head's queries and keys), a gated-SiLU MLP, tanh gates named alpha, and a token that sees no
image gets no cross-attention output. So Flamingo's fast path (flamingo/fast.py) runs it unchanged: per-image
K/V once, the last image at decode, the project's KV cache and cascade kernel.
"""

from __future__ import annotations

import torch
from torch import nn

from flamingo_eval.models.flamingo.model import AllImages, CrossAttentionLM, MediaAttention
from flamingo_eval.models.lm.config import LMConfig
from flamingo_eval.models.lm.decoder import MLP, DecoderLM, RMSNorm, SequenceAttention, positions_of


class GatedCrossAttentionLayer(nn.Module):
    """x + tanh(alpha_attn) * o(attend(q(norm(x)))); then x + tanh(alpha_dense) * mlp(norm(x))."""

    def __init__(self, lm: LMConfig, vision_width: int, qk_norm: bool, gate_shape: tuple[int, ...]):
        super().__init__()
        width = lm.width
        self.heads, self.head_dim = lm.heads, width // lm.heads
        self.scale = self.head_dim**-0.5
        self.input_norm = RMSNorm(width, lm.norm_eps)
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(vision_width, width, bias=False)
        self.v = nn.Linear(vision_width, width, bias=False)
        self.out = nn.Linear(width, width, bias=False)
        self.q_norm = RMSNorm(self.head_dim, lm.norm_eps) if qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, lm.norm_eps) if qk_norm else None
        self.attn_gate = nn.Parameter(torch.zeros(gate_shape))
        self.post_norm = RMSNorm(width, lm.norm_eps)
        self.mlp = MLP(lm)
        self.dense_gate = nn.Parameter(torch.zeros(gate_shape))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:-1], self.heads, self.head_dim).transpose(-2, -3)

    def media_kv(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., m, D_vis) latents -> keys, values (..., heads, m, head_dim), keys normalised per head."""
        k, v = self._heads(self.k(latents)), self._heads(self.v(latents))
        return (k if self.k_norm is None else self.k_norm(k)), v

    def forward(self, x: torch.Tensor, attend: MediaAttention) -> torch.Tensor:
        b, length, _ = x.shape
        q = self._heads(self.q(self.input_norm(x)))
        if self.q_norm is not None:
            q = self.q_norm(q)
        out = self.out(attend(q, self.scale).transpose(1, 2).reshape(b, length, -1))  # 0 where no image
        x = x + self.attn_gate.tanh() * out
        return x + self.dense_gate.tanh() * self.mlp(self.post_norm(x))


class Idefics(CrossAttentionLM):
    def __init__(self, vision: nn.Module, perceiver: nn.Module | None, lm: DecoderLM, cross_layer_interval: int,
                 vision_width: int, latents: int, qk_norm: bool = False, gate_shape: tuple[int, ...] = (1,)):
        super().__init__()
        self.vision = vision  # transformers' IdeficsVisionTransformer, used whole
        self.perceiver = perceiver  # transformers' IdeficsPerceiverResampler (None: use_resampler=False)
        self.lm = lm
        self.cross_layer_interval = cross_layer_interval
        self.xattn = nn.ModuleDict({
            str(i): GatedCrossAttentionLayer(lm.config, vision_width, qk_norm, gate_shape)
            for i in range(lm.config.layers) if i % cross_layer_interval == 0
        })
        self._latent_shape = (latents, vision_width)

    @property
    def device(self) -> torch.device:
        return self.lm.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm.embed.weight.dtype

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self._latent_shape

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) preprocessed images -> (N, latents, D_vis): the vision tower's last hidden states,
        resampled by the Perceiver."""
        hidden = self.vision(pixel_values=pixels.to(self.device, self.dtype)).last_hidden_state
        return hidden if self.perceiver is None else self.perceiver(hidden)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, latents: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """By definition: (B, L) ids, (B, L) mask (1 = token, 0 = left padding), (B, T_img, n, D) latents of
        each row's images in order, (B, L) ``times`` (1-based image per token, 0: none) -> (B, L, V) logits."""
        b, t, n, dim = latents.shape
        media = {key: AllImages(*block.media_kv(latents.reshape(b, t * n, dim)), times, n)
                 for key, block in self.xattn.items()}
        return self.run(ids, positions_of(mask), SequenceAttention(mask.bool()), media)


def image_times(image_attention_mask: torch.Tensor) -> torch.Tensor:
    """The processor's one-hot (B, L, N_images) ``image_attention_mask`` -> (B, L) 1-based image per token
    (0: the token attends to no image)."""
    m = image_attention_mask.long()
    return torch.where(m.sum(-1) > 0, m.argmax(-1) + 1, torch.zeros_like(m[..., 0]))
