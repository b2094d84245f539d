"""The transformers family behind the harness's ModelAdapter contract.

Inputs: each prompt rendered (render.py) and run through the processor alone, then left-padded into a batch
(inputs.py); where provably the same, each distinct image's features come from a run-wide cache (features.py). Generation and ranking: the project's shared loops (models/decoding/run.py) over the model's
own forward, each prompt prefilled once (decode.py). The context check happens at tokenisation, before the
batch reaches the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models.base import GenerationSettings, ModelAdapter
from flamingo_eval.models.decoding.run import check_settings, generate_ids, rank_options
from flamingo_eval.models.files import weights_sha256
from flamingo_eval.models.hf.protocol import answer_text, stop_ids
from flamingo_eval.models.placement import dtype_of
from flamingo_eval.models.transformers import decode
from flamingo_eval.models.transformers.features import ImageFeatures
from flamingo_eval.models.transformers.inputs import SAME_IMAGE_COUNT, collate, encode
from flamingo_eval.models.transformers.render import DATE, prompt_text, reads_date
from flamingo_eval.models.transformers.spec import TransformersSpec
from flamingo_eval.prompt import Chunk


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def load_processor(spec: TransformersSpec):
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(spec.model, revision=spec.revision, **spec.processor)
    except (OSError, ValueError, TypeError) as e:
        raise WeightsError(f"{spec.name}: cannot load the processor of {spec.model} ({_first_line(e)}); download it "
                           f"(huggingface-cli download {spec.model}) or set model to a local directory") from None


def load_model_weights(spec: TransformersSpec, dtype: torch.dtype, device_map: str | None):
    from transformers import AutoModelForImageTextToText

    try:
        return AutoModelForImageTextToText.from_pretrained(spec.model, revision=spec.revision, dtype=dtype,
                                                           device_map=device_map).eval()
    except (OSError, ValueError) as e:
        raise WeightsError(f"{spec.name}: cannot load the weights of {spec.model} ({_first_line(e)}); download them "
                           f"(huggingface-cli download {spec.model}) or set model to a local directory") from None


def model_stop_ids(model, tokenizer) -> list[int]:
    """EOS and every newline id (hf/protocol.py), then the generation config's own EOS ids."""
    ids = [i for i in stop_ids(tokenizer) if i is not None]  # a tokenizer may define no EOS of its own
    extra = getattr(model.generation_config, "eos_token_id", None)
    extra = [] if extra is None else [extra] if isinstance(extra, int) else list(extra)
    return ids + [i for i in dict.fromkeys(extra) if i not in ids]


def load_transformers(spec: TransformersSpec, device: str = "cpu", precision: str = "fp32",
                      device_map: str | None = None) -> TransformersAdapter:
    """A ``family: transformers`` spec -> a ready adapter, its cached decoding checked on the loaded model."""
    from flamingo_eval.models.transformers.selfcheck import check_cached_decoding

    dtype = dtype_of(precision)
    processor = load_processor(spec)
    model = load_model_weights(spec, dtype, device_map)
    if device_map is None:
        model.to(device)
    adapter = TransformersAdapter(spec, model, processor, precision)
    check_cached_decoding(adapter)
    return adapter


