"""Interleaved image-text training sequences built from the toy TRAIN splits with the project's prompts.

Each sequence is exactly what evaluation feeds the model, plus the query's answer and
``<|endofchunk|>``: a task's prompt builder output for 0-4 shots (0 shots = two text-only
demonstrations, as the harness evaluates), rendered as the bundled Flamingo renders it. A quarter of
the few-shot sequences take random demonstrations, three quarters the most similar images (most
similar last, as RICES orders them). Similarity here is on downscaled pixels: cheap, and close to what
a CLIP encoder sees in the toy world.

Why the model learns to read its demonstrations: each sequence calls the colours by words drawn for
it (one of ``language.SYNONYMS`` per colour), whatever its data set's own words (``datasets.NAMES``).
A query's image shows its colour but not what this sequence calls it, so the word comes from the
demonstrations: random ones name some of the colours, similar ones (as RICES picks) usually the
query's own, two text-only ones (0 shots) fewer than four (4 shots). This is the toy's stand-in for
web-scale pretraining: the model meets every vocabulary and no benchmark's in particular, so it must
take a benchmark's words from its demonstrations. Copying is what a small model learns last: in 2000
steps it appeared only with many similar-image sequences (whose demonstrations all name the query's
colour) and colour words weighted up in the loss (``WORD_WEIGHT``); at half similar sequences, or
without the weight, the model guessed among the synonyms instead. Picking the query's colour out of
demonstrations of mixed colours (what makes 4 random shots beat 0) came with the small Perceiver and
cross-attention of ``presets.TOY_SIZES`` and the 6000 steps they fit in the budget.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from flamingo_eval.data.sample import Sample
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.models.flamingo.tokens import END_OF_CHUNK
from flamingo_eval.prompt_builder import build_prompt, demo_answer, effective_shots
from flamingo_eval.task import TaskSpec
from flamingo_eval.toy.language import SYNONYMS, rename

ANSWER_WEIGHT = 4.0  # the query's answer (what evaluation scores) counts this much more than other text
NEIGHBOURS = 6  # similar-image demonstrations are drawn from this many nearest neighbours, as RICES picks
SHOT_CHOICES = (0, 0, 1, 2, 3, 4, 4, 4)  # a quarter 0-shot; 4 shots (what evaluation reports) most often
WORD_WEIGHT = 4.0  # colour words, which only the context can decide, count this much more again
P_SIMILAR = 0.75  # share of few-shot sequences whose demonstrations are the query's nearest images


@dataclass
class TaskPool:
    """One task's training split with its images preprocessed once and its nearest neighbours."""

    task: TaskSpec
    samples: list[Sample]
    pixels: torch.Tensor  # (N, 3, H, W), transformed
    neighbours: list[list[int]]  # per sample, pool indices by decreasing similarity (itself excluded)


def load_pool(task: TaskSpec, data_root: str, transform) -> TaskPool:
    """Read the task's demonstration split through the real reader, preprocess its images and find
    each image's nearest neighbours."""
    from flamingo_eval.data import load_split

    samples = list(load_split(task, "demo", data_root))
    images: list[Image.Image] = [s.image.load() for s in samples]
    pixels = torch.stack([transform(im) for im in images])
    feats = torch.nn.functional.adaptive_avg_pool2d(pixels, 8).flatten(1)
    feats = torch.nn.functional.normalize(feats - feats.mean(0), dim=1)
    sim = feats @ feats.T
    keys = [s.image.key for s in samples]
    same = torch.tensor([[a == b for b in keys] for a in keys]) if len(set(keys)) < len(keys) else torch.eye(len(keys))
    sim = sim.masked_fill(same.bool(), -2.0)
    order = sim.topk(min(NEIGHBOURS, len(samples) - 1), dim=1).indices
    return TaskPool(task, samples, pixels, order.tolist())


