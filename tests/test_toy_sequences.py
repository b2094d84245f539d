"""Training sequences for the toy Flamingo: the harness's own prompts, with colour words only demonstrations reveal."""

import random

import numpy as np
import pytest
import torch

from flamingo_eval.models.flamingo.tokens import END_OF_CHUNK, IMAGE, add_flamingo_tokens
from flamingo_eval.task import load_task
from flamingo_eval.toy import Sizes, generate
from flamingo_eval.toy.language import SYNONYMS, colour_of, colour_words
from flamingo_eval.toy.sequences import collate, load_pool, make_example
from flamingo_eval.toy.tokenizer import build_tokenizer


def _full_resolution(image):
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate(root, seed=1, sizes=Sizes(train=30, eval=5))
    return [load_pool(load_task(name), str(root), _full_resolution) for name in ("coco", "flickr30k", "textvqa")]


def test_every_image_of_a_sequence_reaches_the_batch_in_its_slot(pools):
    rng = random.Random(0)
    examples = [make_example(pools, rng) for _ in range(24)]
    tokenizer = build_tokenizer()
    add_flamingo_tokens(tokenizer)
    batch = collate(examples, pools, tokenizer, tokenizer.convert_tokens_to_ids(IMAGE))
    assert len(batch.pixels) == len({image for ex in examples for image in ex.images})  # each image once
    for b, ex in enumerate(examples):
        for slot, (t, i) in enumerate(ex.images):
            assert torch.equal(batch.pixels[batch.media_index[b, slot]], pools[t].pixels[i])
        assert (batch.media_index[b, len(ex.images):] == -1).all()


def test_the_answer_is_the_querys_own_caption_in_the_sequences_words(pools):
    rng = random.Random(1)
    for _ in range(40):
        ex = make_example(pools[:2], rng)
        t, q = ex.images[-1]
        answer = ex.text[ex.answer_start:].removesuffix(END_OF_CHUNK)
        (word,) = colour_words(answer)
        assert colour_of(word) == colour_of(colour_words(pools[t].samples[q].answers[0])[0])


def test_a_quarter_of_the_sequences_are_zero_shot_with_text_only_demonstrations(pools):
    rng = random.Random(2)
    examples = [make_example(pools, rng) for _ in range(400)]
    zero_shot = [ex for ex in examples if len(ex.images) == 1]
    assert 0.15 < len(zero_shot) / len(examples) < 0.35
    assert all(ex.text.count(IMAGE) == 1 for ex in zero_shot)


def test_three_quarters_of_the_few_shot_sequences_take_the_querys_nearest_images_most_similar_last(pools):
    rng = random.Random(5)
    few_shot = [ex for ex in (make_example(pools[:2], rng) for _ in range(400)) if len(ex.images) > 1]
    similar = []
    for ex in few_shot:
        t, q = ex.images[-1]
        demos = [i for _, i in ex.images[:-1]]
        near = pools[t].neighbours[q]
        similar.append(set(demos) <= set(near) and
                       [near.index(i) for i in demos] == sorted((near.index(i) for i in demos), reverse=True))
    assert 0.65 < sum(similar) / len(few_shot) < 0.9


def _named(text: str) -> set[str]:
    return set(colour_words(text))


def test_every_sequence_calls_each_colour_by_one_word_drawn_for_it(pools):
    rng = random.Random(3)
    seen: dict[str, set[str]] = {colour: set() for colour in SYNONYMS}
    for _ in range(400):
        ex = make_example(pools[:2], rng)
        words = _named(ex.text)
        assert len(words) == len({colour_of(w) for w in words})  # one word per colour within a sequence
        for w in words:
            seen[colour_of(w)].add(w)
    assert all(seen[colour] == set(ws) for colour, ws in SYNONYMS.items())  # whatever the data set's own words


def test_the_query_answer_uses_the_sequences_words_as_its_demonstrations_do(pools):
    rng = random.Random(4)
    agree = 0
    for _ in range(200):
        ex = make_example(pools[:1], rng)
        demos, answer = _named(ex.text[: ex.text.rfind("<image>")]), _named(ex.text[ex.answer_start:])
        assert len(answer) == 1
        agree += answer <= demos
    assert 0.3 < agree / 200 < 0.95  # often shown by a demonstration, not always: then it must be guessed


def test_colour_words_weigh_more_in_the_loss_and_the_query_answer_most(pools):
    from flamingo_eval.toy.sequences import ANSWER_WEIGHT, WORD_WEIGHT

    tokenizer = build_tokenizer()
    add_flamingo_tokens(tokenizer)
    rng = random.Random(6)
    examples = [ex for ex in (make_example(pools[:1], rng) for _ in range(20)) if len(ex.images) > 1][:6]
    batch = collate(examples, pools, tokenizer, tokenizer.convert_tokens_to_ids(IMAGE))
    for b, ex in enumerate(examples):
        start = len(tokenizer(ex.text[: ex.answer_start])["input_ids"])
        tokens = tokenizer.convert_ids_to_tokens(batch.input_ids[b].tolist())
        for i, token in enumerate(tokens):
            if batch.labels[b, i] == -100:
                assert batch.weights[b, i] == 0
                continue
            expected = (WORD_WEIGHT if token.strip() in colour_words(token) else 1.0) * (ANSWER_WEIGHT if i >= start else 1.0)
            assert batch.weights[b, i] == expected, (token, i)
