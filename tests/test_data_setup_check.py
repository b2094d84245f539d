"""`flamingo-eval data check`: what each task reads, present or missing, split sizes against the published
ones, missing images by name, the command that fixes each problem; exit 1 when anything is missing."""

import shutil

import pytest

from flamingo_eval.cli import main
from flamingo_eval.data_setup.check import check_task
from flamingo_eval.task import load_task
from tests.helpers_eval_benchmark import FIXTURES


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "data"
    shutil.copytree(FIXTURES, r)
    return r


def check(root, *tasks):
    return main(["data", "check", *tasks, "--data-root", str(root)])


def test_a_complete_root_passes(root, capsys):
    assert check(root, "all", "vqav2:test-dev", "vizwiz:test-dev", "hateful_memes:dev_seen") == 0
    out = capsys.readouterr().out
    assert "everything the tasks read is in place" in out and "MISSING" not in out
    assert "images coco/train2014/: all 12 present" in out


def test_a_removed_annotation_file_is_named_with_the_fetch_command(root, capsys):
    (root / "vqav2/v2_mscoco_val2014_annotations.json").unlink()
    assert check(root, "vqav2") == 1
    out = capsys.readouterr().out
    assert "MISSING  vqav2/v2_mscoco_val2014_annotations.json (file 'val_annotations')" in out
    assert f"fix: flamingo-eval data fetch vqav2 --data-root {root}" in out
    assert "demo split: 12 items" in out and "eval split" not in out  # the pool is still checked


def test_removed_images_are_counted_and_named(root, capsys):
    for name in ("COCO_val2014_000000000164.jpg", "COCO_val2014_000000000192.jpg"):
        (root / "coco/val2014" / name).unlink()
    assert check(root, "coco") == 1
    out = capsys.readouterr().out
    assert ("images coco/val2014/: 2 of 6 missing, e.g. coco/val2014/COCO_val2014_000000000164.jpg, "
            "coco/val2014/COCO_val2014_000000000192.jpg") in out
    assert f"fix: flamingo-eval data fetch coco --images --force --data-root {root}" in out
    assert "http://images.cocodataset.org/zips/val2014.zip" in out


def test_an_absent_image_folder_of_a_gated_data_set_gets_its_instructions(root, capsys):
    shutil.rmtree(root / "hateful_memes/img")
    assert check(root, "hateful_memes") == 1
    out = capsys.readouterr().out
    assert "images hateful_memes/: 18 of 18 missing, e.g. hateful_memes/img/01235.png" in out
    assert "hatefulmemeschallenge.com" in out


def test_a_dev_seen_file_missing_points_to_its_source_not_to_fetch(root, capsys):
    (root / "hateful_memes/dev_seen.jsonl").unlink()
    assert check(root, "hateful_memes:dev_seen") == 1
    out = capsys.readouterr().out
    assert "MISSING  hateful_memes/dev_seen.jsonl" in out and "hatefulmemeschallenge.com" in out


def test_split_sizes_are_compared_with_the_published_ones(root):
    findings = {f.what.split(":")[0]: f for f in check_task(load_task("vqav2"), root)}
    assert findings["demo split"].status == "warn" and "published split has 443,757" in findings["demo split"].what


def test_an_unreadable_file_is_a_problem_with_a_forced_fetch_as_fix(root, capsys):
    (root / "coco/dataset_coco.json").write_text("{not json")
    assert check(root, "coco") == 1
    out = capsys.readouterr().out
    assert "unreadable" in out and "dataset_coco.json: not valid JSON" in out
    assert f"flamingo-eval data fetch coco --force --data-root {root}" in out


def test_an_empty_root_reports_everything_and_exits_1(tmp_path, capsys):
    assert check(tmp_path, "textvqa") == 1
    out = capsys.readouterr().out
    assert "textvqa/val_questions_vqa_format.json or textvqa/TextVQA_0.5.1_val.json" in out
    assert "images textvqa/train_images/: folder absent" in out and "train_val_images.zip" in out


def test_unknown_task_is_one_line(tmp_path, capsys):
    assert check(tmp_path, "hateful_memes:dev") != 0
    err = capsys.readouterr().err
    assert "unknown hateful_memes variant 'dev'" in err and "did you mean 'dev_seen'" in err


def test_a_few_missing_coco_images_are_named_with_each_ones_address(root, capsys):
    (root / "coco/train2014/COCO_train2014_000000000009.jpg").unlink()
    assert check(root, "coco") == 1
    out = capsys.readouterr().out
    assert "images coco/train2014/: 1 of 12 missing: coco/train2014/COCO_train2014_000000000009.jpg" in out
    assert (f"fix: download each: curl -fo {root}/coco/train2014/COCO_train2014_000000000009.jpg "
            f"http://images.cocodataset.org/train2014/COCO_train2014_000000000009.jpg") in out
    assert "train2014.zip" not in out  # not the 13.5 GB archive for one image


def test_a_few_missing_images_without_their_own_address_name_the_archive_entry_or_the_instructions(root, capsys):
    gone = sorted((root / "vizwiz/train").iterdir())[0].name
    (root / "vizwiz/train" / gone).unlink()
    assert check(root, "vizwiz") == 1
    out = capsys.readouterr().out
    assert f"fix: extract train/{gone} from https://vizwiz.cs.colorado.edu/VizWiz_final/images/train.zip" in out
    gone = sorted((root / "flickr30k/flickr30k-images").iterdir())[0].name
    (root / "flickr30k/flickr30k-images" / gone).unlink()
    assert check(root, "flickr30k") == 1
    out = capsys.readouterr().out
    assert f"fix: copy {gone} into {root}/flickr30k/flickr30k-images from where they came: Flickr30K images" in out


def test_imagenet_absent_says_it_is_gated_and_the_layout_and_a_fixture_tree_passes(tmp_path, capsys):
    from tests.imagenet_fixture import make_imagenet

    assert check(tmp_path / "empty", "imagenet") == 1
    out = capsys.readouterr().out
    assert out.count("MISSING") == 2 and "ImageNet is gated" in out and "imagenet/val/<wnid>/*.JPEG" in out
    make_imagenet(tmp_path / "tiny")
    assert check(tmp_path / "tiny", "imagenet") == 0
    assert "published split has 50,000" in capsys.readouterr().out


def test_imagenet_fetch_prints_where_to_get_it(tmp_path, capsys):
    assert main(["data", "fetch", "imagenet", "--data-root", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ImageNet is gated" in out and "ILSVRC/imagenet-1k" in out
