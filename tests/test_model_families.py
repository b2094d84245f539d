"""Model families (models/families.py): presets and spec files name their family, the registry finds its
adapter, and a wrong family, key or checkpoint is one clear error before any weights load."""

from __future__ import annotations

import pytest

from flamingo_eval.errors import ConfigError
from flamingo_eval.models import GenerationSettings, list_models, load_model, resolve_model
from flamingo_eval.models.families import get_spec
from tests.helpers_idefics import BUILDERS, tiny_image, vqa_prompt

HUB_IDS = {
    "idefics-9b": "HuggingFaceM4/idefics-9b", "idefics-9b-instruct": "HuggingFaceM4/idefics-9b-instruct",
    "idefics-80b": "HuggingFaceM4/idefics-80b", "idefics-80b-instruct": "HuggingFaceM4/idefics-80b-instruct",
    "idefics2-8b-base": "HuggingFaceM4/idefics2-8b-base", "idefics2-8b": "HuggingFaceM4/idefics2-8b",
    "idefics3-8b": "HuggingFaceM4/Idefics3-8B-Llama3", "smolvlm-256m-base": "HuggingFaceTB/SmolVLM-256M-Base",
}


def test_presets_are_listed_with_their_family_and_hub_id():
    listed = {m["name"]: m for m in list_models()}
    assert listed["of-9b"]["family"] == "openflamingo" and listed["of-toy"]["family"] == "openflamingo"
    for name, hub_id in HUB_IDS.items():
        assert listed[name]["model"] == hub_id
        assert listed[name]["family"] == name.split("-")[0].replace("smolvlm", "idefics3")


def test_ls_models_prints_the_family(capsys):
    from flamingo_eval.cli import main

    assert main(["ls", "models"]) == 0
    lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")}
    assert lines["idefics2-8b-base"] == "idefics2" and lines["of-3b"] == "openflamingo"


def test_an_unknown_family_suggests_the_closest(tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text("family: idefic2\nmodel: HuggingFaceM4/idefics2-8b-base\n")
    with pytest.raises(ConfigError, match="did you mean 'idefics2'"):
        resolve_model(str(spec))


def test_a_spec_without_its_model_lists_the_keys(tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text("family: idefics3\nrevisoin: main\n")
    with pytest.raises(ConfigError, match="missing model; unknown revisoin"):
        resolve_model(str(spec))


def test_an_openflamingo_spec_may_name_its_family():
    from pathlib import Path

    golden = Path(__file__).parent / "golden" / "flamingo" / "mpt-x1" / "spec.yaml"
    plain = get_spec(str(golden))
    named = golden.parent / "named.yaml"
    try:
        named.write_text("family: openflamingo\n" + golden.read_text())
        assert get_spec(str(named)).lang_encoder == plain.lang_encoder
    finally:
        named.unlink()


def test_a_checkpoint_of_another_family_is_refused(tmp_path):
    BUILDERS["idefics2"](tmp_path / "m", seed=0)
    spec = tmp_path / "m.yaml"
    spec.write_text(f"family: idefics3\nmodel: {tmp_path / 'm'}\n")
    with pytest.raises(ConfigError, match="is an 'idefics2' model, not 'idefics3'"):
        load_model(str(spec))


def test_the_spec_can_override_image_splitting(tmp_path):
    BUILDERS["idefics3"](tmp_path / "m", seed=0, do_image_splitting=False)
    spec = tmp_path / "m.yaml"
    spec.write_text(f"family: idefics3\nmodel: {tmp_path / 'm'}\nimage_splitting: true\n")
    adapter = load_model(str(spec))
    assert adapter.processor.image_processor.do_image_splitting is True
    prompt = vqa_prompt([tiny_image(0, (96, 48)), tiny_image(1, (96, 48))], 1)
    assert "<row_1_col_1>" in adapter.tokenizer.decode(adapter.engine.encode_prompt(prompt, [c.image.load() for c in prompt])[0])


def test_device_map_auto_on_one_device_gives_the_same_outputs(tmp_path):
    """On a machine with one device (here the CPU) accelerate's plan keeps the model whole."""
    BUILDERS["idefics"](tmp_path / "m", seed=0)
    spec = tmp_path / "m.yaml"
    spec.write_text(f"family: idefics\nmodel: {tmp_path / 'm'}\n")
    images = [tiny_image(i) for i in range(3)]
    prompts = [vqa_prompt(images, 2), vqa_prompt(images[2:], 0)]
    settings = GenerationSettings(num_beams=3, max_new_tokens=5)
    assert load_model(str(spec), device_map="auto").generate_ids(prompts, settings) == \
        load_model(str(spec)).generate_ids(prompts, settings)
