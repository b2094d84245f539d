"""TaskSpec: the seven shipped tasks load, data paths resolve, overrides are checked."""

from pathlib import Path

import pytest

from flamingo_eval.errors import ConfigError
from flamingo_eval.task import available_tasks, load_task, parse_task, with_options

SEVEN = ["coco", "flickr30k", "hateful_memes", "okvqa", "textvqa", "vizwiz", "vqav2"]


ICL = ["nocaps", "textcaps", *(f"vlicl_{t}" for t in ("clevr", "matching_mi", "open_mi", "operator_induction",
                                                      "operator_induction_interleaved", "textocr"))]


def test_the_seven_tasks_are_shipped_with_those_that_test_in_context_learning():
    assert set(SEVEN) | set(ICL) | {"imagenet"} <= set(available_tasks())


@pytest.mark.parametrize("name", [f"vlicl_{t}" for t in ("clevr", "textocr")])
def test_vlicl_tasks_decode_greedily_fifteen_tokens_with_a_description_variant_per_level(name):
    spec = load_task(name)
    assert (spec.generation.num_beams, spec.generation.max_new_tokens) == (1, 15)
    assert spec.prompt.instruction == "\n" and spec.variants == ("concise", "detailed")
    assert load_task(f"{name}:detailed").prompt.instruction.endswith(".\n")


def test_imagenet_reads_its_1000_class_names_from_the_package_unless_given_another_list(tmp_path):
    task = load_task("imagenet")
    assert task.options == () and task.options_file == "classnames"
    full = with_options(task, task.data_paths(tmp_path))
    assert len(full.options) == 1000 and full.options[:3] == ("tench", "goldfish", "great white shark")
    assert full.options[-1] == "toilet paper" and full.sha256 != task.sha256
    mine = tmp_path / "names.txt"
    mine.write_text("# two\nred cube\nblue ball\n")
    small = with_options(task, task.data_paths(tmp_path, {"classnames": str(mine)}))
    assert small.options == ("red cube", "blue ball") and small.sha256 != full.sha256
    mine.write_text("red cube\n\nblue ball\n")
    with pytest.raises(ConfigError, match="one per non-empty line"):
        with_options(task, task.data_paths(tmp_path, {"classnames": str(mine)}))


@pytest.mark.parametrize("name", SEVEN)
def test_each_task_loads_with_generation_settings_matching_openflamingo(name):
    spec = load_task(name)
    assert spec.name == name
    if spec.kind == "classification":
        assert spec.options == ("no", "yes") and spec.metric == "roc_auc"
    else:
        assert spec.generation.num_beams == 3
        assert spec.generation.length_penalty == 0.0
        expected = {"caption": 20, "vqa": 10 if name == "textvqa" else 5}[spec.kind]
        assert spec.generation.max_new_tokens == expected


def test_data_paths_default_under_root_and_accept_overrides():
    spec = load_task("vqav2")
    paths = spec.data_paths("/d", {"val_questions": "/x/q.json"})
    assert paths["train_questions"] == Path("/d/vqav2/v2_OpenEnded_mscoco_train2014_questions.json")
    assert paths["val_questions"] == Path("/x/q.json")


def test_unknown_override_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'val_questions'"):
        load_task("vqav2").data_paths("data", {"val_question": "q.json"})


def test_unknown_task_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'vqav2'"):
        load_task("vqa2")


def test_image_keys_are_shared_across_tasks_over_the_same_images():
    a = load_task("coco").image_key("train_images", "COCO_train2014_000000000009.jpg")
    b = load_task("vqav2").image_key("train_images", "COCO_train2014_000000000009.jpg")
    assert a == b == "coco/train2014/COCO_train2014_000000000009.jpg"


def test_task_hash_changes_with_the_spec():
    raw = load_task("coco").raw
    changed = {**raw, "prompt": {**raw["prompt"], "query": "Caption:"}}
    assert parse_task(raw).sha256 != parse_task(changed).sha256


def test_spec_without_generation_for_a_generation_task_is_rejected():
    raw = {k: v for k, v in load_task("coco").raw.items() if k != "generation"}
    with pytest.raises(ConfigError, match="needs 'generation'"):
        parse_task(raw, "x.yaml")


# ---- variants: the same task on another published split, named <task>:<variant> ---------------------------

def test_hateful_memes_evaluates_test_seen_and_offers_dev_seen_as_a_variant():
    base, dev = load_task("hateful_memes"), load_task("hateful_memes:dev_seen")
    assert base.eval.options["annotations"] == "test_seen" and base.variants == ("dev_seen",)
    assert dev.name == "hateful_memes:dev_seen" and dev.title == "HatefulMemes, dev_seen"
    assert dev.eval.options["annotations"] == "dev_seen" and dev.demo == base.demo
    assert dev.files == {**base.files, "dev_seen": "hateful_memes/dev_seen.jsonl"}  # the variant adds its file


def test_a_variant_has_its_own_hash_and_adding_variants_leaves_the_task_hash_alone():
    raw = load_task("vqav2").raw
    without = {k: v for k, v in raw.items() if k != "variants"}
    assert parse_task(without).sha256 == load_task("vqav2").sha256
    assert load_task("vqav2:test-dev").sha256 != load_task("vqav2").sha256


def test_unknown_variant_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown vqav2 variant 'testdev' \\(did you mean 'test-dev'\\?\\)"):
        load_task("vqav2:testdev")


def test_a_variant_may_not_rename_the_task():
    raw = dict(load_task("coco").raw, variants={"x": {"name": "other"}})
    from flamingo_eval.task import with_variant

    with pytest.raises(ConfigError, match="without 'name'"):
        with_variant(raw, "x")


def test_a_file_with_candidates_resolves_to_the_first_that_exists(tmp_path):
    spec = load_task("textvqa")
    assert spec.candidates("val_questions") == ("textvqa/val_questions_vqa_format.json",
                                                "textvqa/TextVQA_0.5.1_val.json")
    assert spec.data_paths(tmp_path)["val_questions"] == tmp_path / "textvqa/val_questions_vqa_format.json"
    (tmp_path / "textvqa").mkdir()
    (tmp_path / "textvqa/TextVQA_0.5.1_val.json").write_text("{}")
    assert spec.data_paths(tmp_path)["val_questions"] == tmp_path / "textvqa/TextVQA_0.5.1_val.json"
    assert spec.files["val_questions"] == "textvqa/val_questions_vqa_format.json"  # image keys use the first


@pytest.mark.parametrize("bad", [[], [""], 3, [1, 2]])
def test_a_file_entry_must_be_a_path_or_a_list_of_paths(bad):
    raw = dict(load_task("coco").raw, files={**load_task("coco").raw["files"], "karpathy": bad})
    with pytest.raises(ConfigError, match="files.karpathy must be a path or a list of paths"):
        parse_task(raw, "x.yaml")
