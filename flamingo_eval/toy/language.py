"""The toy tasks' text: captions, questions with their ten annotator answers, sign words and meme texts.

Every string comes from a closed vocabulary (``vocabulary()``), small enough for a word-level toy
tokenizer. Which question an image gets depends on its background, so images that look alike (the
neighbours RICES retrieves) are asked the same question and usually share the answer.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from flamingo_eval.toy.scenes import COLOURS, SHAPES, Scene

NUMBERS = ("one", "two", "three", "four")
# What a colour can be called. Each data set's annotators use one word per colour (``datasets.NAMES``),
# and no image tells which: only demonstrations show a data set's words, as real benchmarks each have
# their own vocabulary and style. The first word is the generator's own, which ``rename`` replaces.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet", "ruby"),
    "orange": ("orange", "amber", "tangerine", "copper"),
    "yellow": ("yellow", "golden", "lemon", "mustard"),
    "green": ("green", "emerald", "olive", "jade"),
    "blue": ("blue", "navy", "azure", "cobalt"),
    "purple": ("purple", "violet", "lilac", "plum"),
}
NOISE = 0.1  # the chance that one annotator gives a different answer

# OK-VQA-style "outside knowledge": things of a colour, objects of a shape, corners of a shape.
FRUIT = {"red": "apple", "orange": "peach", "yellow": "banana", "green": "lime", "blue": "blueberry",
         "purple": "grape"}
THING = {"circle": "wheel", "square": "window", "triangle": "sail", "diamond": "kite"}
CORNERS = {"circle": "0", "square": "4", "triangle": "3", "diamond": "4"}

# TextVQA-style sign words: each word has its own sign colour and icon, as real shop signs do.
SIGN_WORDS = ("stop", "open", "exit", "cafe", "bank", "taxi", "park", "sale", "hotel", "bus", "gym", "bar",
              "pizza", "shop", "zoo", "inn", "food", "book", "milk", "beer", "golf", "pool", "toys", "wine")

UNANSWERABLE = "unanswerable"

# Meme texts: "<subject> <predicate>"; an insulting predicate is hateful only on a pointy-shape image.
MEME_SUBJECTS = ("these guys", "my neighbors", "people like this", "the new kids", "those folks")
MEME_INSULTS = ("are so stupid", "smell really bad", "ruin everything", "should go away", "are so ugly")
MEME_NICE = ("are so cute", "make me happy", "are the best", "love pizza", "are my friends")
POINTY = ("triangle", "diamond")


def plural(shape: str, count: int) -> str:
    return shape if count == 1 else shape + "s"


_COLOUR_OF = {word: colour for colour, words in SYNONYMS.items() for word in words}
_COLOUR_WORD = re.compile(r"\b(" + "|".join(sorted(_COLOUR_OF, key=len, reverse=True)) + r")\b")


def colour_words(text: str) -> list[str]:
    """The colour words in ``text``, in order (any synonym of any colour)."""
    return _COLOUR_WORD.findall(text)


def colour_of(word: str) -> str:
    """The colour a colour word names."""
    return _COLOUR_OF[word]


def rename(text: str, names: Mapping[str, str]) -> str:
    """``text`` with every colour word (any synonym) replaced by ``names[colour]``."""
    return _COLOUR_WORD.sub(lambda m: names[_COLOUR_OF[m.group(1)]], text)


def captions(scene: Scene, rng: random.Random) -> list[str]:
    """Five reference captions in varied wording and random order (the demo uses the first)."""
    n, c, s, bg = scene.count, scene.colour, plural(scene.shape, scene.count), scene.background
    num = "a" if n == 1 else NUMBERS[n - 1]
    be = "is" if n == 1 else "are"
    sentences = [
        f"{num} {c} {s} on a {bg} background",
        f"a {bg} background with {num} {c} {s}",
        f"there {be} {NUMBERS[n - 1]} {c} {s} on {bg}",
        f"{NUMBERS[n - 1]} {s} that {be} {c}",
        f"an image of {num} {c} {s}",
    ]
    rng.shuffle(sentences)
    return sentences


@dataclass(frozen=True)
class QA:
    """One question with its correct answer, the plausible wrong answers and VQA type labels."""

    question: str
    answer: str
    distractors: tuple[str, ...]
    question_type: str
    answer_type: str


def _others(options: tuple[str, ...], answer: str) -> tuple[str, ...]:
    return tuple(o for o in options if o != answer)


def vqav2_question(scene: Scene, rng: random.Random) -> QA:
    """Colour questions on white, shape questions on gray, counting on black; a quarter are yes/no."""
    s, n = scene.shape, scene.count
    if rng.random() < 0.25:
        asked = s if rng.random() < 0.5 else rng.choice(_others(SHAPES, s))
        answer = "yes" if asked == s else "no"
        return QA(f"is there a {asked} in the picture?", answer, _others(("yes", "no"), answer),
                  "is there a", "yes/no")
    if scene.background == "white":
        verb = "is the" if n == 1 else "are the"
        return QA(f"what color {verb} {plural(s, n)}?", scene.colour, _others(COLOURS, scene.colour),
                  f"what color {verb}", "other")
    if scene.background == "gray":
        what = "object" if n == 1 else "objects"
        verb = "is the" if n == 1 else "are the"
        return QA(f"what shape {verb} {scene.colour} {what}?", s, _others(SHAPES, s), "what shape", "other")
    counts = tuple(str(i) for i in range(1, 5))
    return QA(f"how many {plural(s, 2)} are there?", str(n), _others(counts, str(n)), "how many", "number")


def okvqa_question(scene: Scene, rng: random.Random) -> QA:
    """Knowledge questions: a fruit of the colour (white), an object of the shape (gray), corners (black)."""
    s = scene.shape
    if scene.background == "white":
        a = FRUIT[scene.colour]
        q = rng.choice(("which fruit has the same color as these shapes?", "what fruit is this color?"))
        return QA(q, a, _others(tuple(FRUIT.values()), a), "other", "other")
    if scene.background == "gray":
        a = THING[s]
        q = rng.choice(("what everyday object has this shape?", "what thing is shaped like this?"))
        return QA(q, a, _others(tuple(THING.values()), a), "other", "other")
    a = CORNERS[s]
    q = rng.choice(("how many corners does this shape have?", "how many corners are on each shape?"))
    return QA(q, a, _others(("0", "3", "4"), a), "other", "other")


def textvqa_question(word: str, sign_colour: str, rng: random.Random) -> QA:
    """Mostly "read the sign" questions; one in five asks the sign's colour."""
    if rng.random() < 0.2:
        return QA("what color is the sign?", sign_colour, _others(COLOURS, sign_colour),
                  "none of the above", "other")
    q = rng.choice(("what does the sign say?", "what is written on the sign?", "what word is on the sign?"))
    return QA(q, word, _others(SIGN_WORDS, word), "none of the above", "other")


