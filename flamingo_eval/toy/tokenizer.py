"""A word-level tokenizer for the toy world: every toy word and prompt word is one token.

Words keep their leading space as part of the token (``" two"`` differs from ``"two"``) and the
decoder simply concatenates, so decoding the ids of any toy prompt gives back the exact text; an
answer glued to its prompt ("answer:no") tokenises the same as the prompt and the answer apart,
which ``rank`` relies on. Colour words are the exception: the space before one is a token of its own,
so "crimson" is one token in a caption, a question and a VQA answer glued to "answer:", and a word the
model learns to copy from captions is the word a VQA answer needs. The LM directory's tokenizer has only the base vocabulary; the Flamingo
tokens (``<|endofchunk|>``, ``<image>``, ``<PAD>``) are added at load time as OpenFlamingo adds them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

from flamingo_eval.toy import language as lang
from flamingo_eval.toy.scenes import BACKGROUNDS, COLOURS, SHAPES, sample_scene

EOS = "<|endoftext|>"
UNK = "<unk>"
# A word with its optional leading space (but a colour word without it: the space before one is a piece of
# its own), one punctuation mark with its optional leading space, or one whitespace character (newline
# separators, stray spaces).
_COLOUR_WORDS = "|".join(sorted({w for ws in lang.SYNONYMS.values() for w in ws}, key=lambda w: (-len(w), w)))
PIECE = rf" ?(?!(?:{_COLOUR_WORDS})\b)[A-Za-z0-9]+|[A-Za-z0-9]+| ?[^A-Za-z0-9\s]|\s"
_PIECE_RE = re.compile(PIECE)


def pieces(text: str) -> list[str]:
    """The tokens of ``text`` (no special tokens), as the tokenizer splits it."""
    return _PIECE_RE.findall(text)


def toy_texts() -> Iterator[str]:
    """Every kind of text the toy data and the shipped prompts can hold, for the vocabulary.

    Enumerates all scenes with several random streams so each template and word choice occurs; it
    reads the task YAMLs for the prompt words, so a changed template extends the vocabulary.
    """
    from flamingo_eval.task import available_tasks, load_task

    for name in available_tasks():
        p = load_task(name).prompt
        for template in (p.demo, p.query):
            yield template.replace("{question}", "").replace("{answer}", "").replace("{text}", "")
        yield p.separator
    scenes = [sample_scene(random.Random(0), s, c, n, b) for s in SHAPES for c in COLOURS for n in range(1, 5)
              for b in BACKGROUNDS]
    namings = [dict(zip(lang.SYNONYMS, column, strict=True)) for column in zip(*lang.SYNONYMS.values(), strict=True)]
    for seed in range(8):
        rng = random.Random(seed)
        for scene in scenes:
            texts = [*lang.captions(scene, rng)]
            texts += [qa.question for qa in (lang.vqav2_question(scene, rng), lang.okvqa_question(scene, rng),
                                             lang.vizwiz_question(scene, rng.random() < 0.5, rng))]
            yield from (lang.rename(text, names) for text in texts for names in namings)
    for word, colour in zip(lang.SIGN_WORDS, COLOURS * 4, strict=False):
        for seed in range(8):
            yield lang.textvqa_question(word, colour, random.Random(seed)).question
    for subject in lang.MEME_SUBJECTS:
        for predicate in lang.MEME_INSULTS + lang.MEME_NICE:
            yield f"{subject} {predicate}"
    yield from lang.answer_vocabulary()


def vocabulary(texts: Iterable[str]) -> list[str]:
    """Sorted pieces of ``texts``, each word both with and without its leading space."""
    words: set[str] = set()
    for text in texts:
        for piece in pieces(text):
            words.add(piece)
            if piece.strip():
                words.update({piece.lstrip(" "), " " + piece.lstrip(" ")})
    return sorted(words)


def build_tokenizer(texts: Iterable[str] | None = None):
    """A ``PreTrainedTokenizerFast`` over the toy vocabulary (``toy_texts()`` unless given)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = [EOS, UNK, *vocabulary(toy_texts() if texts is None else texts)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([EOS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=UNK,
                                   clean_up_tokenization_spaces=False)
