"""COCO-format caption references, keyed by str(image_id) so they match caption sample ids."""

import json
from pathlib import Path

import pytest

from flamingo_eval.data import load_caption_references, load_references
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"


def test_coco_int_image_ids_become_string_keys_with_captions_in_file_order():
    refs = load_caption_references(DATA / "coco/captions_val2014.json")
    assert refs["164"][1] == "a small red circle" and len(refs["164"]) == 5
    assert all(isinstance(k, str) for k in refs)


def test_flickr_coco_style_file_uses_string_stems():
    raw = json.loads((DATA / "flickr30k/dataset_flickr30k_coco_style.json").read_text())
    assert isinstance(raw["annotations"][0]["image_id"], str)
    refs = load_caption_references(DATA / "flickr30k/dataset_flickr30k_coco_style.json")
    assert "1000092795" in refs


def test_a_task_without_references_says_so():
    with pytest.raises(ConfigError, match="has no 'references'"):
        load_references(load_task("vqav2"), DATA)


def test_missing_references_file_names_the_override(tmp_path):
    with pytest.raises(DataError, match="--data references=PATH"):
        load_references(load_task("coco"), tmp_path)


def test_an_annotation_without_caption_names_the_file_and_field(tmp_path):
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 2}]}))
    with pytest.raises(DataError, match=r"refs\.json: annotations\[1\] has no 'caption' field"):
        load_caption_references(path)