def vizwiz_question(scene: Scene, answerable: bool, rng: random.Random) -> QA:
    """A blind user's question; on a blank or blurred photo every question is unanswerable."""
    kind = rng.choice(("what", "color", "count"))
    if kind == "what":
        q, a, opts, qtype = rng.choice(("what is this?", "can you tell me what this is?")), scene.shape, SHAPES, "other"
    elif kind == "color":
        q, a, opts, qtype = "what color is this?", scene.colour, COLOURS, "other"
    else:
        q, a, opts, qtype = "how many things are here?", str(scene.count), ("1", "2", "3", "4"), "number"
    if not answerable:
        return QA(q, UNANSWERABLE, ("blurry", "dark"), UNANSWERABLE, UNANSWERABLE)
    return QA(q, a, _others(opts, a) + (UNANSWERABLE,), qtype, qtype)


def annotate(qa: QA, rng: random.Random, n: int = 10, noise: float = NOISE) -> list[str]:
    """Ten annotator answers: mostly the correct one, each wrong with probability ``noise``."""
    return [rng.choice(qa.distractors) if rng.random() < noise else qa.answer for _ in range(n)]


def majority(answers: list[str], preferred: str) -> str:
    """The most common answer (ties go to ``preferred``), as VQA's multiple_choice_answer."""
    counts = Counter(answers)
    best = max(counts.values())
    return preferred if counts.get(preferred) == best else sorted(a for a, c in counts.items() if c == best)[0]


def meme_text(rng: random.Random, insult_rate: float = 0.8) -> tuple[str, bool]:
    """A meme's overlay text and whether it insults its subject."""
    insult = rng.random() < insult_rate
    predicate = rng.choice(MEME_INSULTS if insult else MEME_NICE)
    return f"{rng.choice(MEME_SUBJECTS)} {predicate}", insult


def is_hateful(text: str, shape: str) -> bool:
    """The memes' rule, which needs both modalities: an insulting text over pointy shapes."""
    return any(text.endswith(p) for p in MEME_INSULTS) and shape in POINTY


def answer_vocabulary() -> frozenset[str]:
    """Every answer a toy VQA annotator can give (correct or noisy)."""
    return frozenset((*_COLOUR_OF, *SHAPES, "1", "2", "3", "4", "yes", "no", *FRUIT.values(), *THING.values(),
                      *CORNERS.values(), *SIGN_WORDS, UNANSWERABLE, "blurry", "dark"))