class TransformersAdapter(ModelAdapter):
    def __init__(self, spec: TransformersSpec, model, processor, precision: str = "fp32", cache_images: bool = True):
        self.spec, self.name = spec, spec.name
        self.model, self.processor = model, processor
        self.tokenizer = processor.tokenizer
        self.model_type = model.config.model_type
        self.precision = precision
        self.stop_ids = model_stop_ids(model, self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        self.features = ImageFeatures(model) if cache_images and ImageFeatures.applies(model) else None
        self._sha256: str | None = None

    # ---- text -------------------------------------------------------------------------------
    def render(self, prompt: list[Chunk]) -> str:
        return prompt_text(self.processor, self.model_type, self.spec.prompt_format, prompt)

    def context_length(self) -> int | None:
        return getattr(self.model.config.get_text_config(decoder=True), "max_position_embeddings", None)

    def option_lengths(self, options: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._option_ids(options)]

    def _option_ids(self, options: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(options), add_special_tokens=False)["input_ids"] if options else []  # one call

    def inputs(self, prompts: Sequence[list[Chunk]], following: int) -> dict[str, Any]:
        """The batch's model inputs; a prompt over the context is one line naming shots, tokens and limit."""
        limit = self.context_length()
        encoded = []
        for prompt in prompts:
            images = [image for chunk in prompt for image in chunk.images]
            one = encode(self.processor, self.render(prompt), [image.load() for image in images])
            tokens = int(one["input_ids"].shape[1])
            if limit and tokens + following > limit:
                raise ConfigError(f"{self.name}: a {len(prompt) - 1}-shot prompt of {tokens} tokens plus {following} "
                                  f"new ones exceeds the model's context of {limit} tokens; use fewer shots or "
                                  "smaller images")
            encoded.append(one)
        batch = collate(encoded, self.model_type, self.pad_id)
        if self.features is not None and "pixel_values" in batch:  # the vision tower's outputs, not its inputs
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            features = [f for prompt, one in zip(prompts, encoded, strict=True)
                        for f in self.features.of_prompt([im.key for c in prompt for im in c.images], one)]
            del batch["pixel_values"]
            batch["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=tuple(features))}
        return batch

    # ---- the contract -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[str]:
        return [answer_text(self.tokenizer, ids) for ids in self.generate_ids(prompts, settings)]

    def _groups(self, prompts: Sequence[list[Chunk]]) -> list[list[int]]:
        """Which prompts share a batch: all, except where padding image slots would change a prompt's outputs
        (Llama 3.2 Vision: text before the first image attends to every slot, padding included)."""
        if self.model_type not in SAME_IMAGE_COUNT:
            return [list(range(len(prompts)))]
        groups: dict[int, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(sum(len(c.images) for c in prompt), []).append(i)
        return list(groups.values())

    def _per_group(self, prompts: Sequence[list[Chunk]], run) -> list:
        out: list = [None] * len(prompts)
        for group in self._groups(prompts):
            for i, result in zip(group, run([prompts[i] for i in group]), strict=True):
                out[i] = result
        return out

    def generate_ids(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[list[int]]:
        """The new ids per prompt, ending with the stop id where generation stopped at one."""
        if not prompts:
            return []
        check_settings(settings)
        return self._per_group(prompts, lambda group: self._generate_ids(group, settings))

    def _generate_ids(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[list[int]]:
        batch = self.inputs(prompts, settings.max_new_tokens)
        prefill = lambda rows, room: decode.prefill(self.model, self.model_type, batch, rows)  # noqa: E731
        extend = lambda state, tokens, every: decode.extend(self.model, state, tokens, every)  # noqa: E731
        return generate_ids(prefill, extend, settings, self.stop_ids)

    def rank(self, prompts: Sequence[list[Chunk]], options: Sequence[str]) -> list[list[float]]:
        if not prompts:
            return []
        opts = self._option_ids(options)
        if any(not o for o in opts):
            raise ConfigError("rank: an option tokenizes to nothing")
        return self._per_group(prompts, lambda group: self._rank(group, opts))

    def _rank(self, prompts: Sequence[list[Chunk]], opts: list[list[int]]) -> list[list[float]]:
        batch = self.inputs(prompts, max(map(len, opts)))
        prefill = lambda rows, room: decode.prefill(self.model, self.model_type, batch, rows)  # noqa: E731
        extend = lambda state, tokens, every: decode.extend(self.model, state, tokens, every)  # noqa: E731
        return rank_options(prefill, extend, len(prompts), opts, self.pad_id)

    def describe(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = weights_sha256(self.spec.model, self.spec.revision)
        out = {"name": self.name, "family": self.spec.family, "architecture": self.model_type,
               "spec": self.spec.summary(), "weights_sha256": self._sha256, "precision": self.precision,
               "device": str(self.model.device)}
        if self.spec.prompt_format == "chat" and reads_date(self.processor):
            out["chat_template_date"] = DATE
        return out
