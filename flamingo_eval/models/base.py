"""The adapter contract every model implements; nothing upstream knows which model it serves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from flamingo_eval.prompt import Chunk


@dataclass(frozen=True)
class GenerationSettings:
    """Beam search settings; defaults are OpenFlamingo's captioning settings."""

    num_beams: int = 3
    max_new_tokens: int = 20
    min_new_tokens: int = 0
    length_penalty: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelAdapter(ABC):
    """A vision-language model seen by the harness: prompts in, text or option scores out."""

    name: str = "model"

    @abstractmethod
    def generate(self, prompts: Sequence[list[Chunk]], settings: GenerationSettings) -> list[str]:
        """The new text of each prompt, without special tokens, stopped at the end of the chunk."""

    @abstractmethod
    def rank(self, prompts: Sequence[list[Chunk]], options: Sequence[str]) -> list[list[float]]:
        """For each prompt, the summed log-probability of each option's tokens appended to it."""

    @abstractmethod
    def option_lengths(self, options: Sequence[str]) -> list[int]:
        """How many tokens each option has, for length-normalising ``rank`` scores."""

    @abstractmethod
    def render(self, prompt: list[Chunk]) -> str:
        """The prompt as the model sees it (logged per sample)."""

    def describe(self) -> dict[str, Any]:
        """What makes results reproducible: spec, checkpoint hash, precision, device."""
        return {"name": self.name}
