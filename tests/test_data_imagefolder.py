"""The ImageFolder reader (data/imagefolder.py): labels in sorted class-folder order of the train tree,
the 10-per-class subset, and one clear line for a missing (gated) tree."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.errors import DataError
from flamingo_eval.task import load_task
from tests.imagenet_fixture import WNIDS, make_imagenet


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMINGO_EVAL_CACHE", str(tmp_path / "cache"))
    make_imagenet(tmp_path)
    return tmp_path


def test_labels_follow_the_sorted_class_folders_of_the_train_tree(root):
    task = load_task("imagenet")
    train = load_split(task, "demo", root)
    assert len(train) == 4 * 5
    assert {s.id.split("/")[0]: s.label for s in train} == {w: i for i, w in enumerate(WNIDS)}
    val = load_split(task, "eval", root)
    assert val[0].image.key.startswith("imagenet/val/") and val[0].image.path.endswith(".JPEG")


def test_a_validation_tree_without_a_class_does_not_shift_the_labels(root):
    shutil.rmtree(root / "imagenet" / "val" / WNIDS[1])
    val = load_split(load_task("imagenet"), "eval", root)
    assert sorted({s.label for s in val}) == [0, 2, 3]


def test_the_10k_variant_keeps_a_fixed_number_per_class(root):
    task = load_task("imagenet:10k")
    assert task.eval.options["per_class"] == 10
    small = replace(task, eval=replace(task.eval, options={**task.eval.options, "per_class": 2}))
    first = [s.id for s in load_split(small, "eval", root)]
    assert len(first) == 4 * 2 and first == [s.id for s in load_split(small, "eval", root)]


def test_the_10k_variant_picks_the_same_files_whatever_the_class_folders_are_named(root):
    """An unpacked Hugging Face tree (folders 0000, 0001, ...) keeps the same images as the WordNet-id tree."""
    small = lambda t: replace(t, eval=replace(t.eval, options={**t.eval.options, "per_class": 2}))  # noqa: E731
    task = small(load_task("imagenet:10k"))
    by_wnid = [(s.label, s.id.split("/")[1]) for s in load_split(task, "eval", root)]
    for split in ("train", "val"):
        for i, wnid in enumerate(WNIDS):
            (root / "imagenet" / split / wnid).rename(root / "imagenet" / split / f"{i:04d}")
    by_label = [(s.label, s.id.split("/")[1]) for s in load_split(task, "eval", root)]
    assert by_label == by_wnid


def test_the_listing_is_the_fingerprint(root):
    task = load_task("imagenet")
    before = load_split(task, "eval", root)
    (root / "imagenet" / "val" / WNIDS[0] / "ILSVRC2012_val_00000000.JPEG").unlink()
    after = load_split(task, "eval", root)
    assert len(after) == len(before) - 1


def test_a_missing_tree_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMINGO_EVAL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="gated.*imagenet/\\{train,val\\}/<wnid>"):
        load_split(load_task("imagenet"), "eval", tmp_path)


def test_an_imagenet_class_keeps_its_label_in_a_tree_of_some_classes(root):
    """With the packaged 1000 names, a folder's label is its WordNet id's place among ImageNet-1k's classes
    (n15075141 is the last, 999) or the number of a label folder (0500), not its place among the folders."""
    for split in ("train", "val"):
        (root / "imagenet" / split / WNIDS[3]).rename(root / "imagenet" / split / "n15075141")
        (root / "imagenet" / split / WNIDS[2]).rename(root / "imagenet" / split / "0500")
    labels = {s.id.split("/")[0]: s.label for s in load_split(load_task("imagenet"), "eval", root)}
    assert labels == {WNIDS[0]: 0, WNIDS[1]: 1, "0500": 500, "n15075141": 999}


def test_a_class_list_of_another_length_labels_the_folders_in_sorted_order(root):
    names = root / "names.txt"
    names.write_text("a\nb\nc\nd\n")
    split = load_split(load_task("imagenet"), "demo", root, {"classnames": str(names)})
    assert {s.id.split("/")[0]: s.label for s in split} == {w: i for i, w in enumerate(WNIDS)}
    names.write_text("a\nb\nc\n")
    with pytest.raises(DataError, match="4 class folders.*names 3 classes.*--data classnames=PATH"):
        load_split(load_task("imagenet"), "demo", root, {"classnames": str(names)})
