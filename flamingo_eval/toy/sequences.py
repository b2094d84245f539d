"""Interleaved image-text training sequences built from the toy TRAIN splits with the project's prompts.

Each sequence is exactly what evaluation feeds the model, plus the query's answer and
``<|endofchunk|>``: a task's prompt builder output for 0-4 shots (0 shots = two text-only
demonstrations, as the harness evaluates), rendered as the bundled Flamingo renders it. Half the
few-shot sequences take random demonstrations, half the most similar images (most similar last, as
RICES orders them). Similarity here is on downscaled pixels: cheap, and close to what a CLIP encoder
sees in the toy world.

Why the model learns to read its demonstrations: every scene photo in a sequence is re-shot with a
camera cast drawn for that sequence (``TRAIN_CASTS``), whatever the data set's own camera, while the
texts keep naming true colours. So no image, and no data set, tells which colour word is right; only
the demonstrations' image-text pairs do. This is the toy's stand-in for web-scale pretraining: the
model meets many cameras and no benchmark's camera in particular, and must calibrate in context. A grey
background shows its camera's tint, so part of the sequences take only grey demonstrations: there the
camera is in every demonstration, the easiest case of reading it from context.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from flamingo_eval.data.sample import Sample
from flamingo_eval.models.flamingo.lm import END_OF_CHUNK
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.prompt_builder import build_prompt, demo_answer, effective_shots
from flamingo_eval.task import TaskSpec
from flamingo_eval.toy.datasets import CAMERA_CAST
from flamingo_eval.toy.scenes import grey_cast, recast

ANSWER_WEIGHT = 4.0  # the query's answer (what evaluation scores) counts this much more than other text
NEIGHBOURS = 6  # similar-image demonstrations are drawn from this many nearest neighbours, as RICES picks
SHOT_CHOICES = (0, 0, 1, 2, 3, 4, 4, 4)  # a quarter 0-shot; 4 shots (what evaluation reports) most often
TRAIN_CASTS = (0, 1)  # the camera casts sequences are re-shot with, equally often
P_SIMILAR = 0.5  # share of few-shot sequences whose demonstrations are the query's nearest images
P_GREY_DEMOS = 0.3  # share of few-shot sequences, of tasks with a camera, whose demonstrations are all grey photos


@dataclass
class TaskPool:
    """One task's training split with its images preprocessed once and its nearest neighbours."""

    task: TaskSpec
    samples: list[Sample]
    pixels: dict[int | None, torch.Tensor]  # per camera cast (None: as on disk), (N, 3, H, W) transformed
    neighbours: list[list[int]]  # per sample, pool indices by decreasing similarity (itself excluded)
    grey: list[int]  # photos on a grey background, which show their camera's tint (tasks with a camera)


def load_pool(task: TaskSpec, data_root: str, transform) -> TaskPool:
    """Read the task's demonstration split through the real reader, preprocess its images (re-shot
    with every training cast where the task has a camera) and find each image's nearest neighbours."""
    from flamingo_eval.data import load_split

    samples = list(load_split(task, "demo", data_root))
    images: list[Image.Image] = [s.image.load() for s in samples]
    pixels: dict[int | None, torch.Tensor] = {None: torch.stack([transform(im) for im in images])}
    native = CAMERA_CAST.get(task.name)
    if native is not None:
        for cast in TRAIN_CASTS:
            pixels[cast] = pixels[None] if cast == native else \
                torch.stack([transform(recast(im, cast - native)) for im in images])
    feats = torch.nn.functional.adaptive_avg_pool2d(pixels[None], 8).flatten(1)
    feats = torch.nn.functional.normalize(feats - feats.mean(0), dim=1)
    sim = feats @ feats.T
    keys = [s.image.key for s in samples]
    same = torch.tensor([[a == b for b in keys] for a in keys]) if len(set(keys)) < len(keys) else torch.eye(len(keys))
    sim = sim.masked_fill(same.bool(), -2.0)
    order = sim.topk(min(NEIGHBOURS, len(samples) - 1), dim=1).indices
    grey = [i for i, im in enumerate(images) if native is not None and grey_cast(im.convert("RGB").getpixel((0, 0)))
            is not None]
    return TaskPool(task, samples, pixels, order.tolist(), grey)


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
    cast: int | None = None  # the camera cast every image is shown with (None: as on disk)


def make_example(pools: Sequence[TaskPool], rng: random.Random) -> Example:
    """A random task, query, shot count, demonstration choice (random or similar images) and camera."""
    t = rng.randrange(len(pools))
    pool = pools[t]
    q = rng.randrange(len(pool.samples))
    shots = rng.choice(SHOT_CHOICES)
    k = effective_shots(shots)
    grey = [i for i in pool.grey if i != q]
    if shots > 0 and len(grey) >= k and rng.random() < P_GREY_DEMOS:  # every demonstration shows the camera
        picked = rng.sample(grey, k)
    elif shots == 0 or rng.random() >= P_SIMILAR:
        picked = rng.sample([i for i in range(len(pool.samples)) if i != q], k)
    else:
        near = sorted(rng.sample(range(len(pool.neighbours[q])), k))  # keep similarity order
        picked = [pool.neighbours[q][j] for j in reversed(near)]  # most similar last
    prompt = build_prompt(pool.task, [pool.samples[i] for i in picked], pool.samples[q], demo_images=shots > 0)
    prefix = render(prompt)
    images = [(t, i) for i in picked] if shots > 0 else []
    cast = rng.choice(TRAIN_CASTS) if len(pool.pixels) > 1 else None
    return Example(prefix + target(pool.task, pool.samples[q], rng) + END_OF_CHUNK, len(prefix), images + [(t, q)],
                   cast)


@dataclass
class Batch:
    pixels: torch.Tensor  # distinct images of the batch
    media_index: torch.Tensor  # (B, T_img) into pixels, -1 for none
    input_ids: torch.Tensor  # (B, L), right-padded
    attention_mask: torch.Tensor
    labels: torch.Tensor  # (B, L), -100 where no loss
    weights: torch.Tensor  # (B, L) loss weight per label: 0 where none, ANSWER_WEIGHT on the query's answer


def collate(examples: Sequence[Example], pools: Sequence[TaskPool], tokenizer, media_token_id: int) -> Batch:
    """Tokenise and pad; the loss covers the text after each row's first image, as OpenFlamingo trains."""
    distinct: dict[tuple[int, int, int | None], int] = {}
    for ex in examples:
        for t, i in ex.images:
            distinct.setdefault((t, i, ex.cast), len(distinct))
    pixels = torch.stack([pools[t].pixels[cast][i] for t, i, cast in distinct])
    t_max = max(len(ex.images) for ex in examples)
    media_index = torch.full((len(examples), t_max), -1, dtype=torch.long)
    for b, ex in enumerate(examples):
        media_index[b, : len(ex.images)] = torch.tensor([distinct[(t, i, ex.cast)] for t, i in ex.images])
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
    for b, ex in enumerate(examples):  # word-level tokens: the prefix tokenises alone as inside the text
        start = len(tokenizer(ex.text[: ex.answer_start])["input_ids"])
        weights[b, start : len(rows[b])] *= ANSWER_WEIGHT
    return Batch(pixels, media_index, ids, mask, labels, weights)
