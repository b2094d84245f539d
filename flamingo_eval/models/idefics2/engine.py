"""Idefics2 / Idefics3 behind the Hugging Face adapter: the processor's ids, each image's features (its
crops or tiles, in the processor's order), and the cached pass of fast.py over the project's LM."""

from __future__ import annotations

import torch

from flamingo_eval.models.hf.protocol import image_text
from flamingo_eval.models.idefics2 import fast
from flamingo_eval.models.idefics2.load import from_transformers
from flamingo_eval.models.idefics2.model import ImageTokenLM
from flamingo_eval.models.idefics2.selfcheck import check_fast_path
from flamingo_eval.models.placement import place
from flamingo_eval.prompt import Chunk


class ImageTokenEngine:
    def __init__(self, model: ImageTokenLM, processor, device: str):
        self.model, self.processor, self.device = model, processor, device

    @classmethod
    def build(cls, hf, processor, where: str, device: str, device_map: str | None,
              dtype: torch.dtype) -> ImageTokenEngine:
        model = from_transformers(hf, where)
        device = place(model, device, device_map, dtype)
        check_fast_path(model)  # before any evaluation: cached decoding must equal the definition here
        return cls(model, processor, device)

    def render(self, prompt: list[Chunk]) -> str:
        return image_text(prompt)

    def encode_prompt(self, prompt: list[Chunk], pictures: list) -> tuple[list[int], None]:
        out = self.processor(text=[image_text(prompt)], images=[pictures] if pictures else None, return_tensors="pt")
        return out["input_ids"][0].tolist(), None

    def encode_image(self, picture) -> torch.Tensor:
        out = self.processor.image_processor(images=[[picture]], return_tensors="pt")
        return self.model.encode_image(out["pixel_values"], out.get("pixel_attention_mask"))

    def prefill(self, ids: torch.Tensor, mask: torch.Tensor, extras: list, images: list[list[torch.Tensor]],
                rows: int, room: int):
        width = self.model.lm.config.width
        features = [torch.cat(row) if row else torch.zeros((0, width)) for row in images]
        return fast.prefill(self.model, ids, mask, [f.to(self.model.device) for f in features], rows, room)

    def extend(self, state, tokens: torch.Tensor, all_logits: bool) -> torch.Tensor:
        return fast.extend(self.model, state, tokens, all_logits)
