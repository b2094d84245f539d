"""The shipped toy Flamingo (of-toy): its tokenizer, its loading through the preset, and what it has learnt."""

import json
import math
from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.models.flamingo.presets import PRESETS, TOY_DIR
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.models.flamingo.tokens import END_OF_CHUNK, IMAGE, load_tokenizer
from flamingo_eval.prompt_builder import build_prompt, demo_answer
from flamingo_eval.task import load_task
from flamingo_eval.toy import Sizes, generate
from flamingo_eval.toy.datasets import TASKS

TOY = Path(TOY_DIR)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate(root, seed=3, sizes=Sizes(train=24, eval=24))
    return root


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(TOY / "lm"))


@pytest.fixture(scope="module")
def of_toy():
    from flamingo_eval.models import load_model

    return load_model("of-toy")


def _prompts(task_name, root, shots):
    task = load_task(task_name)
    pool = list(load_split(task, "demo", root))
    items = list(load_split(task, "eval", root))
    k = 2 if shots == 0 else shots
    return task, [build_prompt(task, pool[i:i + k], q, demo_images=shots > 0) for i, q in enumerate(items[:6])]


@pytest.mark.parametrize("task_name", TASKS)
def test_the_tokenizer_round_trips_every_prompt_format_without_unknown_words(tokenizer, toy_root, task_name):
    task, prompts = _prompts(task_name, toy_root, shots=2)
    for prompt in prompts:
        text = render(prompt)
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert ids.count(tokenizer.convert_tokens_to_ids(IMAGE)) == 2 + 1
        assert ids.count(tokenizer.convert_tokens_to_ids(END_OF_CHUNK)) == 2
        assert tokenizer.decode(ids) == text


@pytest.mark.parametrize("task_name", TASKS)
def test_an_answer_tokenises_the_same_glued_to_its_prompt_as_alone(tokenizer, toy_root, task_name):
    """rank() scores option tokens appended to the prompt's tokens: that must be how the joined text splits."""
    task, prompts = _prompts(task_name, toy_root, shots=0)
    pool = list(load_split(task, "demo", toy_root))
    for prompt, sample in zip(prompts, pool, strict=False):
        answer = demo_answer(task, sample)
        alone = tokenizer(answer, add_special_tokens=False)["input_ids"]
        prompt_ids = tokenizer(render(prompt))["input_ids"]
        assert tokenizer(render(prompt) + answer)["input_ids"] == prompt_ids + alone
        assert tokenizer.decode(alone) == answer


def test_a_colour_word_is_one_token_wherever_it_stands(tokenizer):
    """A VQA answer glued to "answer:" needs the very token captions and questions show, or copying learnt
    on captions never reaches VQA answers."""
    from flamingo_eval.toy.language import SYNONYMS

    for word in (w for words in SYNONYMS.values() for w in words):
        (token,) = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert token in tokenizer(f"Output:two {word} circles")["input_ids"]
        assert tokenizer(f"Short answer:{word}")["input_ids"][-1] == token


def test_flamingo_tokens_are_added_at_load_time_as_openflamingo_adds_them(tokenizer):
    base = json.loads((TOY / "lm" / "tokenizer.json").read_text())["model"]["vocab"]
    assert END_OF_CHUNK not in base and IMAGE not in base and "<PAD>" not in base
    assert tokenizer.convert_tokens_to_ids([END_OF_CHUNK, IMAGE, "<PAD>"]) == [len(base), len(base) + 1, len(base) + 2]
    assert tokenizer.pad_token == "<PAD>"


def test_of_toy_is_a_preset_listed_with_the_real_ones():
    from flamingo_eval.models import list_models

    assert "of-toy" in [m["name"] for m in list_models()]
    arch = json.loads((TOY / "toy.json").read_text())["arch"]
    assert PRESETS["of-toy"].cross_attn_every_n_layers == arch["cross_attn_every_n_layers"]
    assert PRESETS["of-toy"].sizes.as_dict() == arch["sizes"]  # the Perceiver and cross-attention it was trained with


def test_the_shipped_files_are_the_published_formats_and_small():
    assert (TOY / "lm" / "config.json").is_file() and (TOY / "lm" / "model.safetensors").is_file()
    assert json.loads((TOY / "lm" / "config.json").read_text())["model_type"] == "mpt"
    assert (TOY / "vit" / "open_clip_config.json").is_file()
    assert (TOY / "vit" / "open_clip_model.safetensors").is_file()
    total = sum(p.stat().st_size for p in TOY.rglob("*") if p.is_file())
    assert total < 8 * 2**20


def test_of_toy_loads_through_the_preset_and_generates_and_ranks(of_toy, toy_root):
    task, prompts = _prompts("vqav2", toy_root, shots=2)
    outs = of_toy.generate(prompts[:3], task.generation)
    assert len(outs) == 3 and all(isinstance(o, str) and o.strip() for o in outs)
    ranks = of_toy.rank(prompts[:2], ["no", "yes"])
    assert all(len(r) == 2 and all(math.isfinite(x) and x < 0 for x in r) for r in ranks)
    assert of_toy.describe()["name"] == "of-toy"


# ---- what the toy model has learnt: scored by the real runner on freshly generated toy data -------------

def _score(model, root, out, task, shots, n=16):
    from flamingo_eval.runner import RunConfig, Runner

    config = RunConfig(model="of-toy", tasks=[task], shots=[shots], seeds=[42], num_samples=n, batch_size=8,
                       data_root=str(root), output_dir=str(out), progress=False)
    (result,) = Runner(config, model=model).run()
    return result["mean"]


