"""How OpenFlamingo sees a Prompt: one ``<image>`` per image of a chunk, then its text, ``<|endofchunk|>`` + separator between chunks."""

from __future__ import annotations

from flamingo_eval.prompt import Chunk, instruction_of, separator_of

IMAGE_TOKEN = "<image>"
END_OF_CHUNK = "<|endofchunk|>"


def render(prompt: list[Chunk]) -> str:
    sep = separator_of(prompt)
    parts = [instruction_of(prompt)]
    for i, chunk in enumerate(prompt):
        parts.append(IMAGE_TOKEN * len(chunk.images) + chunk.text)
        if i < len(prompt) - 1:
            parts.append(END_OF_CHUNK + sep)
    return "".join(parts)
