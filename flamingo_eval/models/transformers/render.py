"""The protocol's two prompt formats (README, "The transformers family"): the chunks -> the model's input text.

- ``chat``: each demonstration a user turn (its images, then its text without the answer) and an assistant
  turn (the answer); the query the last user turn; the processor's own chat template with the generation
  prompt. The prompt's separator is not used. A template that reads today's date gets ``DATE`` instead.
- ``raw``: chunk by chunk, one image placeholder per image, the chunk's text, and the separator after each
  demonstration. The placeholder is the processor's ``image_token``, wrapped in the start/end markers the
  model was trained with where the processor does not add them (Qwen2/2.5/3-VL).
"""

from __future__ import annotations

from typing import Any

from flamingo_eval.errors import ConfigError
from flamingo_eval.prompt import Chunk, separator_of

DATE = "26 Jul 2024"  # what Llama 3.x templates print when no date is given: results never depend on the day
QWEN_MARKERS = ("<|vision_start|>", "<|vision_end|>")
MARKED = {"qwen2_vl": QWEN_MARKERS, "qwen2_5_vl": QWEN_MARKERS, "qwen3_vl": QWEN_MARKERS}


def chat_messages(prompt: list[Chunk]) -> list[dict[str, Any]]:
    """The chunks as chat messages; a demonstration without an answer cannot become an assistant turn."""
    messages: list[dict[str, Any]] = []
    for i, chunk in enumerate(prompt):
        query = i == len(prompt) - 1
        if not query and chunk.answer is None:
            raise ConfigError("the chat prompt format needs each demonstration's answer, and this task's template "
                              "does not end with {answer}; use prompt_format: raw")
        content = [{"type": "image"} for _ in chunk.images] + [{"type": "text", "text": chunk.question()}]
        messages.append({"role": "user", "content": content})
        if not query:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": chunk.answer}]})
    return messages


def reads_date(processor) -> bool:
    """Whether the chat template prints a date (``date_string``, else today's via ``strftime_now``)."""
    template = getattr(processor, "chat_template", None) or ""
    text = template if isinstance(template, str) else " ".join(map(str, template.values()))
    return "date_string" in text or "strftime_now" in text


def chat_text(processor, prompt: list[Chunk]) -> str:
    fixed = {"date_string": DATE} if reads_date(processor) else {}  # other templates would warn about the key
    return processor.apply_chat_template(chat_messages(prompt), add_generation_prompt=True, tokenize=False, **fixed)


def placeholder(processor, model_type: str) -> str:
    """What stands for one image in raw text."""
    token = getattr(processor, "image_token", None)
    if not token:
        raise ConfigError(f"the {type(processor).__name__} has no image_token, so the raw prompt format cannot "
                          "place images")
    start, end = MARKED.get(model_type, ("", ""))
    return start + token + end


def raw_text(prompt: list[Chunk], image: str) -> str:
    sep = separator_of(prompt)
    return "".join(image * len(c.images) + c.text + (sep if i < len(prompt) - 1 else "") for i, c in enumerate(prompt))


def prompt_text(processor, model_type: str, prompt_format: str, prompt: list[Chunk]) -> str:
    """The model's input text for one prompt (also what the harness logs as its rendering)."""
    if prompt_format == "chat":
        return chat_text(processor, prompt)
    return raw_text(prompt, placeholder(processor, model_type))
