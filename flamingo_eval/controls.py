"""Demonstration controls: variants of a prompt that break one thing the model might learn from.

A control rewrites the prompt the builder made from the demonstrations the plain run draws (same seed, same
items, same order), so a control run differs from the plain run by the control alone:

- ``demo_images="none"``: the demonstrations keep their text and lose their images;
- ``demo_images="shuffle"``: the demonstrations' images are permuted among them, no image left with its own text;
- ``demo_answers="shuffle"``: the demonstrations' answers are permuted among them (labels broken, format kept);
- ``order="similar-first"``: the demonstrations in reverse, so RICES's most similar comes first, not last.

Shuffles are derangements drawn from a generator seeded by (seed, item id, what is shuffled): a pure function
of those, whatever the batch or process. Among derangements, one that also gives every demonstration a
different image key (answer text) than its own is preferred; where none exists (every demonstration shows the
same image, or all answers are equal) the positional derangement stands, and an all-equal answer shuffle leaves
the prompt as it was. A shuffle needs two demonstrations: one demonstration is refused up front.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from flamingo_eval.errors import ConfigError
from flamingo_eval.prompt import Chunk, Prompt, separator_of
from flamingo_eval.task import TaskSpec

DEMO_IMAGES = ("keep", "none", "shuffle")
DEMO_ANSWERS = ("keep", "shuffle")
ORDERS = ("selected", "similar-first")
_TRIES = 64  # derangements drawn while looking for one that moves every image key / answer text


@dataclass(frozen=True)
class Control:
    """What a run changes about its prompts; the default changes nothing (the plain run)."""

    demo_images: str = "keep"
    demo_answers: str = "keep"
    order: str = "selected"

    def __post_init__(self):
        for name, value, allowed in (("demo_images", self.demo_images, DEMO_IMAGES),
                                     ("demo_answers", self.demo_answers, DEMO_ANSWERS),
                                     ("order", self.order, ORDERS)):
            if value not in allowed:
                raise ConfigError(f"{name.replace('_', '-')} must be one of {', '.join(allowed)}, not {value!r}")

    @property
    def plain(self) -> bool:
        return self == Control()

    def suffix(self) -> str:
        """What the control adds to the selection's name (``+demo-images-none``...); empty for the plain run."""
        parts = []
        if self.demo_images != "keep":
            parts.append(f"demo-images-{self.demo_images}")
        if self.demo_answers != "keep":
            parts.append(f"demo-answers-{self.demo_answers}")
        if self.order != "selected":
            parts.append(f"order-{self.order}")
        return "".join(f"+{p}" for p in parts)

    def record(self) -> dict[str, str]:
        return {"demo_images": self.demo_images, "demo_answers": self.demo_answers, "order": self.order}

    def check(self, selection: str, shots: Sequence[int], tasks: Sequence[TaskSpec] = ()) -> None:
        """Refuse what the control cannot mean for this run, before any work starts."""
        if self.demo_answers == "shuffle":
            for task in tasks:
                if not task.prompt.demo.endswith("{answer}"):
                    raise ConfigError(f"--demo-answers shuffle: task {task.name}'s demonstration template "
                                      f"{task.prompt.demo!r} does not end with its answer")
        if self.order == "similar-first" and selection != "rices":
            raise ConfigError("--order similar-first needs --rices: random demonstrations have no similarity order")
        if "shuffle" in (self.demo_images, self.demo_answers) and 1 in shots:
            raise ConfigError("a shuffle control needs at least 2 demonstrations per prompt; 1 shot has one")

    def apply(self, prompt: Sequence[Chunk], seed: int, item_id: str) -> Prompt:
        """The controlled prompt: its demonstrations (all chunks but the last) rewritten, the query kept."""
        demos, query = list(prompt[:-1]), prompt[-1]
        if self.order == "similar-first":
            demos = demos[::-1]
        if self.demo_images == "none":
            demos = [replace(c, image=None, more_images=()) for c in demos]
        elif self.demo_images == "shuffle" and any(c.images for c in demos):
            perm = derangement(len(demos), _rng(seed, item_id, "images"), [_image_keys(c) for c in demos])
            demos = [_with_images(c, demos[j].images) for c, j in zip(demos, perm, strict=True)]
        if self.demo_answers == "shuffle":
            if any(c.answer is None for c in demos):
                raise ConfigError("--demo-answers shuffle needs a task whose demonstration template ends with "
                                  "{answer}")
            perm = derangement(len(demos), _rng(seed, item_id, "answers"), [c.answer for c in demos])
            demos = [_with_answer(c, demos[j].answer) for c, j in zip(demos, perm, strict=True)]
        return Prompt([*demos, query], separator=separator_of(prompt))


def selection_record(selection: dict[str, Any], control: Control) -> dict[str, Any]:
    """The selection a control run records: the variant's name (``random+demo-answers-shuffle``), the plain
    selection's name in ``base``, and the control; the plain run's record unchanged."""
    if control.plain:
        return selection
    return {**selection, "selection": selection["selection"] + control.suffix(), "base": selection["selection"],
            "control": control.record()}


def derangement(n: int, rng: random.Random, labels: Sequence[Any] | None = None) -> list[int]:
    """A permutation p of range(n) with p[i] != i (position i takes what position p[i] had).

    With ``labels``, one with labels[p[i]] != labels[i] for every i is preferred when one is found.
    """
    if n < 2:
        raise ConfigError(f"cannot shuffle {n} demonstration(s): a shuffle needs at least 2")
    fallback = None
    for _ in range(_TRIES):
        p = _random_derangement(n, rng)
        if labels is None or all(labels[p[i]] != labels[i] for i in range(n)):
            return p
        fallback = fallback or p
    return fallback


def _random_derangement(n: int, rng: random.Random) -> list[int]:
    while True:  # rejection: a random permutation is a derangement with probability ~1/e
        p = list(range(n))
        rng.shuffle(p)
        if all(p[i] != i for i in range(n)):
            return p


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\0".join(str(p) for p in ("control", *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _image_keys(chunk: Chunk) -> tuple[str, ...]:
    return tuple(im.key for im in chunk.images)


def _with_images(chunk: Chunk, images: tuple) -> Chunk:
    return replace(chunk, image=images[0] if images else None, more_images=tuple(images[1:]))


def _with_answer(chunk: Chunk, answer: str) -> Chunk:
    return replace(chunk, text=chunk.question() + answer, answer=answer)


def parse(demo_images: str | None, demo_answers: str | None, order: str | None) -> Control:
    return Control(demo_images or "keep", demo_answers or "keep", order or "selected")


def standard_controls(selection: str) -> list[Control]:
    """The plain run and every control that applies to a selection (``flamingo-eval controls``)."""
    out = [Control(), Control(demo_images="none"), Control(demo_images="shuffle"), Control(demo_answers="shuffle")]
    if selection == "rices":
        out.append(Control(order="similar-first"))
    return out
