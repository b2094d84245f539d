"""How OpenFlamingo sees a Prompt: ``<image>`` + text per chunk, ``<|endofchunk|>`` + separator between chunks."""

from __future__ import annotations

from flamingo_eval.prompt import Chunk, separator_of

IMAGE_TOKEN = "<image>"
END_OF_CHUNK = "<|endofchunk|>"


def render(prompt: list[Chunk]) -> str:
    sep = separator_of(prompt)
    parts = []
    for i, chunk in enumerate(prompt):
        parts.append((IMAGE_TOKEN if chunk.image is not None else "") + chunk.text)
        if i < len(prompt) - 1:
            parts.append(END_OF_CHUNK + sep)
    return "".join(parts)
