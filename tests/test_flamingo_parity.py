"""Parity with OpenFlamingo 2.0.1: tiny reference models and their outputs live in tests/golden/flamingo
(regenerate with scripts/parity/make_goldens.py, see its README). Rank log-probs must agree within 1e-4
and greedy / beam-3 generations must be identical, alone and in a left-padded batch of mixed lengths."""

import json
from pathlib import Path

import pytest

from flamingo_eval.models import GenerationSettings
from flamingo_eval.models.flamingo.adapter import load_flamingo
from flamingo_eval.prompt import Chunk, Image, Prompt

GOLDEN = Path(__file__).parent / "golden" / "flamingo"
MODELS = sorted(p.parent.name for p in GOLDEN.glob("*/golden.json"))
TOL = 1e-4


@pytest.fixture(scope="module", params=MODELS)
def loaded(request):
    d = GOLDEN / request.param
    return load_flamingo(str(d / "spec.yaml")), json.loads((d / "golden.json").read_text())


def prompt_of(case) -> Prompt:
    chunks = [
        Chunk(Image(key=c["image"], path=str(GOLDEN / "images" / c["image"])) if c["image"] else None, c["text"])
        for c in case["chunks"]
    ]
    return Prompt(chunks, separator=case["separator"])


def test_goldens_exist_for_every_family():
    assert {json.loads((GOLDEN / m / "golden.json").read_text())["family"] for m in MODELS} == {"mpt", "gpt_neox", "llama"}


def test_prompts_render_and_tokenize_as_the_reference(loaded):
    model, golden = loaded
    for case in golden["cases"]:
        assert model.render(prompt_of(case)) == case["rendered"]
        assert model._tokenize([prompt_of(case)])[0] == case["input_ids"]


def test_rank_logprobs_match_reference_alone_and_batched(loaded):
    model, golden = loaded
    prompts = [prompt_of(c) for c in golden["cases"]]
    options = golden["cases"][0]["rank"]["options"]
    batched = model.rank(prompts, options)
    for case, prompt, got_batched in zip(golden["cases"], prompts, batched, strict=True):
        want = case["rank"]["logprobs"]
        alone = model.rank([prompt], options)[0]
        assert max(abs(a - b) for a, b in zip(alone, want, strict=True)) < TOL, case["name"]
        assert max(abs(a - b) for a, b in zip(got_batched, want, strict=True)) < TOL, case["name"]


@pytest.mark.parametrize("setting", ["greedy", "beam3", "beam3_lp"])
def test_generations_match_reference_alone_and_batched(loaded, setting):
    model, golden = loaded
    settings = GenerationSettings(**golden["settings"][setting])
    prompts = [prompt_of(c) for c in golden["cases"]]
    want = [c[setting]["text"] for c in golden["cases"]]
    assert [model.generate([p], settings)[0] for p in prompts] == want
    assert model.generate(prompts, settings) == want
    assert golden["batched_reference"][setting] == want  # the reference itself is batch-invariant here
