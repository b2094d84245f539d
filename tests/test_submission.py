"""The test-dev variants: no annotations needed, EvalAI's submission files written (VQAv2 with every test2015
question, VizWiz by image name), answers normalised as the servers expect, and where to upload them."""

import json
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.data import load_split
from flamingo_eval.errors import ConfigError
from flamingo_eval.results import find_results
from flamingo_eval.submission import server_answer, submission_rows
from flamingo_eval.task import load_task, parse_task

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "tests" / "golden" / "flamingo" / "mpt-x1" / "spec.yaml")
FIXTURES = ROOT / "tests" / "fixtures" / "data"


def questions(rel):
    return json.loads((FIXTURES / rel).read_text())["questions"]


def test_answers_are_normalised_as_the_vqa_servers_compare_them():
    assert server_answer(" Two dogs.\n") == "2 dogs"
    assert server_answer("The  red, car!") == "red car"
    assert server_answer("dont know") == "don't know"
    assert server_answer("3.5") == "3.5"


def test_vqav2_rows_cover_every_test2015_question_with_int_ids():
    task = load_task("vqav2:test-dev")
    split = load_split(task, "eval", FIXTURES)
    answers = {s.id: "Yes." for s in split[:4]}  # two test-dev questions left out, as --num-samples would
    rows = submission_rows(task.submission, split, answers, task.data_paths(FIXTURES))
    everything = [q["question_id"] for q in questions("vqav2/v2_OpenEnded_mscoco_test2015_questions.json")]
    assert sorted(r["question_id"] for r in rows) == sorted(everything) and len(rows) == len(everything) == 8
    assert all(isinstance(r["question_id"], int) and set(r) == {"question_id", "answer"} for r in rows)
    by_id = {r["question_id"]: r["answer"] for r in rows}
    assert [by_id[int(s.id)] for s in split] == ["yes"] * 4 + ["", ""]
    testdev = {q["question_id"] for q in questions("vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json")}
    assert all(a == "" for q, a in by_id.items() if q not in testdev)


def test_vizwiz_rows_name_each_test_image_in_file_order():
    task = load_task("vizwiz:test-dev")
    split = load_split(task, "eval", FIXTURES)
    rows = submission_rows(task.submission, split, {s.id: "Unanswerable" for s in split}, task.data_paths(FIXTURES))
    assert rows == [{"image": q["image_id"], "answer": "unanswerable"}
                    for q in questions("vizwiz/test_questions_vqa_format.json")]


def test_the_test_dev_variants_need_no_annotations_and_write_the_submission_files(tmp_path, capsys):
    assert main(["run", "--model", SPEC, "--task", "vqav2:test-dev", "vizwiz:test-dev", "--shots", "2",
                 "--data-root", str(FIXTURES), "--output-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    sub = tmp_path / "mpt-x1" / "submissions"
    vqa = json.loads((sub / "vqav2:test-dev_2shot_random_seed42.json").read_text())
    viz = json.loads((sub / "vizwiz:test-dev_2shot_random_seed42.json").read_text())
    assert len(vqa) == 8 and len(viz) == 4
    logged = {r["id"]: r["answer"] for p in (tmp_path / "mpt-x1" / "items").glob("*.jsonl")
              for r in map(json.loads, p.read_text().splitlines()) if r["id"].isdigit() and int(r["id"]) >= 1000}
    assert len(logged) == 6  # the six test-dev questions, answered once each
    assert {r["question_id"]: r["answer"] for r in vqa if str(r["question_id"]) in logged} == \
           {int(i): server_answer(a) for i, a in logged.items()}
    assert "eval.ai/web/challenges/challenge-page/830" in out and "eval.ai/web/challenges/challenge-page/2185" in out
    assert str(sub / "vqav2:test-dev_2shot_random_seed42.json") in out
    assert not list((tmp_path / "mpt-x1").glob("*test-dev*.json"))  # no score to record
    assert find_results([tmp_path]) == []  # submission files are not results


def test_score_refuses_a_split_without_public_answers(tmp_path, capsys):
    preds = tmp_path / "p.json"
    preds.write_text("[]")
    code = main(["score", "--task", "vqav2:test-dev", "--predictions", str(preds), "--data-root", str(FIXTURES)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "no public answers" in err and "eval.ai" in err


@pytest.mark.parametrize("bad", [{"format": "gqa"}, {"format": "vqav2", "questions": "nope"},
                                 {"format": "vqav2", "extra": 1}])
def test_a_bad_submission_spec_is_rejected(bad):
    raw = dict(load_task("vqav2:test-dev").raw, submission=bad)
    with pytest.raises(ConfigError, match="submission"):
        parse_task(raw, "x.yaml")