def _randomised(adapter):
    """The same model with its trained weights replaced by random ones."""
    import copy

    import torch

    clone = copy.deepcopy(adapter)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clone.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.02 if p.ndim >= 2 else 0.1) + (p.ndim < 2) * 1.0)
    return clone


@pytest.mark.parametrize("task", ["coco", "vqav2"])
def test_the_trained_model_scores_far_above_the_same_model_with_random_weights(of_toy, toy_root, tmp_path, task):
    trained = _score(of_toy, toy_root, tmp_path / "trained", task, shots=4)
    random_weights = _score(_randomised(of_toy), toy_root, tmp_path / "random", task, shots=4)
    assert trained > 2 * random_weights + 10


def test_breaking_the_media_location_mask_measurably_lowers_the_scores(of_toy, toy_root, tmp_path, monkeypatch):
    """Each text token must see only its latest image; an off-by-one that shows it the image before must hurt.

    The patch breaks the prompt pass (``text_time`` as fast.py's prefill reads it): the query's prompt reads the
    last demonstration's image.
    Decode steps read the query image's K/V by construction, so captions degrade (their first words come
    from the wrong image) while short VQA answers, decided at the prompt's last position, collapse."""
    from flamingo_eval.models.flamingo import fast

    honest = [_score(of_toy, toy_root, tmp_path / "ok", t, shots=4) for t in ("coco", "vqav2")]
    original = fast.text_time

    def previous_image(media_locations):
        return (original(media_locations) - 1).clamp(min=0)

    monkeypatch.setattr(fast, "text_time", previous_image)
    broken = [_score(of_toy, toy_root, tmp_path / "broken", t, shots=4) for t in ("coco", "vqav2")]
    assert all(b < h for b, h in zip(broken, honest, strict=True)), (honest, broken)
    assert broken[0] < honest[0] - 5, (honest, broken)
    assert broken[1] < 0.5 * honest[1], "short answers come from the prompt's last position: they must collapse"


# ---- in-context learning: the words a caption uses come from its demonstrations ----------------------

@pytest.fixture(scope="module")
def toy_root_100(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy100")
    generate(root, seed=11, sizes=Sizes())  # the demo's sizes (400 pool, 100 evaluated), data no test tuned on
    return root


def test_four_random_demonstrations_caption_better_than_zero(of_toy, toy_root_100, tmp_path):
    """The few-shot criterion itself: four random demonstrations name more of the query's colours in COCO's
    words than the two text-only ones of 0 shots, and the model uses them (100 items; the 500-item figures
    in the README agree)."""
    zero = _score(of_toy, toy_root_100, tmp_path / "zero", "coco", shots=0, n=100)
    four = _score(of_toy, toy_root_100, tmp_path / "four", "coco", shots=4, n=100)
    assert four > zero + 15, (zero, four)


def _relabelled(samples, names):
    from dataclasses import replace

    from flamingo_eval.toy.language import rename

    return [replace(s, answers=tuple(rename(a, names) for a in s.answers)) for s in samples]


def test_of_toy_calls_a_colour_what_its_demonstrations_call_it(of_toy, toy_root):
    """The same COCO queries with the same four demonstration images of the query's colour (what RICES
    retrieves), captioned once per vocabulary: the query's colour word must follow the demonstrations'
    word, which no image shows (training draws every sequence's words afresh, so none is memorised)."""
    from flamingo_eval.toy.language import SYNONYMS, colour_of, colour_words

    task = load_task("coco")
    pool = list(load_split(task, "demo", toy_root))
    queries = list(load_split(task, "eval", toy_root))[:12]
    colour = {s.id: colour_of(colour_words(s.answers[0])[0]) for s in pool + queries}
    for column in (0, 3):  # two vocabularies COCO does not use
        names = {c: words[column] for c, words in SYNONYMS.items()}
        prompts = []
        for q in queries:
            same = [s for s in pool if colour[s.id] == colour[q.id]]
            prompts.append(build_prompt(task, _relabelled((same * 4)[:4], names), q))
        outputs = of_toy.generate(prompts, task.generation)
        followed = [names[colour[q.id]] in colour_words(out) for q, out in zip(queries, outputs, strict=True)]
        assert sum(followed) >= 9, (column, outputs)


def test_of_toy_answers_a_colour_question_in_its_demonstrations_words(of_toy, toy_root_100):
    """VQAv2 colour questions with four demonstrations of the query's colour, their answers relabelled into
    two vocabularies VQAv2 does not use: the answer must be the demonstrations' word (chance: 1 in 4)."""
    from collections import Counter

    from flamingo_eval.toy.language import SYNONYMS, colour_of, colour_words

    task = load_task("vqav2")
    pool = list(load_split(task, "demo", toy_root_100))

    def colour(sample):
        words = colour_words(Counter(sample.answers).most_common(1)[0][0])
        return colour_of(words[0]) if words else None

    queries = [s for s in load_split(task, "eval", toy_root_100) if colour(s)][:12]
    for column in (0, 3):
        names = {c: words[column] for c, words in SYNONYMS.items()}
        prompts = [build_prompt(task, _relabelled([s for s in pool if colour(s) == colour(q)][:4], names), q)
                   for q in queries]
        outputs = of_toy.generate(prompts, task.generation)
        followed = [out.strip() == names[colour(q)] for q, out in zip(queries, outputs, strict=True)]
        assert len(queries) == 12 and sum(followed) >= 9, (column, outputs)
