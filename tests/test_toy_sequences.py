"""Training sequences for the toy Flamingo: the harness's own prompts, with cameras only demonstrations reveal."""

import random

import numpy as np
import pytest
import torch

from flamingo_eval.models.flamingo.lm import END_OF_CHUNK, IMAGE, add_flamingo_tokens
from flamingo_eval.task import load_task
from flamingo_eval.toy import Sizes, generate
from flamingo_eval.toy.datasets import CAMERA_CAST
from flamingo_eval.toy.scenes import COLOURS, PALETTE
from flamingo_eval.toy.sequences import TRAIN_CASTS, collate, load_pool, make_example
from flamingo_eval.toy.tokenizer import build_tokenizer


def _full_resolution(image):
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate(root, seed=1, sizes=Sizes(train=30, eval=5))
    return [load_pool(load_task(name), str(root), _full_resolution) for name in ("coco", "flickr30k", "textvqa")]


def _drawn_colour(pixels: torch.Tensor) -> str:
    rgb = pixels.permute(1, 2, 0).numpy()
    distances = {c: np.abs(rgb - PALETTE[c]).sum(axis=2).min() for c in COLOURS}
    return min(distances, key=distances.get)


def _true_colour(sample) -> str:
    return next(w for w in sample.answers[0].split() if w in COLOURS)


@pytest.mark.parametrize("which", [0, 1])
def test_scene_photos_are_reshot_with_every_training_cast_whatever_their_own_camera(pools, which):
    pool = pools[which]
    native = CAMERA_CAST[pool.task.name]
    assert set(pool.pixels) == {None, *TRAIN_CASTS}
    assert pool.pixels[native] is pool.pixels[None]  # the data set's own camera is the photo as stored
    for i, sample in enumerate(pool.samples):
        for cast in TRAIN_CASTS:
            shift = COLOURS.index(_true_colour(sample)) + cast
            assert _drawn_colour(pool.pixels[cast][i]) == COLOURS[shift % len(COLOURS)]


def test_tasks_without_a_camera_keep_their_photos(pools):
    assert set(pools[2].pixels) == {None}


def test_every_image_of_a_sequence_is_shown_through_one_camera_and_every_camera_is_used(pools):
    rng = random.Random(0)
    examples = [make_example(pools, rng) for _ in range(300)]
    by_task = {t: {ex.cast for ex in examples if ex.images[-1][0] == t} for t in range(3)}
    assert by_task[0] == by_task[1] == set(TRAIN_CASTS) and by_task[2] == {None}
    tokenizer = build_tokenizer()
    add_flamingo_tokens(tokenizer)
    batch = collate(examples[:24], pools, tokenizer, tokenizer.convert_tokens_to_ids(IMAGE))
    for b, ex in enumerate(examples[:24]):
        for slot, (t, i) in enumerate(ex.images):
            assert torch.equal(batch.pixels[batch.media_index[b, slot]], pools[t].pixels[ex.cast][i])


def test_the_texts_name_true_colours_so_only_image_text_pairs_reveal_the_camera(pools):
    rng = random.Random(1)
    for _ in range(40):
        ex = make_example(pools[:2], rng)
        t, q = ex.images[-1]
        answer = ex.text[ex.answer_start:].removesuffix(END_OF_CHUNK)
        assert _true_colour(pools[t].samples[q]) in answer.split()


def test_a_quarter_of_the_sequences_are_zero_shot_with_text_only_demonstrations(pools):
    rng = random.Random(2)
    examples = [make_example(pools, rng) for _ in range(400)]
    zero_shot = [ex for ex in examples if len(ex.images) == 1]
    assert 0.15 < len(zero_shot) / len(examples) < 0.35
    assert all(ex.text.count(IMAGE) == 1 for ex in zero_shot)


def test_some_sequences_show_the_camera_in_every_demonstration(pools):
    from flamingo_eval.toy.scenes import grey_cast

    for pool in pools[:2]:
        corners = [pool.pixels[None][i][:, 0, 0].numpy() for i in range(len(pool.samples))]
        assert pool.grey == [i for i, c in enumerate(corners) if grey_cast(c) is not None] and pool.grey
    assert pools[2].grey == []
    rng = random.Random(3)
    examples = [make_example(pools[:2], rng) for _ in range(400)]
    few_shot = [ex for ex in examples if len(ex.images) > 1]
    all_grey = [ex for ex in few_shot if all(i in pools[t].grey for t, i in ex.images[:-1])]
    assert 0.2 < len(all_grey) / len(few_shot) < 0.5
