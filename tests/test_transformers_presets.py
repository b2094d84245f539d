"""Presets of the transformers family (flamingo_eval/models/transformers/presets.py): each names a hub
checkpoint and the prompt format its training calls for, Qwen presets cap the tokens per image, and
``ls models`` shows them."""

import pytest

from flamingo_eval.cli import main
from flamingo_eval.models.families import get_spec, presets
from flamingo_eval.models.transformers.presets import QWEN2_MAX_PIXELS, QWEN3_MAX_PIXELS, TRANSFORMERS_PRESETS
from flamingo_eval.models.transformers.spec import FORMATS

# issue 21, point 5: the checkpoints people use, base and instruct
EXPECTED = {
    "llama3.2-11b-vision-base": ("meta-llama/Llama-3.2-11B-Vision", "raw"),
    "llama3.2-11b-vision": ("meta-llama/Llama-3.2-11B-Vision-Instruct", "chat"),
    "llama3.2-90b-vision-base": ("meta-llama/Llama-3.2-90B-Vision", "raw"),
    "llama3.2-90b-vision": ("meta-llama/Llama-3.2-90B-Vision-Instruct", "chat"),
    "qwen2-vl-2b-base": ("Qwen/Qwen2-VL-2B", "raw"),
    "qwen2-vl-7b-base": ("Qwen/Qwen2-VL-7B", "raw"),
    "qwen2.5-vl-3b": ("Qwen/Qwen2.5-VL-3B-Instruct", "chat"),
    "qwen2.5-vl-7b": ("Qwen/Qwen2.5-VL-7B-Instruct", "chat"),
    "qwen2.5-vl-72b": ("Qwen/Qwen2.5-VL-72B-Instruct", "chat"),
    "qwen3-vl-2b": ("Qwen/Qwen3-VL-2B-Instruct", "chat"),
    "qwen3-vl-4b": ("Qwen/Qwen3-VL-4B-Instruct", "chat"),
    "qwen3-vl-8b": ("Qwen/Qwen3-VL-8B-Instruct", "chat"),
    "qwen3-vl-32b": ("Qwen/Qwen3-VL-32B-Instruct", "chat"),
    "gemma3-4b-base": ("google/gemma-3-4b-pt", "raw"),
    "gemma3-4b": ("google/gemma-3-4b-it", "chat"),
    "gemma3-12b-base": ("google/gemma-3-12b-pt", "raw"),
    "gemma3-12b": ("google/gemma-3-12b-it", "chat"),
    "gemma3-27b-base": ("google/gemma-3-27b-pt", "raw"),
    "gemma3-27b": ("google/gemma-3-27b-it", "chat"),
    "smolvlm2-2.2b-base": ("HuggingFaceTB/SmolVLM2-2.2B-Base", "raw"),
    "smolvlm2-2.2b": ("HuggingFaceTB/SmolVLM2-2.2B-Instruct", "chat"),
    "llava-ov-0.5b": ("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "chat"),
    "llava-ov-7b": ("llava-hf/llava-onevision-qwen2-7b-ov-hf", "chat"),
    "internvl3-1b": ("OpenGVLab/InternVL3-1B-hf", "chat"),
    "internvl3-2b": ("OpenGVLab/InternVL3-2B-hf", "chat"),
    "internvl3-8b": ("OpenGVLab/InternVL3-8B-hf", "chat"),
    "internvl3-14b": ("OpenGVLab/InternVL3-14B-hf", "chat"),
    "internvl3-38b": ("OpenGVLab/InternVL3-38B-hf", "chat"),
    "internvl3-78b": ("OpenGVLab/InternVL3-78B-hf", "chat"),
}


def test_the_presets_are_the_issue_list():
    assert {name: (s.model, s.prompt_format) for name, s in TRANSFORMERS_PRESETS.items()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_preset_resolves_to_a_transformers_spec(name):
    spec = get_spec(name)
    assert spec.family == "transformers" and spec.name == name
    assert spec.prompt_format in FORMATS and spec.revision is None
    # base checkpoints are prompted raw, instruction-tuned ones through their chat template
    assert spec.prompt_format == ("raw" if name.endswith("-base") else "chat")


def test_qwen_presets_cap_an_image_at_512_tokens():
    assert QWEN2_MAX_PIXELS == 512 * 28 * 28 == 401408  # 14 px patches merged 2 x 2
    assert QWEN3_MAX_PIXELS == 512 * 32 * 32  # 16 px patches merged 2 x 2
    for name, spec in TRANSFORMERS_PRESETS.items():
        if name.startswith(("qwen2-vl", "qwen2.5-vl")):
            assert spec.processor == {"max_pixels": QWEN2_MAX_PIXELS}
        elif name.startswith("qwen3-vl"):
            assert spec.processor == {"max_pixels": QWEN3_MAX_PIXELS}
        else:
            assert spec.processor == {}


def test_preset_names_do_not_shadow_other_families():
    from flamingo_eval.models.flamingo.presets import PRESETS
    from flamingo_eval.models.hf.spec import HF_PRESETS

    assert not set(TRANSFORMERS_PRESETS) & (set(PRESETS) | set(HF_PRESETS))
    assert set(TRANSFORMERS_PRESETS) <= set(presets())


def test_ls_models_shows_family_model_and_format(capsys):
    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("qwen2.5-vl-7b "):].split("\n")[:4]
    assert block[0].split()[:2] == ["qwen2.5-vl-7b", "transformers"]
    assert block[1].split() == ["model", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert block[2].split() == ["prompt_format", "chat"]
    assert block[3].split() == ["processor", "{'max_pixels':", "401408}"]
    gemma = out[out.index("gemma3-4b-base "):].split("\n")[:3]
    assert gemma[2].split() == ["prompt_format", "raw"]
    assert "processor" not in out[out.index("gemma3-4b-base "):out.index("gemma3-4b ")]


def test_max_pixels_reaches_the_image_processor_and_caps_the_tokens(tiny_vlm):
    """What the Qwen presets rely on: ``processor`` keywords go to AutoProcessor.from_pretrained, and
    max_pixels bounds the tokens of one image (tiny Qwen2.5-VL: one token per 8 x 8 pixels)."""
    from transformers import AutoProcessor

    from tests.helpers_vlm import processor_inputs, tiny_image

    directory = tiny_vlm("qwen2_5_vl")
    text = "<|vision_start|><|image_pad|><|vision_end|>a photo of"
    counts = {}
    for max_pixels in (None, 1024):
        kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
        processor = AutoProcessor.from_pretrained(directory, **kwargs)
        ids = processor_inputs(processor, text, [tiny_image(0, (48, 48))])["input_ids"][0].tolist()
        counts[max_pixels] = ids.count(processor.image_token_id)
    assert counts == {None: 36, 1024: 16}  # 48 x 48 -> 6 x 6 tokens; capped to 32 x 32 -> 4 x 4
