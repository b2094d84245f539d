"""The fast path checks itself at load: cached decoding must equal the plain full forward.

The cached prefill/extend path leans on how transformers' layers hand the KV cache around; a release that
changes that (5.24 renamed MPT's ``past_key_values`` to ``cache``) would make every decode step wrong
without raising. Before any evaluation, a tiny twin of the loaded model (the same LM class and options,
the same cross-attention layout, random weights, built in memory) decodes a few tokens both ways, with
left padding, images, beams and a beam reorder; any difference stops the run with one line.
"""

from __future__ import annotations

import torch
from torch import nn

from flamingo_eval import stack
from flamingo_eval.errors import EnvironmentProblem
from flamingo_eval.models.flamingo.sizes import FlamingoSizes

VOCAB = 48
WIDTH = 32
HEADS = 4
TOLERANCE = 1e-4  # on logits of unit-scale random weights; a broken cache differs by whole units
TINY_SIZES = FlamingoSizes(num_latents=4, perceiver_depth=1, perceiver_heads=2, perceiver_dim_head=8,
                           xattn_heads=2, xattn_dim_head=8)
VISION_WIDTH = 16


class FastPathMismatch(EnvironmentProblem):
    """The cached decoder disagrees with the model's definition in this environment."""


class NoVision(nn.Module):
    """Stands in for the vision tower: the check feeds latents directly, only the width is read."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 1, bias=False)


def _tiny_lm_config(lm: nn.Module, family_name: str, layers: int):
    """The loaded LM's config class and options, shrunk to ``layers`` x WIDTH."""
    config = type(lm.config).from_dict(lm.config.to_dict())
    config.vocab_size = VOCAB
    if family_name == "mpt":
        config.d_model, config.n_heads, config.n_layers, config.max_seq_len = WIDTH, HEADS, layers, 64
        return config
    groups = config.num_attention_heads // (getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    config.hidden_size, config.num_attention_heads, config.num_hidden_layers = WIDTH, HEADS, layers
    config.intermediate_size, config.max_position_embeddings = 2 * WIDTH, 64
    if hasattr(config, "num_key_value_heads"):
        config.num_key_value_heads = max(1, HEADS // groups)
    if hasattr(config, "head_dim"):
        config.head_dim = WIDTH // HEADS
    return config


def tiny_twin(model: nn.Module, seed: int = 0):
    """A Flamingo of the same LM family and options and cross-attention layout, with unit-scale random weights."""
    from flamingo_eval.models.flamingo.lm import get_attr
    from flamingo_eval.models.flamingo.model import Flamingo
    from flamingo_eval.models.flamingo.mosaic_gpt import QKNormedWqkv, add_qk_norms

    lm = model.lang_encoder
    every_n = model.cross_attn_every_n_layers
    layers = max(2, every_n)
    torch.manual_seed(seed)
    twin_lm = type(lm)(_tiny_lm_config(lm, model.family.name, layers))
    wqkv = getattr(getattr(get_attr(lm, model.family.layers_attr)[0].decoder_layer, "attn", None), "Wqkv", None)
    if isinstance(wqkv, QKNormedWqkv):  # MosaicGPT (OpenFlamingo-3B's LM)
        add_qk_norms(twin_lm, wqkv.clip)
    twin = Flamingo(NoVision(VISION_WIDTH), twin_lm, model.family, every_n, media_token_id=VOCAB - 2,
                    eoc_token_id=VOCAB - 1, sizes=TINY_SIZES)
    with torch.no_grad():
        for name, p in twin.named_parameters():
            if name.endswith("_gate"):
                p.fill_(0.7)
            elif p.dim() >= 2:
                p.normal_(0.0, p.shape[-1] ** -0.5)
            else:
                p.uniform_(0.5, 1.5) if "norm" in name or "ln" in name else p.normal_(0.0, 0.1)
    return twin.eval()


def _prompts(media: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three left-padded prompts of different lengths: two images, one image, no image."""
    rows = []
    for length, images in ((12, (0, 5)), (9, (2,)), (6, ())):
        ids = torch.randint(0, VOCAB - 2, (length,), generator=generator)
        for at in images:
            ids[at] = media
        rows.append(ids)
    width = max(len(r) for r in rows)
    ids = torch.stack([torch.cat([torch.zeros(width - len(r), dtype=torch.long), r]) for r in rows])
    mask = torch.stack([torch.cat([torch.zeros(width - len(r)), torch.ones(len(r))]).long() for r in rows])
    return ids, mask


@torch.no_grad()
def largest_difference(twin, steps: int = 3, beams: int = 2) -> float:
    """Cached prefill + extend (with a beam reorder) against full forwards over the same sequences."""
    from flamingo_eval.models.flamingo.model import PromptImages

    g = torch.Generator().manual_seed(1)
    device, dtype = twin.device, twin.dtype
    ids, mask = _prompts(twin.media_token_id, g)
    n, dim = twin.perceiver.latents.shape
    latents = torch.randn((3, n, dim), generator=g).to(device, dtype)
    index = torch.tensor([[0, 1], [1, -1], [-1, -1]])
    ids, mask, index = ids.to(device), mask.to(device), index.to(device)
    logits, state = twin.prefill(ids, mask, PromptImages(latents, index), beams, steps)
    media = latents[index.clamp(min=0)] * (index >= 0)[:, :, None, None].to(dtype)
    rows_ids, rows_mask, rows_media = (x.repeat_interleave(beams, dim=0) for x in (ids, mask, media))
    full = twin(rows_ids[::beams], rows_mask[::beams], twin.media_kv(rows_media[::beams]))[:, -1].float()
    worst = (logits - full).abs().max().item()
    reorder = torch.arange(len(rows_ids), device=device).view(-1, beams).flip(-1).flatten()  # swap each query's beams
    for step in range(steps):
        tokens = torch.randint(0, VOCAB - 2, (len(rows_ids), 1), generator=g).to(device)
        if step == 1:
            state.reorder(reorder)
            rows_ids, rows_mask = rows_ids[reorder], rows_mask[reorder]
        cached = twin.extend(state, tokens)
        rows_ids = torch.cat([rows_ids, tokens], dim=1)
        rows_mask = torch.cat([rows_mask, torch.ones_like(tokens)], dim=1)
        full = twin(rows_ids, rows_mask, twin.media_kv(rows_media))[:, -1].float()
        worst = max(worst, (cached - full).abs().max().item())
    return worst


def check_fast_path(model: nn.Module) -> float:
    """Raise ``FastPathMismatch`` (one line) unless the cached decoder equals the definition; returns the
    largest logit difference seen."""
    try:
        worst = largest_difference(tiny_twin(model).to(model.device))
    except Exception as e:  # a moved internal may also fail loudly inside the check: same verdict
        raise FastPathMismatch(
            f"fast-path self-check failed for the {model.family.name} LM: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''} ({stack.describe()})"
        ) from e
    if not worst <= TOLERANCE:
        raise FastPathMismatch(
            f"fast-path self-check failed for the {model.family.name} LM: cached decoding differs from the full "
            f"forward by {worst:.3g} in logits ({stack.describe()}); install the locked versions with `make setup`"
        )
    return worst
