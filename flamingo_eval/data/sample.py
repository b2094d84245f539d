"""The typed sample every reader yields and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass

from flamingo_eval.prompt import Image


@dataclass(frozen=True)
class Sample:
    """One item of a split.

    ``id`` is stable across runs and unique within the split (question_id, cocoid, Flickr file stem,
    meme id, as a string). ``answers``: the reference captions (Karpathy sentences) or the ten VQA answers;
    demonstrations use the first. ``label``: the class index (HatefulMemes: 0 = not hateful, 1 = hateful).
    ``more_images``: images shown after ``image`` (VL-ICL's interleaved items show two).
    """

    id: str
    image: Image
    question: str = ""
    answers: tuple[str, ...] = ()
    text: str = ""
    label: int | None = None
    more_images: tuple[Image, ...] = ()
