"""The official TextVQA and VizWiz files read as they are: recognised by structure, the same samples (and so
the same scores) as OpenFlamingo's vqa_format conversions, accepted under their own names in the default
layout."""

import json
import shutil
from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.data.vqa_native import native_format, read_native
from flamingo_eval.errors import DataError
from flamingo_eval.task import load_task
from tests.helpers_native import FIXTURES, remove_vqa_format, textvqa_native, vizwiz_native, write_native


@pytest.fixture
def native_root(tmp_path):
    """The fixture data with TextVQA and VizWiz only in their official formats and names."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURES, root)
    write_native(root)
    remove_vqa_format(root)
    return root


def samples(task, which, root, overrides=None):
    return [(s.id, s.question, s.answers, s.image.key, s.image.path.replace(str(root), "<root>"))
            for s in load_split(load_task(task), which, root, overrides)]


def test_structure_decides_the_format_not_the_name():
    assert native_format(textvqa_native("val")) == "textvqa"
    assert native_format(vizwiz_native("val")) == "vizwiz"
    assert native_format({"questions": []}) is None
    assert native_format({"data": [], "annotations": []}) is None  # not TextVQA: a VQA-style annotations file


@pytest.mark.parametrize("task", ["textvqa", "vizwiz"])
@pytest.mark.parametrize("which", ["demo", "eval"])
def test_the_default_layout_takes_the_official_files_and_yields_the_same_samples(task, which, native_root):
    converted = samples(task, which, FIXTURES)
    native = samples(task, which, native_root)
    assert native == converted and len(native) in (6, 12)


def test_vizwiz_question_ids_are_positions_in_each_file(native_root):
    ev = load_split(load_task("vizwiz"), "eval", native_root)
    assert ev.ids == [str(i) for i in range(6)]
    assert ev[0].image.key == "vizwiz/val/VizWiz_val_00000000.jpg"


def test_a_native_file_passed_with_data_needs_no_annotations_file(tmp_path):
    native = tmp_path / "TextVQA_0.5.1_val.json"
    native.write_text(json.dumps(textvqa_native("val")))
    got = samples("textvqa", "eval", FIXTURES, {"val_questions": str(native),
                                                "val_annotations": str(tmp_path / "absent.json")})
    assert got == samples("textvqa", "eval", FIXTURES)


def test_vqa_format_questions_with_the_official_file_as_annotations(tmp_path):
    """VizWiz's val.json stands in for OpenFlamingo's annotations: pairing by position-as-question-id holds."""
    native = tmp_path / "val.json"
    native.write_text(json.dumps(vizwiz_native("val")))
    assert samples("vizwiz", "eval", FIXTURES, {"val_annotations": str(native)}) == samples("vizwiz", "eval", FIXTURES)


def test_an_unanswered_official_file_cannot_be_an_annotated_split(tmp_path):
    test = tmp_path / "test.json"
    test.write_text(json.dumps(vizwiz_native("test")))
    with pytest.raises(DataError, match=r"test\.json: 4 of 4 questions have no answers \(a test file\?\)"):
        load_split(load_task("vizwiz"), "eval", FIXTURES, {"val_questions": str(test)})


def test_the_test_dev_variant_reads_the_official_test_file(native_root):
    ev = load_split(load_task("vizwiz:test-dev"), "eval", native_root)
    assert ev.ids == ["0", "1", "2", "3"] and all(s.answers == () for s in ev)
    assert [s.id for s in load_split(load_task("vizwiz:test-dev"), "eval", FIXTURES)] == ev.ids


def test_a_broken_native_entry_names_the_file_and_the_entry(tmp_path):
    doc = vizwiz_native("val")
    del doc[2]["image"]
    path = tmp_path / "val.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"val\.json: entry \[2\] has no 'image' field"):
        read_native(doc, path)


def test_a_file_in_no_known_format_is_one_clear_error(tmp_path):
    path = tmp_path / "q.json"
    path.write_text('{"items": []}')
    with pytest.raises(DataError, match=r"q\.json: neither VQA questions .* TextVQA .* nor VizWiz"):
        load_split(load_task("vizwiz"), "eval", FIXTURES, {"val_questions": str(path)})


def test_missing_annotations_for_vqa_format_questions_use_the_standard_message(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FIXTURES, root)
    (root / "vizwiz/val_annotations_vqa_format.json").unlink()
    with pytest.raises(DataError, match=r"data file 'val_annotations' not found .*vizwiz/val_annotations_vqa_format"
                                        r"\.json or <data-root>/vizwiz/val\.json; point to it with --data"):
        load_split(load_task("vizwiz"), "eval", root)


def test_a_run_on_the_official_files_scores_exactly_as_on_the_conversions(native_root, tmp_path):
    from flamingo_eval.cli import main

    spec = str(Path(__file__).parent / "golden" / "flamingo" / "mpt-x1" / "spec.yaml")
    for name, root in (("converted", FIXTURES), ("native", native_root)):
        assert main(["run", "--model", spec, "--task", "vizwiz", "textvqa", "--shots", "0", "2", "--data-root",
                     str(root), "--output-dir", str(tmp_path / name), "--quiet"]) == 0
    for stem in ("vizwiz_0shot_random", "vizwiz_2shot_random", "textvqa_2shot_random"):
        a, b = (json.loads((tmp_path / n / "mpt-x1" / f"{stem}.json").read_text()) for n in ("converted", "native"))
        assert a["trials"] == b["trials"] and a["n"] == b["n"] == 6
        rows = [[json.loads(x) for x in (tmp_path / n / "mpt-x1" / f"{stem}.samples.jsonl").read_text().splitlines()]
                for n in ("converted", "native")]
        assert [(r["id"], r["prompt"], r["answer"], r["score"]) for r in rows[0]] == \
               [(r["id"], r["prompt"], r["answer"], r["score"]) for r in rows[1]]
