"""The transformers family equals transformers itself (models/transformers/): on tiny random checkpoints of each
architecture, in both prompt formats, ``generate`` (greedy and beam 3) gives ``generate``'s ids token for token,
batched and one prompt at a time, for prompts of 0, 1, 2 and 4 demonstrations with images of different sizes;
``rank`` is a plain forward's summed log-probability to 1e-4; an image changes the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from flamingo_eval.models import GenerationSettings, load_model
from tests import helpers_vlm as V
from tests.helpers_idefics import harness_prompt

ARCHS = [a for a in V.ARCHS if a in V.BUILDERS]
FORMATS = ["chat", "raw"]
SIZES = [(40, 32), (64, 20), (24, 48), (50, 50), (32, 40)]


def spec_file(directory: Path, prompt_format: str) -> str:
    path = directory.parent / f"{directory.name}-{prompt_format}.yaml"
    path.write_text(f"family: transformers\nmodel: {directory.name}\nprompt_format: {prompt_format}\n")
    return str(path)


@pytest.fixture(scope="module")
def adapters(tiny_vlm):
    """(arch, format) -> (adapter, checkpoint directory), loaded once per module."""
    loaded = {}

    def get(arch: str, prompt_format: str):
        if (arch, prompt_format) not in loaded:
            directory = tiny_vlm(arch)
            loaded[arch, prompt_format] = load_model(spec_file(directory, prompt_format)), directory
        return loaded[arch, prompt_format]

    return get


def images(n: int, seed: int = 0):
    return [V.tiny_image(seed + i, SIZES[i % len(SIZES)]) for i in range(n)]


def prompts():
    """0, 1, 2 and 4 demonstrations (0 shots: two text-only demonstrations), each image its own size."""
    return [harness_prompt("vqav2", images(shots + 1, 10 * shots), shots) for shots in (0, 1, 2, 4)]


def pictures(prompt):
    return [im for chunk in prompt for im in chunk.images]


@pytest.mark.parametrize("beams", [1, 3])
@pytest.mark.parametrize("prompt_format", FORMATS)
@pytest.mark.parametrize("arch", ARCHS)
def test_generate_equals_transformers_generate(adapters, arch, prompt_format, beams):
    ours, directory = adapters(arch, prompt_format)
    settings = GenerationSettings(num_beams=beams, max_new_tokens=6)
    batch = prompts()
    expected = [V.hf_generate(directory, V.prompt_text(ours.processor, p, prompt_format), pictures(p),
                              num_beams=beams, max_new_tokens=6) for p in batch]
    assert ours.generate_ids(batch, settings) == expected
    assert [ours.generate_ids([p], settings)[0] for p in batch] == expected


@pytest.mark.parametrize("prompt_format", FORMATS)
@pytest.mark.parametrize("arch", ARCHS)
def test_rank_is_a_plain_forwards_summed_log_probability(adapters, arch, prompt_format):
    ours, directory = adapters(arch, prompt_format)
    batch, options = prompts()[:3], ["yes", "two dogs"]
    expected = [[V.hf_option_logprob(directory, V.prompt_text(ours.processor, p, prompt_format), pictures(p), o)
                 for o in options] for p in batch]
    for got, want in zip(ours.rank(batch, options), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-4)
    assert ours.option_lengths(options)[1] >= 2  # a multi-token option continues the prefill


@pytest.mark.parametrize("arch", ARCHS)
def test_an_image_changes_the_output(adapters, arch):
    ours, _ = adapters(arch, "raw")
    settings = GenerationSettings(num_beams=1, max_new_tokens=6)
    outputs = {tuple(ours.generate_ids([harness_prompt("vqav2", images(2, seed), 1)], settings)[0])
               for seed in (0, 5, 9)}
    assert len(outputs) > 1


@pytest.mark.parametrize("arch", ARCHS)
def test_the_answer_is_cut_at_the_first_newline(adapters, arch):
    ours, _ = adapters(arch, "raw")
    texts = ours.generate(prompts(), GenerationSettings(num_beams=1, max_new_tokens=12))
    assert len(texts) == 4 and all("\n" not in t for t in texts)


@pytest.mark.parametrize("arch", [a for a in ("qwen2_vl", "qwen2_5_vl") if a in ARCHS])
def test_each_distinct_image_is_encoded_once_with_the_same_outputs(adapters, arch):
    from flamingo_eval.models.transformers.adapter import TransformersAdapter

    ours, _ = adapters(arch, "raw")
    fresh = TransformersAdapter(ours.spec, ours.model, ours.processor)
    uncached = TransformersAdapter(ours.spec, ours.model, ours.processor, cache_images=False)
    shared = images(3, seed=40)  # three prompts reusing two demonstration images
    batch = [harness_prompt("vqav2", [shared[0], shared[1], im], 2) for im in images(3, seed=50)]
    settings = GenerationSettings(num_beams=3, max_new_tokens=6)
    assert uncached.features is None
    assert fresh.generate_ids(batch, settings) == uncached.generate_ids(batch, settings)
    assert len(fresh.features.cache) == 5 and fresh.features.cache.hits == 4  # 2 shared + 3 queries
    for got, want in zip(fresh.rank(batch, ["yes", "two dogs"]), uncached.rank(batch, ["yes", "two dogs"]), strict=True):
        assert got == pytest.approx(want, abs=1e-5)
