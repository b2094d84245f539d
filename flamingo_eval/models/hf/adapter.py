"""The Hugging Face families behind the harness's ModelAdapter contract.

Inputs come from the model's own processor (protocol.py), one prompt at a time, and are left-padded here;
each distinct image (by key) is encoded once for the adapter's lifetime (an LRU cache, as for Flamingo);
each prompt is prefilled once whatever the beam count, and the project's greedy / beam search decode over
the family's cached pass (an ``Engine``: idefics/engine.py, idefics2/engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models.base import GenerationSettings, ModelAdapter
from flamingo_eval.models.decoding.run import check_settings, generate_ids, rank_options
from flamingo_eval.models.files import weights_sha256
from flamingo_eval.models.flamingo.latent_cache import LatentCache
from flamingo_eval.models.hf.protocol import answer_text, stop_ids
from flamingo_eval.models.hf.spec import HFSpec
from flamingo_eval.models.placement import dtype_of
from flamingo_eval.prompt import Chunk

FEATURE_CACHE_BYTES = 4 << 30  # image features by key for a whole run (Idefics2: 64 x 4096 bf16 = 512 KiB each)


class Engine(Protocol):
    """What differs between the families: how a prompt is tokenised, how an image is encoded, how the model
    is prefilled and extended. ``extra`` is whatever a prompt carries beside its ids (its image rule)."""

    model: Any

    def encode_prompt(self, prompt: list[Chunk], pictures: list) -> tuple[list[int], Any]: ...
    def encode_image(self, picture) -> torch.Tensor: ...
    def prefill(self, ids: torch.Tensor, mask: torch.Tensor, extras: list, images: list[list[torch.Tensor]],
                rows: int, room: int) -> tuple[torch.Tensor, Any]: ...
    def extend(self, state: Any, tokens: torch.Tensor, all_logits: bool) -> torch.Tensor: ...
    def render(self, prompt: list[Chunk]) -> str: ...


def load_processor(spec: HFSpec):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(spec.model, revision=spec.revision)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{spec.name}: cannot load the processor of {spec.model} ({str(e).splitlines()[0]}); "
                           f"download it (huggingface-cli download {spec.model}) or set model to a local directory in a model spec"
                           ) from None
    if spec.image_splitting is not None:
        if not hasattr(processor.image_processor, "do_image_splitting"):
            raise ConfigError(f"{spec.name}: image_splitting is not an option of the {spec.family} processor")
        processor.image_processor.do_image_splitting = spec.image_splitting
    return processor


def load_transformers_model(spec: HFSpec, dtype: torch.dtype):
    """The checkpoint through transformers' public loading API, on the CPU in ``dtype``."""
    if spec.family == "idefics":
        from transformers import IdeficsForVisionText2Text as cls
    else:
        from transformers import AutoModelForImageTextToText as cls
    try:
        return cls.from_pretrained(spec.model, revision=spec.revision, dtype=dtype).eval()
    except (OSError, ValueError) as e:
        raise WeightsError(f"{spec.name}: cannot load the weights of {spec.model} ({str(e).splitlines()[0]}); "
                           f"download them (huggingface-cli download {spec.model}) or set model to a local directory in a model "
                           "spec") from None


def load_hf(spec: HFSpec, device: str = "cpu", precision: str = "fp32", device_map: str | None = None) -> HFAdapter:
    """An Idefics / Idefics2 / Idefics3 spec -> a ready adapter."""
    dtype = dtype_of(precision)
    processor = load_processor(spec)
    hf = load_transformers_model(spec, dtype)
    if hf.config.model_type != spec.family:
        raise ConfigError(f"{spec.name}: {spec.model} is an {hf.config.model_type!r} model, not {spec.family!r}")
    if spec.family == "idefics":
        from flamingo_eval.models.idefics.engine import IdeficsEngine as engine_class
    else:
        from flamingo_eval.models.idefics2.engine import ImageTokenEngine as engine_class
    engine = engine_class.build(hf, processor, spec.name, device, device_map, dtype)
    return HFAdapter(spec, engine, processor, engine.device, precision)


class HFAdapter(ModelAdapter):
    def __init__(self, spec: HFSpec, engine: Engine, processor, device: str, precision: str,
                 cache_bytes: int = FEATURE_CACHE_BYTES):
        self.spec = spec
        self.name = spec.name
        self.engine = engine
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.device = device
        self.precision = precision
        self.features = LatentCache(cache_bytes)
        self.stop_ids = stop_ids(self.tokenizer)
        self._sha256: str | None = None

    # ---- text -------------------------------------------------------------------------------
    def render(self, prompt: list[Chunk]) -> str:
        return self.engine.render(prompt)

    def context_length(self) -> int:
        return self.engine.model.lm.config.max_positions

    def option_lengths(self, options: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._option_ids(options)]

    def _option_ids(self, options: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(options), add_special_tokens=False)["input_ids"] if options else []  # one call

    def _inputs(self, prompts: Sequence[list[Chunk]], following: int):
        """Left-padded ids and mask, each prompt's extra, and each prompt's image features in order."""
        rows, extras, images = [], [], []
        limit = self.context_length()
        for prompt in prompts:
            shown = [im for c in prompt for im in c.images]
            pictures = {im.key: None for im in shown}
            for im in shown:
                if pictures[im.key] is None:
                    pictures[im.key] = im.load()
            ids, extra = self.engine.encode_prompt(prompt, [pictures[im.key] for im in shown])
            if limit and len(ids) + following > limit:
                raise ConfigError(f"a prompt of {len(ids)} tokens plus {following} more exceeds {self.name}'s "
                                  f"context of {limit} tokens; use fewer shots")
            rows.append(ids)
            extras.append(extra)
            images.append([self._feature(im.key, pictures[im.key]) for im in shown])
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long, device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long, device=self.device)
        return ids, mask, extras, images

    def _feature(self, key: str, picture) -> torch.Tensor:
        cached = self.features.get(key)
        if cached is None:
            cached = self.engine.encode_image(picture)
            self.features.put(key, cached)
        return cached

    # ---- the contract -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[str]:
        return [answer_text(self.tokenizer, ids) for ids in self.generate_ids(prompts, settings)]

    @torch.inference_mode()
    def generate_ids(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[list[int]]:
        """The new ids per prompt, ending with the stop token (EOS or a newline token) where it stopped."""
        if not prompts:
            return []
        check_settings(settings)
        ids, mask, extras, images = self._inputs(prompts, settings.max_new_tokens)
        prefill = lambda rows, room: self.engine.prefill(ids, mask, extras, images, rows, room)  # noqa: E731
        return generate_ids(prefill, self.engine.extend, settings, self.stop_ids)

    @torch.inference_mode()
    def rank(self, prompts: Sequence[list[Chunk]], options: Sequence[str]) -> list[list[float]]:
        if not prompts:
            return []
        opts = self._option_ids(options)
        if any(not o for o in opts):
            raise ConfigError("rank: an option tokenizes to nothing")
        ids, mask, extras, images = self._inputs(prompts, max(map(len, opts)))
        prefill = lambda rows, room: self.engine.prefill(ids, mask, extras, images, rows, room)  # noqa: E731
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        return rank_options(prefill, self.engine.extend, len(prompts), opts, pad, trees=True)

    def describe(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = weights_sha256(self.spec.model, self.spec.revision)
        return {"name": self.name, "family": self.spec.family, "spec": self.spec.summary(),
                "weights_sha256": self._sha256, "precision": self.precision, "device": str(self.device)}
