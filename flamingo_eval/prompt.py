"""The model-agnostic prompt: ordered chunks of (optional image, text); the last chunk is the query.

A model adapter renders chunks in its own format (the bundled Flamingo: ``<image>`` + text, then
``<|endofchunk|>`` and the prompt's separator after every chunk but the last).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flamingo_eval.errors import BadImageError


@dataclass(frozen=True)
class Image:
    """An image with a stable key (e.g. ``coco/train2014/COCO_train2014_000000391895.jpg``).

    Models cache vision features by ``key``, so two images with one key must be the same pixels.
    Holds a path (loaded lazily) or an already-loaded PIL image.
    """

    key: str
    path: str | None = None
    pil: object | None = field(default=None, compare=False, repr=False)

    def load(self):
        """The image as RGB PIL; a missing or undecodable file is a BadImageError naming it."""
        if self.pil is not None:
            return self.pil.convert("RGB")
        if self.path is None:
            raise BadImageError(self.key, "no path and no pixels")
        from PIL import Image as PILImage
        from PIL import UnidentifiedImageError

        try:
            with PILImage.open(self.path) as im:
                return im.convert("RGB")
        except FileNotFoundError:
            raise BadImageError(self.path, "file not found") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise BadImageError(self.path, f"cannot decode ({e.__class__.__name__})") from None


@dataclass(frozen=True)
class Chunk:
    """One demonstration or the query: optional images (``image``, then ``more_images``) and the text after them.

    ``answer`` is the suffix of a demonstration's ``text`` that is its answer (None for the query, or where
    the task's template does not end with its answer): chat-format prompts make it the assistant's turn, and
    the demonstration controls and baselines read it.
    """

    image: Image | None
    text: str
    answer: str | None = None
    more_images: tuple[Image, ...] = ()

    def __post_init__(self):
        if self.answer is not None and not self.text.endswith(self.answer):
            raise ValueError(f"a chunk's answer must end its text: {self.answer!r} does not end {self.text!r}")
        if self.more_images and self.image is None:
            raise ValueError("a chunk with more_images needs its first image in image")

    @property
    def images(self) -> tuple[Image, ...]:
        """Every image of the chunk in order (VL-ICL's interleaved demonstrations have two): renderers read this."""
        return ((self.image,) + self.more_images) if self.image is not None else ()

    def question(self) -> str:
        """The text without its answer (the whole text where the chunk has none)."""
        return self.text[: len(self.text) - len(self.answer)] if self.answer is not None else self.text


class Prompt(list):
    """A list of Chunks plus the separator that follows each demonstration (e.g. a newline) and the
    ``instruction`` text that comes before everything (VL-ICL's task description line; empty elsewhere).

    A plain ``list[Chunk]`` is accepted wherever a Prompt is; its separator and instruction are empty.
    """

    def __init__(self, chunks: Iterable[Chunk] = (), separator: str = "", instruction: str = ""):
        super().__init__(chunks)
        self.separator = separator
        self.instruction = instruction

    def images(self) -> list[Image]:
        return [im for c in self for im in c.images]


def separator_of(prompt: list[Chunk]) -> str:
    return getattr(prompt, "separator", "")


def instruction_of(prompt: list[Chunk]) -> str:
    return getattr(prompt, "instruction", "")


def chunk_records(prompt: list[Chunk]) -> list[dict]:
    """The chunks as samples files record them: image key (or null) and text, plus ``images`` (every key in
    order) only for a chunk with more than one image, and a demonstration's ``answer`` where it has one."""
    out = []
    for c in prompt:
        record = {"image": c.image.key if c.image is not None else None, "text": c.text}
        if c.answer is not None:
            record["answer"] = c.answer
        if c.more_images:
            record["images"] = [im.key for im in c.images]
        out.append(record)
    return out
