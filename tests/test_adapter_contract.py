"""The adapter contract (models/base.py), one specification every family's adapter passes: the bundled
of-toy, tiny Idefics, Idefics2 and Idefics3 checkpoints, and the transformers family (a tiny Qwen2.5-VL)."""

from __future__ import annotations

import pytest
import torch

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models import GenerationSettings, load_model
from flamingo_eval.models.decoding import run
from flamingo_eval.prompt import Chunk, Prompt
from tests import helpers_vlm
from tests.helpers_idefics import BUILDERS, hf_option_logprob, load, tiny_image, vqa_prompt

FAMILIES = ["openflamingo", "idefics", "idefics2", "idefics3", "transformers"]
IMAGE_MARK = {"transformers": "<|image_pad|>"}  # a tiny Qwen2.5-VL in the raw format; the others write <image>


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request, tmp_path_factory):
    """(adapter, plain_logprob(prompt, option) by an uncached forward of the model's reference)."""
    family = request.param
    if family == "openflamingo":
        ours = load_model("of-toy")

        def plain(prompt, option):
            ids = ours._tokenize([prompt])[0]
            opt = ours.tokenizer(option, add_special_tokens=False)["input_ids"]
            full = torch.tensor([ids + opt])
            with torch.no_grad():
                logits = ours.model(full, torch.ones_like(full), ours._media([prompt]))[0].float()
            logp = torch.log_softmax(logits[len(ids) - 1: len(ids) - 1 + len(opt)], -1)
            return float(logp[torch.arange(len(opt)), torch.tensor(opt)].sum())

        return ours, plain
    if family == "transformers":
        directory = helpers_vlm.build_tiny("qwen2_5_vl", tmp_path_factory.mktemp(family), seed=2)
        (directory.parent / "spec.yaml").write_text(f"family: transformers\nmodel: {directory}\nprompt_format: raw\n")
        ours = load_model(str(directory.parent / "spec.yaml"))
        return ours, lambda p, o: helpers_vlm.hf_option_logprob(directory, ours.render(p),
                                                                [im for c in p for im in c.images], o)
    directory = tmp_path_factory.mktemp(family)
    BUILDERS[family](directory, seed=2)
    (directory / "spec.yaml").write_text(f"family: {family}\nmodel: {directory}\n")
    model, processor = load(family, directory)
    return load_model(str(directory / "spec.yaml")), lambda p, o: hf_option_logprob(model, processor, family, p, o)


def batch():
    images = [tiny_image(i, (32 + 4 * i, 32)) for i in range(6)]
    return [vqa_prompt(images[:3], 2), vqa_prompt(images[3:4], 0), vqa_prompt(images[2:6], 3, offset=3)]


def test_scores_do_not_depend_on_batch_size(adapter):
    ours, _ = adapter
    prompts = batch()
    settings = GenerationSettings(num_beams=3, max_new_tokens=6)
    assert ours.generate(prompts, settings) == [ours.generate([p], settings)[0] for p in prompts]
    together = torch.tensor(ours.rank(prompts, ["yes", "no"]))
    alone = torch.tensor([ours.rank([p], ["yes", "no"])[0] for p in prompts])
    assert torch.allclose(together, alone, atol=1e-4, rtol=0)


def test_rank_is_the_summed_log_probability_of_a_plain_forward(adapter):
    ours, plain = adapter
    prompt = batch()[0]
    options = ["yes", "two dogs"]
    got = ours.rank([prompt], options)[0]
    assert got == pytest.approx([plain(prompt, o) for o in options], abs=1e-4)
    assert ours.option_lengths(options)[1] >= 2  # a multi-token option took the continuation path


def test_many_options_in_small_chunks_score_as_a_plain_forward(adapter, monkeypatch):
    """Options of every length, a few per pass (each pass restarting from the shared prompt K/V)."""
    ours, plain = adapter
    monkeypatch.setattr(run, "RANK_CHUNK_TOKENS", 6)
    prompts = batch()[:2]
    options = ["two dogs on the grass", "yes", "a red car", "no", "three", "a cat sitting on a bed", "two dogs"]
    assert len(set(ours.option_lengths(options))) >= 3
    got = ours.rank(prompts, options)
    for p, row in zip(prompts, got, strict=True):
        assert row == pytest.approx([plain(p, o) for o in options], abs=1e-4)


def test_generation_stops_at_the_end_of_a_demonstration(adapter):
    ours, _ = adapter
    texts = ours.generate(batch(), GenerationSettings(num_beams=1, max_new_tokens=12))
    assert all("\n" not in t for t in texts)


def test_render_shows_every_image(adapter):
    ours, _ = adapter
    for prompt in batch() + [two_image_prompt()]:
        n = sum(len(c.images) for c in prompt)
        assert ours.render(prompt).count(IMAGE_MARK.get(getattr(ours.spec, "family", ""), "<image>")) == n


def two_image_prompt() -> Prompt:
    """VL-ICL's interleaved operator induction: two images before each demonstration's text and the query's."""
    im = [tiny_image(i, (32 + 4 * i, 32)) for i in range(4)]
    return Prompt([Chunk(im[0], "What is the result?\nAnswer: 7", answer="7", more_images=(im[1],)),
                   Chunk(im[2], "What is the result?\nAnswer:", more_images=(im[3],))])


def test_a_chunk_with_two_images_is_scored_as_the_plain_forward_sees_it(adapter):
    ours, plain = adapter
    prompt = two_image_prompt()
    got = ours.rank([prompt], ["yes", "two dogs"])[0]
    assert got == pytest.approx([plain(prompt, o) for o in ["yes", "two dogs"]], abs=1e-4)
    settings = GenerationSettings(num_beams=1, max_new_tokens=4)
    assert ours.generate([prompt, batch()[0]], settings)[0] == ours.generate([prompt], settings)[0]


def test_a_prompt_longer_than_the_context_is_one_clear_line(adapter):
    ours, _ = adapter
    words = " ".join(["what color is the car"] * 2000)
    prompt = Prompt([Chunk(tiny_image(0), f"Question:{words}? Short answer:")], separator="\n")
    with pytest.raises(ConfigError, match="exceeds .*context") as e:
        ours.generate([prompt], GenerationSettings(num_beams=1, max_new_tokens=3))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("family", ["idefics", "idefics2", "idefics3"])
def test_a_missing_model_names_the_hub_id_or_path(tmp_path, family):
    missing = tmp_path / "no-such-model"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"family: {family}\nmodel: {missing}\n")
    with pytest.raises(WeightsError, match="no-such-model"):
        load_model(str(spec))
    spec.write_text(f"family: {family}\nmodel: HuggingFaceM4/not-downloaded-here\n")
    with pytest.raises(WeightsError, match="HuggingFaceM4/not-downloaded-here"):
        load_model(str(spec))