def target(task: TaskSpec, sample: Sample, rng: random.Random) -> str:
    """The query's answer to learn: any reference caption, the VQA majority answer, or the label's option."""
    if task.kind == "caption":
        return rng.choice(sample.answers).strip()
    if task.kind == "vqa":
        return Counter(sample.answers).most_common(1)[0][0]
    return demo_answer(task, sample)


@dataclass
class Example:
    """One training sequence: its text, where the query's answer starts, and each image's (task, pool index)."""

    text: str
    answer_start: int  # character offset of the query's answer in ``text``
    images: list[tuple[int, int]]


def make_example(pools: Sequence[TaskPool], rng: random.Random) -> Example:
    """A random task, query, shot count, demonstration choice (random or similar images) and vocabulary."""
    t = rng.randrange(len(pools))
    pool = pools[t]
    q = rng.randrange(len(pool.samples))
    shots = rng.choice(SHOT_CHOICES)
    k = effective_shots(shots)
    if shots == 0 or rng.random() >= P_SIMILAR:
        picked = rng.sample([i for i in range(len(pool.samples)) if i != q], k)
    else:
        near = sorted(rng.sample(range(len(pool.neighbours[q])), k))  # keep similarity order
        picked = [pool.neighbours[q][j] for j in reversed(near)]  # most similar last
    prompt = build_prompt(pool.task, [pool.samples[i] for i in picked], pool.samples[q], demo_images=shots > 0)
    images = [(t, i) for i in picked] if shots > 0 else []
    names = {colour: rng.choice(words) for colour, words in SYNONYMS.items()}
    prefix = rename(render(prompt), names)
    answer = rename(target(pool.task, pool.samples[q], rng), names)
    return Example(prefix + answer + END_OF_CHUNK, len(prefix), images + [(t, q)])


@dataclass
class Batch:
    pixels: torch.Tensor  # distinct images of the batch
    media_index: torch.Tensor  # (B, T_img) into pixels, -1 for none
    input_ids: torch.Tensor  # (B, L), right-padded
    attention_mask: torch.Tensor
    labels: torch.Tensor  # (B, L), -100 where no loss
    weights: torch.Tensor  # (B, L) loss weight per label: 0 where none, more on the answer and colour words


def collate(examples: Sequence[Example], pools: Sequence[TaskPool], tokenizer, media_token_id: int) -> Batch:
    """Tokenise and pad; the loss covers the text after each row's first image, as OpenFlamingo trains."""
    distinct: dict[tuple[int, int], int] = {}
    for ex in examples:
        for image in ex.images:
            distinct.setdefault(image, len(distinct))
    pixels = torch.stack([pools[t].pixels[i] for t, i in distinct])
    t_max = max(len(ex.images) for ex in examples)
    media_index = torch.full((len(examples), t_max), -1, dtype=torch.long)
    for b, ex in enumerate(examples):
        media_index[b, : len(ex.images)] = torch.tensor([distinct[image] for image in ex.images])
    rows = [tokenizer(ex.text)["input_ids"] for ex in examples]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = 1
    is_media = ids == media_token_id
    after_first_image = (is_media.long().cumsum(1) > 0) & ~is_media
    in_loss = after_first_image & mask.bool()
    labels = ids.masked_fill(~in_loss, -100)
    weights = in_loss.float()
    weights[torch.isin(ids, _word_ids(tokenizer))] *= WORD_WEIGHT
    for b, ex in enumerate(examples):  # word-level tokens: the prefix tokenises alone as inside the text
        start = len(tokenizer(ex.text[: ex.answer_start])["input_ids"])
        weights[b, start : len(rows[b])] *= ANSWER_WEIGHT
    return Batch(pixels, media_index, ids, mask, labels, weights)


def _word_ids(tokenizer) -> torch.Tensor:
    """Token ids of every colour word, with and without its leading space."""
    words = [w for ws in SYNONYMS.values() for w in ws]
    ids = tokenizer.convert_tokens_to_ids([*words, *(" " + w for w in words)])
    return torch.tensor([i for i in ids if i != tokenizer.unk_token_id])
