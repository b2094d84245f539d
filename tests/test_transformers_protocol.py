"""The transformers family's spec files (spec.py), prompt formats (render.py) and batching (inputs.py): what a
spec may say, the chat messages and raw text a prompt becomes, and the clear errors before any model work."""

from __future__ import annotations

import pytest
import torch

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models import GenerationSettings, load_model, resolve_model
from flamingo_eval.models.families import get_spec
from flamingo_eval.models.transformers.inputs import collate
from flamingo_eval.models.transformers.render import DATE, chat_messages, raw_text
from flamingo_eval.prompt import Chunk, Prompt
from tests.helpers_idefics import tiny_image


def demo(seed: int, question: str, answer: str, images: int = 1) -> Chunk:
    pics = [tiny_image(seed + i) for i in range(images)]
    return Chunk(pics[0] if pics else None, f"Question:{question} Short answer:{answer}", answer=answer,
                 more_images=tuple(pics[1:]))


def two_shot() -> Prompt:
    return Prompt([demo(0, "what color is the car?", "red", images=2), demo(2, "how many dogs?", "two", images=0),
                   Chunk(tiny_image(3), "Question:what is on the table? Short answer:")], separator="\n")


# ---- spec -----------------------------------------------------------------------------------------------
def test_a_spec_names_checkpoint_format_and_processor_options(tmp_path):
    (tmp_path / "ckpt").mkdir()
    path = tmp_path / "m.yaml"
    path.write_text("family: transformers\nmodel: ckpt\nprompt_format: chat\nprocessor: {max_pixels: 401408}\n")
    spec = get_spec(str(path))
    assert spec.family == "transformers" and spec.model == str(tmp_path / "ckpt")  # relative to the spec file
    assert spec.prompt_format == "chat" and spec.processor == {"max_pixels": 401408} and spec.revision is None


@pytest.mark.parametrize("body, message", [
    ("model: x\n", "missing prompt_format"),
    ("model: x\nprompt_format: chatml\n", "prompt_format must be one of chat, raw"),
    ("model: x\nprompt_format: raw\nprocesor: {}\n", "unknown procesor"),
    ("model: x\nprompt_format: raw\nprocessor: [1]\n", "processor must be a mapping"),
])
def test_a_bad_spec_is_one_clear_error(tmp_path, body, message):
    path = tmp_path / "m.yaml"
    path.write_text("family: transformers\n" + body)
    with pytest.raises(ConfigError, match=message):
        resolve_model(str(path))


def test_a_missing_checkpoint_names_the_hub_id_or_path(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(f"family: transformers\nmodel: {tmp_path / 'no-such-model'}\nprompt_format: raw\n")
    with pytest.raises(WeightsError, match="no-such-model"):
        load_model(str(path))


# ---- the prompt formats --------------------------------------------------------------------------------
def test_chat_demonstrations_are_user_and_assistant_turns():
    messages = chat_messages(two_shot())
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == [{"type": "image"}, {"type": "image"},
                                      {"type": "text", "text": "Question:what color is the car? Short answer:"}]
    assert messages[1]["content"] == [{"type": "text", "text": "red"}]
    assert messages[2]["content"] == [{"type": "text", "text": "Question:how many dogs? Short answer:"}]
    assert messages[4]["content"][0] == {"type": "image"} and len(messages[4]["content"]) == 2


def test_chat_needs_each_demonstrations_answer():
    prompt = Prompt([Chunk(None, "Output:two dogs"), Chunk(tiny_image(0), "Output:")], separator="\n")
    with pytest.raises(ConfigError, match="prompt_format: raw"):
        chat_messages(prompt)


def test_raw_text_places_one_placeholder_per_image_and_the_separator_after_demonstrations():
    text = raw_text(two_shot(), "<I>")
    assert text == ("<I><I>Question:what color is the car? Short answer:red\nQuestion:how many dogs? Short answer:two\n"
                    "<I>Question:what is on the table? Short answer:")


def test_raw_placeholders_carry_the_markers_the_processor_does_not_add(tiny_vlm):
    qwen = load_model(_spec(tiny_vlm("qwen2_5_vl"), "raw"))
    assert qwen.render(two_shot()).count("<|vision_start|><|image_pad|><|vision_end|>") == 3
    llama = load_model(_spec(tiny_vlm("mllama"), "raw"))
    assert llama.render(two_shot()).count("<|image|>") == 3


def test_a_template_that_reads_the_date_gets_a_fixed_one(tiny_vlm):
    llama = load_model(_spec(tiny_vlm("mllama"), "chat"))
    text_only = Prompt([demo(0, "what color?", "red", images=0), Chunk(None, "Question:how many? Short answer:")],
                       separator="\n")
    assert f"Today Date: {DATE}" in llama.render(text_only)  # the tiny template prints it for text-only prompts
    assert llama.describe()["chat_template_date"] == DATE


def _spec(directory, prompt_format: str) -> str:
    path = directory.parent / f"{directory.name}-{prompt_format}.yaml"
    path.write_text(f"family: transformers\nmodel: {directory.name}\nprompt_format: {prompt_format}\n")
    return str(path)


# ---- batching and limits -------------------------------------------------------------------------------
def test_per_token_inputs_are_left_padded_and_image_rows_concatenated():
    a = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
         "mm_token_type_ids": torch.tensor([[0, 1, 0]]), "pixel_values": torch.ones(4, 6),
         "image_grid_thw": torch.tensor([[1, 2, 2]])}
    b = {"input_ids": torch.tensor([[8]]), "attention_mask": torch.ones(1, 1, dtype=torch.long),
         "mm_token_type_ids": torch.tensor([[0]])}
    batch = collate([a, b], "qwen2_5_vl", pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["mm_token_type_ids"].tolist() == [[0, 1, 0], [0, 0, 0]]
    assert batch["pixel_values"].shape == (4, 6) and batch["image_grid_thw"].tolist() == [[1, 2, 2]]


def test_an_input_the_family_cannot_batch_stops_the_run():
    one = {"input_ids": torch.tensor([[5]]), "video_frames": torch.ones(1, 2)}
    with pytest.raises(ConfigError, match="'video_frames'"):
        collate([one], "somevlm", pad_id=0)


def test_a_prompt_over_the_context_names_shots_tokens_and_limit(tiny_vlm):
    ours = load_model(_spec(tiny_vlm("qwen2_5_vl"), "raw"))
    words = " ".join(["what color is the car"] * 2000)
    prompt = Prompt([demo(0, "what?", "red"), Chunk(tiny_image(1), f"Question:{words}? Short answer:")], separator="\n")
    with pytest.raises(ConfigError, match=r"1-shot prompt of \d+ tokens plus 3 new ones exceeds the model's context "
                                          r"of \d+ tokens") as e:
        ours.generate([prompt], GenerationSettings(num_beams=1, max_new_tokens=3))
    assert "\n" not in str(e.value)
