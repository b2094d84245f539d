"""The fast path checks itself at load: cached decoding must equal the plain full forward.

The cached prefill/extend path (fast.py, models/decoding) computes the definition (model.py) by other
means: its cache bookkeeping, the cascade kernel and the per-image cross-attention all lean on torch's
kernels and on shapes that only some models have. Before any evaluation, a tiny twin of the loaded model
(the same LM options, the same cross-attention layout, random weights, built in memory) decodes a few
tokens both ways, with left padding, images, beams and a beam reorder; any difference stops the run with
one line naming the installed versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from flamingo_eval import stack
from flamingo_eval.errors import EnvironmentProblem
from flamingo_eval.models.flamingo import fast
from flamingo_eval.models.flamingo.model import Flamingo
from flamingo_eval.models.flamingo.sizes import FlamingoSizes
from flamingo_eval.models.lm.config import LMConfig
from flamingo_eval.models.lm.decoder import DecoderLM

VOCAB = 48
WIDTH = 32
HEADS = 4
TOLERANCE = 1e-4  # on logits of unit-scale random weights; a broken cache differs by whole units
TINY_SIZES = FlamingoSizes(num_latents=4, perceiver_depth=1, perceiver_heads=2, perceiver_dim_head=8,
                           xattn_heads=2, xattn_dim_head=8)
VISION_WIDTH = 16


class FastPathMismatch(EnvironmentProblem):
    """The cached decoder disagrees with the model's definition in this environment."""


def twin_lm(c: LMConfig, layers: int) -> DecoderLM:
    """The loaded LM's options at tiny sizes (grouped K/V heads and partial rotary kept in proportion, a
    sliding window that binds)."""
    head_dim = WIDTH // HEADS
    config = c.shrunk(vocab_size=VOCAB, width=WIDTH, layers=max(2, layers), heads=HEADS,
                      kv_heads=max(1, HEADS * c.kv_heads // c.heads), head_dim=head_dim, mlp_width=2 * WIDTH,
                      max_positions=64, softmax_scale=head_dim**-0.5,
                      rotary_dims=2 * max(1, round(head_dim * c.rotary_dims / c.head_dim / 2)) if c.rotary_dims else 0,
                      sliding_window=5 if c.sliding_window else None)  # shorter than the prompts: it binds
    return DecoderLM(config)


def randomize(model: nn.Module) -> nn.Module:
    """Unit-scale random weights (gates 0.7), so every part moves the logits."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.fill_(0.7)
            elif p.dim() >= 2:
                p.normal_(0.0, p.shape[-1] ** -0.5)
            elif "norm" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.normal_(0.0, 0.1)
            else:
                p.normal_(0.0, 0.1)
    return model.eval()


def tiny_twin(model: Flamingo, seed: int = 0) -> Flamingo:
    """A Flamingo with the loaded LM's options at tiny sizes, the same cross-attention layout, and unit-scale
    random weights; no vision tower (the check feeds latents)."""
    every_n = model.cross_attn_every_n_layers
    torch.manual_seed(seed)
    twin = Flamingo(None, twin_lm(model.lm.config, every_n), every_n, media_token_id=VOCAB - 2,
                    eoc_token_id=VOCAB - 1, sizes=TINY_SIZES, dim_visual=VISION_WIDTH)
    return randomize(twin)


def prompts(media: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three left-padded prompts of different lengths: two images, one image, no image (``media`` marks
    where an image goes)."""
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
def compare(prefill, extend, forward, ids: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
            steps: int = 3, beams: int = 2) -> float:
    """Largest logit difference between the cached path and the definition over the same sequences:
    ``prefill(beams, room) -> (logits, state)``, ``extend(state, tokens) -> logits``, and
    ``forward(ids, mask, origin) -> (R, L, V)`` where ``origin`` gives each row's prompt. Includes a beam
    reorder (each query's beams swapped) after the first step."""
    logits, state = prefill(beams, steps)
    origin = torch.arange(len(ids), device=ids.device)
    worst = (logits - forward(ids, mask, origin)[:, -1].float()).abs().max().item()
    origin = origin.repeat_interleave(beams)
    rows_ids, rows_mask = ids[origin], mask[origin]
    reorder = torch.arange(len(rows_ids), device=ids.device).view(-1, beams).flip(-1).flatten()
    for step in range(steps):
        tokens = torch.randint(0, VOCAB - 2, (len(rows_ids), 1), generator=generator).to(ids.device)
        if step == 1:
            state.reorder(reorder)
            rows_ids, rows_mask, origin = rows_ids[reorder], rows_mask[reorder], origin[reorder]
        cached = extend(state, tokens)
        rows_ids = torch.cat([rows_ids, tokens], dim=1)
        rows_mask = torch.cat([rows_mask, torch.ones_like(tokens)], dim=1)
        worst = max(worst, (cached - forward(rows_ids, rows_mask, origin)[:, -1].float()).abs().max().item())
    return worst


@torch.no_grad()
def largest_difference(twin: Flamingo) -> float:
    """Cached prefill + extend (with a beam reorder) against full forwards over the same sequences."""
    g = torch.Generator().manual_seed(1)
    device, dtype = twin.device, twin.dtype
    ids, mask = prompts(twin.media_token_id, g)
    n, dim = twin.perceiver.latents.shape
    latents = torch.randn((3, n, dim), generator=g).to(device, dtype)
    index = torch.tensor([[0, 1], [1, -1], [-1, -1]])
    ids, mask, index = ids.to(device), mask.to(device), index.to(device)
    media = latents[index.clamp(min=0)] * (index >= 0)[:, :, None, None].to(dtype)
    return compare(lambda beams, room: fast.prefill(twin, ids, mask, fast.PromptImages(latents, index), beams, room),
                   lambda state, tokens: fast.extend(twin, state, tokens),
                   lambda i, m, origin: twin(i, m, media[origin]), ids, mask, g)


def verdict(what: str, measure) -> float:
    """Run ``measure()`` (the largest difference); raise ``FastPathMismatch`` (one line) on any failure."""
    try:
        with one_thread():
            worst = measure()
    except Exception as e:  # a moved internal may also fail loudly inside the check: same verdict
        raise FastPathMismatch(
            f"fast-path self-check failed for {what}: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''} ({stack.describe()})"
        ) from e
    if not worst <= TOLERANCE:
        raise FastPathMismatch(
            f"fast-path self-check failed for {what}: cached decoding differs from the full "
            f"forward by {worst:.3g} in logits ({stack.describe()}); install the locked versions with `make setup`"
        )
    return worst


@contextmanager
def one_thread() -> Iterator[None]:
    """torch's CPU ops on one thread meanwhile: the twin's tensors are tiny, and on busy cores the thread
    pool's synchronisation made a 10 ms check take 0.3-3 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_fast_path(model: nn.Module) -> float:
    """Raise ``FastPathMismatch`` (one line) unless the cached decoder equals the definition; returns the
    largest logit difference seen."""
    return verdict(f"the {model.lm.config.family} LM", lambda: largest_difference(tiny_twin(model).to(model.device)))
