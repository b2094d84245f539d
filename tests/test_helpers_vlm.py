"""The tiny VLM builders and transformers oracles (tests/helpers_vlm.py): each architecture's checkpoint
reloads through the Auto classes, generates with 0, 1, 2 and 4 images of different sizes in both prompt
formats, and its images change the greedy output."""

import pytest

from flamingo_eval.prompt import Chunk, Prompt
from tests import helpers_vlm as V
from tests.helpers_idefics import harness_prompt

SIZES = [(40, 32), (64, 20), (24, 48), (50, 50), (32, 40)]
READY = [a for a in V.ARCHS if a in V.BUILDERS]


def _images(n: int, seed: int = 0):
    return [V.tiny_image(seed + i, SIZES[i % len(SIZES)]) for i in range(n)]


def _prompt(shots: int, seed: int = 0):
    return harness_prompt("vqav2", _images(shots + 1, seed), shots)


TEXT_ONLY = Prompt([Chunk(None, "Question:is it red? Short answer:yes", answer="yes"),
                    Chunk(None, "Question:is it blue? Short answer:")], separator="\n")


@pytest.mark.parametrize("arch", READY)
def test_checkpoint_reloads_through_the_auto_classes(tiny_vlm, arch):
    import json

    directory = tiny_vlm(arch)
    model, processor = V.load(directory)
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == model.config.model_type
    assert processor.chat_template, "the processor carries a chat template"
    assert processor.tokenizer.eos_token_id in V.protocol_stop_ids(model, processor.tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


@pytest.mark.parametrize("arch", READY)
@pytest.mark.parametrize("prompt_format", ["chat", "raw"])
def test_generate_with_0_1_2_and_4_demonstrations_and_without_images(tiny_vlm, arch, prompt_format):
    directory = tiny_vlm(arch)
    _, processor = V.load(directory)
    for shots in (0, 1, 2, 4):
        prompt = _prompt(shots)
        text = V.prompt_text(processor, prompt, prompt_format)
        images = prompt.images()
        assert len(images) == (shots + 1 if shots else 1)
        ids = V.processor_inputs(processor, text, images)["input_ids"][0].tolist()
        assert ids.count(processor.image_token_id) >= len(images)
        new = V.hf_generate(directory, text, images, num_beams=3, max_new_tokens=5)
        assert 1 <= len(new) <= 5
    # and a prompt without any image (images=None)
    new = V.hf_generate(directory, V.prompt_text(processor, TEXT_ONLY, prompt_format), [], num_beams=3,
                        max_new_tokens=5)
    assert 1 <= len(new) <= 5


@pytest.mark.parametrize("arch", READY)
@pytest.mark.parametrize("prompt_format", ["chat", "raw"])
def test_the_query_image_changes_the_greedy_output(tiny_vlm, arch, prompt_format):
    directory = tiny_vlm(arch)
    _, processor = V.load(directory)
    outputs = set()
    for seed in range(4):
        prompt = harness_prompt("vqav2", _images(1) + [V.tiny_image(100 + seed, (40, 32))], 1)
        text = V.prompt_text(processor, prompt, prompt_format)
        outputs.add(tuple(V.hf_generate(directory, text, prompt.images(), max_new_tokens=6)))
    assert len(outputs) > 1


@pytest.mark.parametrize("arch", READY)
def test_option_logprob_is_a_sum_of_token_logprobs(tiny_vlm, arch):
    directory = tiny_vlm(arch)
    _, processor = V.load(directory)
    prompt = _prompt(2)
    text, images = V.prompt_text(processor, prompt, "chat"), prompt.images()
    ids = processor.tokenizer("two dogs", add_special_tokens=False)["input_ids"]
    assert len(ids) >= 2
    whole = V.hf_option_logprob(directory, text, images, "two dogs")
    assert whole == pytest.approx(V.hf_ids_logprob(directory, text, images, ids), abs=1e-6)
    first = V.hf_ids_logprob(directory, text, images, ids[:1])
    assert whole < first < 0


def test_builders_are_deterministic(tmp_path):
    a = V.build_tiny("qwen2_5_vl", tmp_path / "a")
    b = V.build_tiny("qwen2_5_vl", tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_chat_format_turns_and_the_fixed_date(tiny_vlm):
    _, processor = V.load(tiny_vlm("mllama"))
    prompt = _prompt(1)
    messages = V.chat_messages(prompt)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [{"type": "text", "text": prompt[0].answer}]
    assert messages[0]["content"][0] == {"type": "image"}
    # Llama 3.2's template writes today's date only where no message holds an image: the date is an argument
    assert "Today Date: 01 Jan 2025" in V.prompt_text(processor, TEXT_ONLY, "chat", date_string="01 Jan 2025")
    assert "Today Date" not in V.prompt_text(processor, prompt, "chat")


def test_raw_placeholders(tiny_vlm):
    _, qwen = V.load(tiny_vlm("qwen2_5_vl"))
    assert V.image_placeholder(qwen) == "<|vision_start|><|image_pad|><|vision_end|>"
    _, mllama = V.load(tiny_vlm("mllama"))
    assert V.prompt_text(mllama, _prompt(1), "raw").count("<|image|>") == 2


def test_unknown_architecture_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture 'llava'"):
        V.build_tiny("llava", tmp_path)
