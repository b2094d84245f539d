"""The readers of the tasks that test in-context learning, on the fixture files in their real formats:
NoCaps' COCO-format captions (coco_captions), TextCaps 0.1 (textcaps), VL-ICL's query/support JSON (vlicl)."""

import json
from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.errors import DataError
from flamingo_eval.scoring import groups_for, references_for
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"


def split(task, which="eval", root=DATA, **overrides):
    return load_split(load_task(task), which, root, overrides or None)


def test_nocaps_is_one_item_per_image_with_its_ten_captions_and_coco_karpathy_train_demonstrates():
    items = split("nocaps")
    doc = json.loads((DATA / "nocaps/nocaps_val_4500_captions.json").read_text())
    assert items.ids == [str(im["id"]) for im in doc["images"]]
    first = items[0]
    assert len(first.answers) == 10 and first.answers[0] == doc["annotations"][0]["caption"]
    assert first.image.key == f"nocaps/validation/{doc['images'][0]['file_name']}" and Path(first.image.path).is_file()
    pool = split("nocaps", "demo")
    assert len(pool) == 12 and pool[0].image.key.startswith("coco/train2014/")


def test_nocaps_domains_group_its_items():
    task = load_task("nocaps")
    items = list(split("nocaps"))
    groups = groups_for(task, items, task.data_paths(DATA))
    assert sorted(set(groups.values())) == ["in-domain", "near-domain", "out-domain"]
    assert references_for(task, items, task.data_paths(DATA)) == {s.id: list(s.answers) for s in items}


def test_textcaps_groups_caption_entries_by_image_and_uses_textvqa_images():
    items = split("textcaps")
    assert len(items) == 3 and len(split("textcaps", "demo")) == 6
    s = items[0]
    assert len(s.answers) == 5 and s.image.key == f"textvqa/train_images/{s.id}.jpg"
    assert Path(s.image.path).is_file()
    task = load_task("textcaps")
    assert references_for(task, [s], task.data_paths(DATA)) == {s.id: list(s.answers)}


def test_textcaps_without_reference_strs_collects_each_entrys_caption(tmp_path):
    doc = {"dataset_type": "val", "dataset_name": "textcaps", "dataset_version": "0.1",
           "data": [{"image_id": "ab", "caption_str": "one"}, {"image_id": "ab", "caption_str": "two"}]}
    (tmp_path / "val.json").write_text(json.dumps(doc))
    items = split("textcaps", val=str(tmp_path / "val.json"))
    assert [(s.id, s.answers, s.image.key) for s in items] == [("ab", ("one", "two"), "textvqa/train_images/ab.jpg")]


def test_vlicl_items_carry_every_image_and_their_answer_as_text():
    q = split("vlicl_operator_induction_interleaved")[0]
    record = json.loads((DATA / "vlicl/operator_induction_interleaved/query.json").read_text())[0]
    assert q.id == "0" and q.answers == (str(record["answer"]),)
    assert [im.key for im in (q.image, *q.more_images)] == [f"vlicl/{p}" for p in record["image"]]
    assert all(Path(im.path).is_file() for im in (q.image, *q.more_images))
    support = split("vlicl_operator_induction", "demo")[0]
    assert len(support.answers) == 3 and not support.more_images  # one result per operator


def test_vlicl_pairs_and_open_mi_class_support_become_items():
    assert split("vlicl_matching_mi", "demo").ids[:2] == ["0/same", "0/diff"]
    pool = split("vlicl_open_mi", "demo")
    assert len(pool) == 3 * 2 * 5 and pool[0].question == "This is a"
    assert pool.ids[0].startswith("0/") and pool[0].answers[0] in pool.ids[0]


@pytest.mark.parametrize("content, message", [
    ('{"image": []}', "expected a JSON list"),
    ('[{"question": "q", "answer": 1}]', "has no 'image' field"),
    ('[{"image": [], "question": "q", "answer": 1}]', "has no image paths"),
    ('[{"image": ["a.png"], "question": "q"}]', "has no 'answer' field"),
])
def test_malformed_vlicl_files_are_one_line_naming_the_file(tmp_path, content, message):
    bad = tmp_path / "query.json"
    bad.write_text(content)
    with pytest.raises(DataError, match=message) as e:
        split("vlicl_clevr", query=str(bad))
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_a_nocaps_image_without_captions_is_one_clear_line(tmp_path):
    doc = {"images": [{"id": 1, "file_name": "x.jpg", "domain": "in-domain"}], "annotations": []}
    (tmp_path / "n.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="has no captions"):
        split("nocaps", annotations=str(tmp_path / "n.json"))
