"""Readers on the fixture files (tests/fixtures/data, the real on-disk formats): what each split holds."""

from pathlib import Path

import pytest

from flamingo_eval.data import load_references, load_split
from flamingo_eval.data.reader import READERS
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"
SEVEN = ["coco", "flickr30k", "hateful_memes", "okvqa", "textvqa", "vizwiz", "vqav2"]


def split(task: str, which: str):
    return load_split(load_task(task), which, DATA)


def test_the_readers_the_task_yamls_name_are_registered():
    names = {s.reader for t in SEVEN for s in (load_task(t).demo, load_task(t).eval)}
    assert names == {"karpathy", "vqa", "memes"}
    assert all(n in READERS for n in names)


@pytest.mark.parametrize("task", SEVEN)
def test_every_split_has_unique_ids_and_images_that_exist_on_disk(task):
    for which, size in (("demo", 12), ("eval", 6)):
        s = split(task, which)
        assert len(s) == size and len(set(s.ids)) == size
        assert s.name == f"{task}/{which}"
        for sample in s:
            assert Path(sample.image.path).is_file(), sample.image.path
            assert sample.image.load().size == (32, 32)


def test_karpathy_coco_takes_only_the_named_split_with_cocoid_ids_and_raw_sentences():
    demo, ev = split("coco", "demo"), split("coco", "eval")
    # the fixture's Karpathy file has 12 train, 3 restval, 3 val, 6 test images: restval is not train
    assert demo.ids[:3] == ["9", "25", "30"]
    assert all(s.image.key.startswith("coco/train2014/COCO_train2014_") for s in demo)
    assert all(s.image.key.startswith("coco/val2014/COCO_val2014_") for s in ev)
    first = demo[0]
    assert first.image.key == "coco/train2014/COCO_train2014_000000000009.jpg"
    assert first.image.path == str(DATA / "coco/train2014/COCO_train2014_000000000009.jpg")
    assert len(first.answers) == 5 and first.answers[1] == "a small red circle"


def test_restval_is_a_split_of_its_own():
    task = load_task("coco")
    raw = dict(task.raw)
    raw["demo"] = dict(raw["demo"], split=["train", "restval"])
    from flamingo_eval.task import parse_task

    both = load_split(parse_task(raw, "coco-with-restval.yaml"), "demo", DATA)
    assert len(both) == 15 and set(split("coco", "demo").ids) < set(both.ids)


def test_flickr_ids_are_file_stems_in_one_image_folder():
    ev = split("flickr30k", "eval")
    assert all(s.id.isdigit() and s.image.key == f"flickr30k/flickr30k-images/{s.id}.jpg" for s in ev)


@pytest.mark.parametrize("task", ["coco", "flickr30k"])
def test_caption_sample_ids_are_the_reference_keys(task):
    refs = load_references(load_task(task), DATA)
    for s in split(task, "eval"):
        assert refs[s.id] == list(s.answers)


def test_vqa_pairs_questions_and_annotations_by_question_id_not_position():
    # the fixture's train annotations are stored in reverse order
    s = split("vqav2", "demo")
    first = s[0]
    assert first.id == "9000" and first.question == "What colour is the shape?"
    assert first.answers == ("red", "red", "Red", "red.", "red", "pink", "red", "red", "orange", "red")
    assert first.image.key == "coco/train2014/COCO_train2014_000000000009.jpg"


def test_vqav2_and_okvqa_share_coco_image_keys():
    vqa = {s.image.key for s in split("vqav2", "eval")}
    ok = {s.image.key for s in split("okvqa", "eval")}
    coco = {s.image.key for s in split("coco", "eval")}
    assert vqa == ok <= coco


def test_okvqa_answers_are_the_stemmed_answer_field_not_raw_answer():
    (shape,) = [s for s in split("okvqa", "demo") if s.question == "What shape is it?"]
    assert shape.answers[:3] == ("square", "square", "square")  # raw_answer says "squares"


def test_vizwiz_image_id_is_the_file_name_and_answers_keep_unanswerable():
    ev = split("vizwiz", "eval")
    assert ev[0].image.key == "vizwiz/val/VizWiz_val_00000000.jpg"
    demo = split("vizwiz", "demo")
    assert demo[0].answers.count("unanswerable") == 9 and len(demo[0].answers) == 10


def test_textvqa_formats_hex_image_ids_and_keeps_val_question_ids():
    ev = split("textvqa", "eval")
    assert ev.ids[0] == "34602"
    assert ev[0].image.key == "textvqa/train_images/003a8ae2ef43cfe7.jpg"
    assert ev[0].question == "what shape is it?"


def test_memes_keep_text_label_and_the_img_path_with_its_leading_zero():
    demo = split("hateful_memes", "demo")
    first = demo[0]
    assert (first.id, first.label, first.text) == ("1235", 0, "when you finally finish the project")
    assert first.image.key == "hateful_memes/img/01235.png"
    assert {s.label for s in split("hateful_memes", "eval")} == {0, 1}


def test_memes_evaluate_test_seen_by_default_and_dev_seen_through_the_variant():
    assert split("hateful_memes", "eval").ids == ["8291", "46971", "10492", "31579", "5462", "91768"]
    assert split("hateful_memes:dev_seen", "eval").ids == ["10492", "31579", "5462", "91768"]


def test_phase_one_dev_jsonl_is_read_through_data(tmp_path):
    """Phase 1 shipped dev.jsonl (same {id, img, label, text} lines) where phase 2 has dev_seen.jsonl."""
    dev = tmp_path / "dev.jsonl"
    dev.write_text((DATA / "hateful_memes/test_seen.jsonl").read_text())
    ev = load_split(load_task("hateful_memes:dev_seen"), "eval", DATA, {"dev_seen": str(dev)})
    assert ev.ids == split("hateful_memes", "eval").ids and {s.label for s in ev} == {0, 1}
    assert ev[0].image.path == str(DATA / "hateful_memes/img/08291.png")
