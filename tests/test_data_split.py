"""load_split: the Split API, the Arrow cache keyed by content, and one-line DataErrors for bad data."""

import json
import shutil
from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.data import vqa as vqa_reader
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture
def root(tmp_path):
    """A private copy of the fixture annotation files (images are not needed to parse)."""
    for folder in ("vqav2", "vizwiz", "hateful_memes", "coco"):
        shutil.copytree(DATA / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.jpg", "*.png"))
    return tmp_path


def count_parses(monkeypatch) -> list:
    calls = []
    real = vqa_reader.read

    def spy(ctx):
        calls.append(ctx.which)
        return real(ctx)

    monkeypatch.setattr(vqa_reader, "read", spy)
    return calls


def test_split_is_a_sequence_with_ids_index_of_and_slices():
    s = load_split(load_task("vqav2"), "eval", DATA)
    assert len(s) == 6 and s.ids == [x.id for x in s]
    assert s.index_of(s.ids[4]) == 4 and s[4].id == s.ids[4]
    assert s[-1].id == s.ids[-1]
    assert [x.id for x in s[1:3]] == s.ids[1:3]
    with pytest.raises(IndexError):
        s[6]
    with pytest.raises(KeyError, match="vqav2/eval"):
        s.index_of("no-such-id")


def test_second_load_reads_the_cache_without_parsing(monkeypatch, root):
    calls = count_parses(monkeypatch)
    task = load_task("vqav2")
    first = load_split(task, "eval", root)
    second = load_split(task, "eval", root)
    assert calls == ["eval"]
    assert second.fingerprint == first.fingerprint and list(second) == list(first)


def test_a_changed_annotation_file_is_parsed_again(monkeypatch, root):
    calls = count_parses(monkeypatch)
    task = load_task("vqav2")
    before = load_split(task, "eval", root)
    path = root / "vqav2/v2_mscoco_val2014_annotations.json"
    doc = json.loads(path.read_text())
    doc["annotations"][0]["answers"][0]["answer"] = "a much longer first answer"
    path.write_text(json.dumps(doc))
    after = load_split(task, "eval", root)
    assert calls == ["eval", "eval"]
    assert after.fingerprint != before.fingerprint
    assert after[0].answers[0] == "a much longer first answer"


def test_the_fingerprint_depends_on_contents_not_on_where_the_files_are(root):
    task = load_task("vqav2")
    here = load_split(task, "demo", root)
    there = load_split(task, "demo", DATA)
    assert here.fingerprint == there.fingerprint
    assert here[0].image.key == there[0].image.key  # keys never depend on --data-root
    assert here[0].image.path != there[0].image.path


def test_overrides_point_one_file_elsewhere(tmp_path):
    moved = tmp_path / "q.json"
    shutil.copy(DATA / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", moved)
    s = load_split(load_task("vqav2"), "eval", DATA, {"val_questions": str(moved)})
    assert s.ids == load_split(load_task("vqav2"), "eval", DATA).ids


def test_missing_file_names_the_key_the_default_path_and_the_override(tmp_path):
    with pytest.raises(DataError) as e:
        load_split(load_task("vqav2"), "demo", tmp_path)
    msg = str(e.value)
    assert "train_questions" in msg and str(tmp_path / "vqav2") in msg
    assert "<data-root>/vqav2/v2_OpenEnded_mscoco_train2014_questions.json" in msg
    assert "--data train_questions=PATH" in msg and "\n" not in msg


def test_malformed_json_names_the_file(root):
    path = root / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(DataError, match=r"v2_OpenEnded_mscoco_val2014_questions\.json: not valid JSON"):
        load_split(load_task("vqav2"), "eval", root)


def test_a_missing_field_names_the_file_the_entry_and_the_field(root):
    path = root / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"
    doc = json.loads(path.read_text())
    del doc["questions"][2]["image_id"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"questions\.json: questions\[2\] has no 'image_id' field"):
        load_split(load_task("vqav2"), "eval", root)


def test_questions_without_annotations_are_an_error(root):
    path = root / "vqav2/v2_mscoco_val2014_annotations.json"
    doc = json.loads(path.read_text())
    dropped = doc["annotations"].pop(1)["question_id"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=rf"annotations\.json: no annotations for 1 of 6 questions .*{dropped}"):
        load_split(load_task("vqav2"), "eval", root)


def test_an_image_id_that_does_not_fit_the_image_file_template_is_an_error(root):
    path = root / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"
    doc = json.loads(path.read_text())
    doc["questions"][0]["image_id"] = "VizWiz_val_00000000.jpg"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="does not fit the task's image_file"):
        load_split(load_task("vqav2"), "eval", root)


def test_an_empty_split_is_an_error(root):
    (root / "hateful_memes/test_seen.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"test_seen\.jsonl: no memes"):
        load_split(load_task("hateful_memes"), "eval", root)


def test_a_karpathy_split_name_that_selects_nothing_lists_the_splits_present(root):
    from flamingo_eval.task import parse_task

    raw = dict(load_task("coco").raw)
    raw["eval"] = dict(raw["eval"], split="testing")
    with pytest.raises(DataError, match=r"no images with split 'testing' \(splits present: restval, test, train, val\)"):
        load_split(parse_task(raw, "bad.yaml"), "eval", root)


def test_a_bad_jsonl_line_names_the_file_and_line(root):
    path = root / "hateful_memes/train.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:-1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train\.jsonl: line 4 is not valid JSON"):
        load_split(load_task("hateful_memes"), "demo", root)


def test_a_meme_label_other_than_0_or_1_is_an_error(root):
    path = root / "hateful_memes/train.jsonl"
    path.write_text(path.read_text().replace('"label": 1', '"label": "hateful"', 1))
    with pytest.raises(DataError, match=r"train\.jsonl: line \d+ has label 'hateful'"):
        load_split(load_task("hateful_memes"), "demo", root)


def test_which_must_be_demo_or_eval():
    with pytest.raises(ConfigError, match="demo, eval"):
        load_split(load_task("vqav2"), "train", DATA)


def test_a_pickled_split_re_maps_its_cached_table():
    import pickle

    s = load_split(load_task("okvqa"), "demo", DATA)
    blob = pickle.dumps(s)
    assert len(blob) < 5000  # the table's bytes stay in the cache
    back = pickle.loads(blob)
    assert back.ids == s.ids and back[3] == s[3] and back.index_of(s.ids[5]) == 5


def test_a_damaged_cache_entry_is_rebuilt(monkeypatch, root):
    from flamingo_eval.data.store import split_dir

    calls = count_parses(monkeypatch)
    task = load_task("vqav2")
    first = load_split(task, "eval", root)
    for arrow in split_dir(first.fingerprint).glob("*.arrow"):
        arrow.write_bytes(b"not arrow")
    again = load_split(task, "eval", root)
    assert calls == ["eval", "eval"] and again.ids == first.ids
