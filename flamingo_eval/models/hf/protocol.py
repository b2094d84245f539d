"""How the harness's interleaved prompts reach a Hugging Face model, and how its answers come back (README,
"The protocol for the Hugging Face families").

- Inputs are exactly what the model's own processor makes of the prompt, called with its defaults. Idefics:
  ``processor(text=[items])`` where the items are, chunk by chunk, the chunk's images (if any) then its text,
  a demonstration's text followed by the prompt's separator. Idefics2/3: the text joining, chunk by chunk,
  one ``<image>`` per image of the chunk and the chunk's text (plus the separator after a demonstration),
  with the images in order, ``images=None`` when there are none. The prompt's instruction (VL-ICL's task
  description line) comes first, as text. The processor writes every special token.
- Generation stops at the end-of-sequence token or at the first token whose own text holds a newline (the
  end of a demonstration); the answer is the new ids decoded without special tokens, cut before the first
  newline, not stripped.
"""

from __future__ import annotations

from typing import Any

from flamingo_eval.prompt import Chunk, instruction_of, separator_of

IMAGE = "<image>"


def chunk_texts(prompt: list[Chunk]) -> list[str]:
    """Each chunk's text as the model reads it: a demonstration's followed by the separator."""
    sep = separator_of(prompt)
    return [c.text + (sep if i < len(prompt) - 1 else "") for i, c in enumerate(prompt)]


def idefics_items(prompt: list[Chunk], images: list[Any]) -> list[Any]:
    """Idefics (v1): the processor's item list; ``images`` are the prompt's images in order (PIL)."""
    items: list[Any] = [instruction_of(prompt)] if instruction_of(prompt) else []
    pictures = iter(images)
    for chunk, text in zip(prompt, chunk_texts(prompt), strict=True):
        items.extend(next(pictures) for _ in chunk.images)
        items.append(text)
    return items


def image_text(prompt: list[Chunk]) -> str:
    """Idefics2/3's input text (and every family's rendering): ``<image>`` where each image goes."""
    return instruction_of(prompt) + "".join(IMAGE * len(c.images) + text for c, text in zip(prompt, chunk_texts(prompt),
                                                                                        strict=True))


def stop_ids(tokenizer) -> list[int]:
    """The end-of-sequence id, then every id whose own text (``decode([id])``) holds a newline."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    eos = tokenizer.eos_token_id
    return [eos] + [i for i, t in enumerate(texts) if "\n" in t and i != eos]


def answer_text(tokenizer, new_ids: list[int]) -> str:
    """The new ids decoded without special tokens (the tokenizer's own space clean-up), cut before the first
    newline, not stripped."""
    return tokenizer.decode(new_ids, skip_special_tokens=True).split("\n", 1)[0]
