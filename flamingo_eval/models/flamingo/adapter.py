"""The bundled Flamingo behind the harness's ModelAdapter contract.

Prompts are rendered as OpenFlamingo renders them (render.py), tokenised with left padding and no
truncation; images go through the open_clip val transform and are encoded once per distinct key for
the adapter's lifetime (latent_cache.py). Generation prefills each prompt once and decodes with the
project's greedy / beam search (models/decoding/search.py) over the cached model pass (fast.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.base import GenerationSettings, ModelAdapter
from flamingo_eval.models.decoding.run import check_settings, generate_ids, rank_options
from flamingo_eval.models.files import file_sha256, read_state_dict, resolve_file
from flamingo_eval.models.flamingo import fast
from flamingo_eval.models.flamingo.checkpoint import apply_checkpoint
from flamingo_eval.models.flamingo.latent_cache import LatentCache
from flamingo_eval.models.flamingo.model import Flamingo
from flamingo_eval.models.flamingo.presets import ModelSpec, get_spec
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.models.flamingo.selfcheck import check_fast_path
from flamingo_eval.models.flamingo.tokens import (
    END_OF_CHUNK,
    IMAGE,
    clean_up_spaces,
    cleans_up_spaces,
    load_tokenizer,
)
from flamingo_eval.models.flamingo.vision import load_vision
from flamingo_eval.models.lm.load import lm_config, load_lm
from flamingo_eval.models.placement import dtype_of, place
from flamingo_eval.prompt import Chunk, Image

LATENT_CACHE_BYTES = 2 << 30  # 16k images of OpenFlamingo-9B latents (64 x 1024 bf16); a 2048-item pool fits
ENCODE_BATCH = 64


def build_flamingo(spec: ModelSpec, dtype: torch.dtype = torch.float32) -> tuple[Flamingo, Any, Any, str]:
    """(model on CPU in ``dtype``, tokenizer, image transform, checkpoint path) for a spec.

    The checkpoint is resolved first, so a missing file fails before minutes of LM loading; the LM is read
    directly in ``dtype`` (a 7B LM in bf16 never exists in fp32), and the Perceiver and cross-attention are
    built on the meta device and take the checkpoint's tensors (no random initialisation of a billion weights).
    """
    path = resolve_file(spec.checkpoint, "checkpoint", spec.base_dir)
    name = spec.vision_encoder["name"]
    if name.startswith("local-dir:"):
        name = "local-dir:" + spec.local(name.removeprefix("local-dir:"))
    visual, transform = load_vision(name, spec.local(spec.vision_encoder.get("pretrained")))
    tokenizer = load_tokenizer(spec.local(spec.tokenizer))
    lm_path = spec.local(spec.lang_encoder)
    published = lm_config(lm_path)
    lm = load_lm(lm_path, dtype, vocab_size=len(tokenizer), config=published)
    visual = visual.to(dtype)
    with torch.device("meta"):
        model = Flamingo(visual, lm, spec.cross_attn_every_n_layers,
                         media_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
                         eoc_token_id=tokenizer.convert_tokens_to_ids(END_OF_CHUNK), sizes=spec.sizes)
    # rows the tokenizer added to an untied output matrix would be zeros: the checkpoint must provide them
    grew = len(tokenizer) > published.vocab_size
    apply_checkpoint(model, read_state_dict(path), path, {"lm.head.weight"} if grew and lm.head is not None else set())
    return model.eval(), tokenizer, transform, path


def load_flamingo(name_or_spec: str | ModelSpec, device: str = "cpu", precision: str = "fp32",
                  device_map: str | None = None) -> FlamingoAdapter:
    """A preset name (``of-9b``), a model spec YAML or a parsed spec -> a ready adapter."""
    dtype = dtype_of(precision)
    spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    model, tokenizer, transform, path = build_flamingo(spec, dtype)
    device = place(model, device, device_map, dtype)
    check_fast_path(model)  # before any evaluation: cached decoding must equal the definition here
    return FlamingoAdapter(model, tokenizer, transform, spec, path, device, precision)


class FlamingoAdapter(ModelAdapter):
    def __init__(
        self,
        model: Flamingo,
        tokenizer,
        transform,
        spec: ModelSpec,
        checkpoint_path: str,
        device: str,
        precision: str,
        latent_cache_bytes: int = LATENT_CACHE_BYTES,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.transform = transform
        self.spec = spec
        self.name = spec.name
        self.checkpoint_path = checkpoint_path
        self.device = device
        self.precision = precision
        self._sha256: str | None = None
        self.latent_cache = LatentCache(latent_cache_bytes)

    # ---- text -------------------------------------------------------------------------------
    def render(self, prompt: list[Chunk]) -> str:
        return render(prompt)

    def context_length(self) -> int | None:
        """How many positions the language model has (MPT's ALiBi table, rotary models' trained range)."""
        return self.model.lm.config.max_positions

    def _tokenize(self, prompts: Sequence[list[Chunk]], following: int = 0) -> list[list[int]]:
        """Token ids per prompt; ``following`` tokens (generation, options) must still fit the context."""
        rows = []
        limit = self.context_length()
        for prompt in prompts:
            ids = self.tokenizer(render(prompt))["input_ids"]
            n_images = sum(len(c.images) for c in prompt)
            if ids.count(self.model.media_token_id) != n_images:
                raise ConfigError(f"prompt text contains a literal {IMAGE!r}: {render(prompt)[:80]!r}")
            if limit and len(ids) + following > limit:
                raise ConfigError(f"a prompt of {len(ids)} tokens plus {following} more exceeds {self.name}'s "
                                  f"context of {limit} tokens; use fewer shots")
            rows.append(ids)
        return rows

    def _pad_left(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        return ids.to(self.device), mask.to(self.device)

    def option_lengths(self, options: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._option_ids(options)]

    def _option_ids(self, options: Sequence[str]) -> list[list[int]]:
        out = self.tokenizer(list(options), add_special_tokens=False)["input_ids"] if options else []  # one call
        if any(not ids for ids in out):
            raise ConfigError("rank: an option tokenizes to nothing")
        return out

    # ---- images -----------------------------------------------------------------------------
    def latents(self, images: Sequence[Image]) -> dict[str, torch.Tensor]:
        """Perceiver latents per distinct image key; only keys not seen before (or evicted) are encoded."""
        out: dict[str, torch.Tensor | None] = {}
        for im in images:
            if im.key not in out:
                out[im.key] = self.latent_cache.get(im.key)
        missing = [im for im in {im.key: im for im in images}.values() if out[im.key] is None]
        for i in range(0, len(missing), ENCODE_BATCH):
            batch = missing[i : i + ENCODE_BATCH]
            pixels = torch.stack([self.transform(im.load()) for im in batch])
            for im, lat in zip(batch, self.model.encode_images(pixels), strict=True):
                out[im.key] = lat
                self.latent_cache.put(im.key, lat)
        return out

    def _images(self, prompts: Sequence[list[Chunk]]) -> fast.PromptImages:
        per_row = [[im for c in p for im in c.images] for p in prompts]
        lat = self.latents([im for row in per_row for im in row])
        position = {key: i for i, key in enumerate(lat)}
        t_max = max((len(r) for r in per_row), default=0)
        index = torch.full((len(prompts), t_max), -1, dtype=torch.long)
        for b, row in enumerate(per_row):
            index[b, : len(row)] = torch.tensor([position[im.key] for im in row], dtype=torch.long)
        n, dim = self.model.perceiver.latents.shape
        stacked = torch.stack(list(lat.values())) if lat else torch.zeros((0, n, dim))
        return fast.PromptImages(stacked.to(self.model.device, self.model.dtype), index.to(self.model.device))

    def _media(self, prompts: Sequence[list[Chunk]]) -> torch.Tensor:
        """(B, T_max, n, D) latents per row, zero-padded where a row has fewer images: what ``Flamingo.forward``
        (the uncached full pass) takes."""
        images = self._images(prompts)
        media = images.latents[images.index.clamp(min=0)]
        return media * (images.index >= 0)[:, :, None, None].to(media.dtype)

    # ---- the contract -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[str]:
        texts = self.tokenizer.batch_decode(
            self.generate_ids(prompts, settings), skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return [clean_up_spaces(t) for t in texts] if cleans_up_spaces(self.tokenizer) else texts

    @torch.inference_mode()
    def generate_ids(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[list[int]]:
        """The new token ids per prompt, ending with ``<|endofchunk|>`` when generation stopped there."""
        if not prompts:
            return []
        check_settings(settings)
        ids, mask = self._pad_left(self._tokenize(prompts, settings.max_new_tokens))
        images = self._images(prompts)
        prefill = lambda rows, room: fast.prefill(self.model, ids, mask, images, rows, room)  # noqa: E731
        extend = lambda state, tokens, every: fast.extend(self.model, state, tokens, every)  # noqa: E731
        return generate_ids(prefill, extend, settings, self.model.eoc_token_id, banned=[self.model.media_token_id])

    @torch.inference_mode()
    def rank(self, prompts: Sequence[list[Chunk]], options: Sequence[str]) -> list[list[float]]:
        if not prompts:
            return []
        opts = self._option_ids(options)
        ids, mask = self._pad_left(self._tokenize(prompts, max(map(len, opts))))
        images = self._images(prompts)
        prefill = lambda rows, room: fast.prefill(self.model, ids, mask, images, rows, room)  # noqa: E731
        extend = lambda state, tokens, every: fast.extend(self.model, state, tokens, every)  # noqa: E731
        return rank_options(prefill, extend, len(prompts), opts, self.tokenizer.pad_token_id, trees=True)

    def describe(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.checkpoint_path)
        return {
            "name": self.name,
            "spec": self.spec.summary(),
            "family": self.model.lm.config.family,
            "checkpoint_path": os.path.abspath(self.checkpoint_path),
            "checkpoint_sha256": self._sha256,
            "precision": self.precision,
            "device": str(self.device),
        }


__all__ = ["FlamingoAdapter", "build_flamingo", "load_flamingo"]
