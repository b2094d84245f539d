"""Idefics (v1) behind the Hugging Face adapter: the processor's ids and image rule, the Perceiver latents
of each image, and Flamingo's cached pass (flamingo/fast.py) over the project's Idefics."""

from __future__ import annotations

import torch

from flamingo_eval.models.flamingo import fast
from flamingo_eval.models.hf.protocol import idefics_items, image_text
from flamingo_eval.models.idefics.load import from_transformers
from flamingo_eval.models.idefics.model import Idefics, image_times
from flamingo_eval.models.idefics.selfcheck import check_fast_path
from flamingo_eval.models.placement import place
from flamingo_eval.prompt import Chunk


def pixel_values(processed) -> torch.Tensor:
    """The image processor's output: a tensor, or a mapping holding ``pixel_values``."""
    return processed if isinstance(processed, torch.Tensor) else processed["pixel_values"]


def distinct(rows: list[list[torch.Tensor]]) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Per-row image tensors (the cache hands out one object per key) -> each distinct one once, stacked,
    and (B, T_max) indices into them, -1 past a row's last image."""
    position: dict[int, int] = {}
    unique: list[torch.Tensor] = []
    index = torch.full((len(rows), max((len(r) for r in rows), default=0)), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        for t, latents in enumerate(row):
            if id(latents) not in position:
                position[id(latents)] = len(unique)
                unique.append(latents)
            index[b, t] = position[id(latents)]
    return (torch.stack(unique) if unique else None), index


class IdeficsEngine:
    def __init__(self, model: Idefics, processor, device: str):
        self.model, self.processor, self.device = model, processor, device

    @classmethod
    def build(cls, hf, processor, where: str, device: str, device_map: str | None, dtype: torch.dtype) -> IdeficsEngine:
        model = from_transformers(hf, where)
        device = place(model, device, device_map, dtype, ("IdeficsVisionEncoderLayer",))
        check_fast_path(model)  # before any evaluation: cached decoding must equal the definition here
        return cls(model, processor, device)

    def render(self, prompt: list[Chunk]) -> str:
        return image_text(prompt)

    def encode_prompt(self, prompt: list[Chunk], pictures: list) -> tuple[list[int], list[int]]:
        """The processor's ids for one prompt and, per token, the 1-based image it attends to (0: none)."""
        out = self.processor(text=[idefics_items(prompt, pictures)], return_tensors="pt")
        return out["input_ids"][0].tolist(), image_times(out["image_attention_mask"])[0].tolist()

    def encode_image(self, picture) -> torch.Tensor:
        pixels = pixel_values(self.processor.image_processor([picture], return_tensors="pt"))
        return self.model.encode_images(pixels)[0]

    def prefill(self, ids: torch.Tensor, mask: torch.Tensor, extras: list[list[int]], images: list[list[torch.Tensor]],
                rows: int, room: int):
        width = ids.shape[1]
        times = torch.tensor([[0] * (width - len(t)) + t for t in extras], dtype=torch.long, device=ids.device)
        latents, index = distinct(images)
        if latents is None:
            latents = torch.zeros((0, *self.model.latent_shape), dtype=self.model.dtype)
        prompt_images = fast.PromptImages(latents.to(self.model.device, self.model.dtype), index.to(ids.device))
        return fast.prefill(self.model, ids, mask, prompt_images, rows, room, times=times)

    def extend(self, state, tokens: torch.Tensor, all_logits: bool) -> torch.Tensor:
        return fast.extend(self.model, state, tokens, all_logits)
