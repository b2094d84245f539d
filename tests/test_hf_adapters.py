"""The Hugging Face families (models/hf, models/idefics, models/idefics2) against transformers, the oracle:
on tiny random models saved with save_pretrained, ``generate`` equals transformers' ``generate`` token for
token (greedy and beam 3, batched and one prompt at a time, with the protocol's stop tokens), the answer
text is the protocol's, and ``rank`` equals a plain forward's summed log-probabilities to 1e-4."""

from __future__ import annotations

import pytest
import torch

from flamingo_eval.models import GenerationSettings, load_model
from tests.helpers_idefics import (
    BUILDERS,
    hf_generate,
    hf_option_logprob,
    hf_text,
    load,
    tiny_image,
    vqa_prompt,
)

VARIANTS = [("idefics", {"qk_layer_norms": False}), ("idefics", {"qk_layer_norms": True}),
            ("idefics2", {"do_image_splitting": False}), ("idefics2", {"do_image_splitting": True}),
            ("idefics2", {"sliding_window": 16}),  # Mistral's window, shorter than every prompt
            ("idefics3", {"do_image_splitting": False}), ("idefics3", {"do_image_splitting": True})]


def variant_id(v) -> str:
    family, options = v
    return family + "".join(f"-{k}" for k, on in options.items() if on)


@pytest.fixture(scope="module", params=VARIANTS, ids=variant_id)
def tiny(request, tmp_path_factory):
    """(family, our adapter, transformers model, processor) for one tiny checkpoint."""
    family, options = request.param
    directory = tmp_path_factory.mktemp(variant_id(request.param))
    BUILDERS[family](directory, seed=1, **options)
    spec = directory / "spec.yaml"
    spec.write_text(f"family: {family}\nmodel: {directory}\n")
    model, processor = load(family, directory)
    return family, load_model(str(spec)), model, processor


def prompts():
    """A 2-shot, a 0-shot (two text-only demonstrations) and a 4-shot prompt whose demonstrations repeat an
    image, of different sizes, so the batch is padded and the features cache is hit."""
    images = [tiny_image(i, (36 + 7 * i, 30 + 5 * i)) for i in range(5)]
    return [vqa_prompt(images[:3], 2), vqa_prompt(images[3:4], 0, offset=2),
            vqa_prompt([images[0], images[4], images[0], images[2], images[1]], 4, offset=1)]


@pytest.mark.parametrize("beams,length_penalty,min_new", [(1, 0.0, 0), (3, 0.0, 0), (3, -2.0, 2)])
def test_generate_equals_transformers_generate_batched_and_alone(tiny, beams, length_penalty, min_new):
    family, ours, model, processor = tiny
    batch = prompts()
    settings = GenerationSettings(num_beams=beams, max_new_tokens=8, min_new_tokens=min_new,
                                  length_penalty=length_penalty)
    got = ours.generate_ids(batch, settings)
    assert got == hf_generate(model, processor, family, batch, beams, 8, length_penalty, min_new)
    assert got == [hf_generate(model, processor, family, [p], beams, 8, length_penalty, min_new)[0] for p in batch]
    assert ours.generate(batch, settings) == [hf_text(processor.tokenizer, ids) for ids in got]


def test_rank_equals_the_summed_log_probabilities_of_a_forward(tiny):
    family, ours, model, processor = tiny
    batch = prompts()
    options = ["yes", "no", "two dogs"]
    got = ours.rank(batch, options)
    want = [[hf_option_logprob(model, processor, family, p, o) for o in options] for p in batch]
    assert torch.allclose(torch.tensor(got), torch.tensor(want), atol=1e-4, rtol=0)


def test_images_change_the_output(tiny):
    """The comparison above could pass with the images ignored; swapping the query image must matter."""
    _, ours, _, _ = tiny
    a = [tiny_image(i, (40, 32)) for i in range(3)]
    b = [*a[:2], tiny_image(9, (40, 32))]
    first, second = (ours.rank([vqa_prompt(x, 2)], ["yes", "no", "red"])[0] for x in (a, b))
    assert max(abs(x - y) for x, y in zip(first, second, strict=True)) > 1e-3


def test_each_distinct_image_is_encoded_once(tiny):
    _, ours, _, _ = tiny
    ours.features.clear()
    ours.features.hits = ours.features.misses = 0
    batch = prompts()
    ours.generate_ids(batch, GenerationSettings(num_beams=3, max_new_tokens=3))
    distinct = {c.image.key for p in batch for c in p if c.image is not None}
    assert len(ours.features) == len(distinct) == ours.features.misses
    ours.generate_ids(batch, GenerationSettings(num_beams=1, max_new_tokens=3))
    assert ours.features.misses == len(distinct)  # the second call encodes nothing


@pytest.mark.parametrize("family", ["idefics", "idefics2", "idefics3"])
def test_bfloat16_weights_decode_in_bfloat16_close_to_float32(family, tmp_path):
    """The GPU configuration, on the CPU: every LM weight in bf16, scores close to fp32's."""
    BUILDERS[family](tmp_path / "m", seed=0)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"family: {family}\nmodel: {tmp_path / 'm'}\n")
    full, half = load_model(str(spec)), load_model(str(spec), precision="bf16")
    assert {p.dtype for p in half.engine.model.parameters()} == {torch.bfloat16}
    batch = prompts()[:2]
    assert len(half.generate(batch, GenerationSettings(num_beams=3, max_new_tokens=5))) == 2
    diff = torch.tensor(full.rank(batch, ["yes", "no"])) - torch.tensor(half.rank(batch, ["yes", "no"]))
    assert diff.abs().max() < 0.25
