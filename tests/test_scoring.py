"""`flamingo-eval score`: re-score official-format prediction files without a model; bad input is one line."""

import json
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.data import load_split
from flamingo_eval.metrics.vqa import vqa_accuracy
from flamingo_eval.task import load_task

FIXTURES = str(Path(__file__).parent / "fixtures" / "data")


def eval_items(task):
    return list(load_split(load_task(task), "eval", FIXTURES))


def run_score(tmp_path, task, rows, *extra):
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(rows))
    out = tmp_path / "out.json"
    code = main(["score", "--task", task, "--predictions", str(pred), "--data-root", FIXTURES,
                 "--output", str(out), *extra])
    return code, (json.loads(out.read_text()) if out.exists() else None)


def test_vqa_predictions_score_like_the_metric_on_the_split(tmp_path):
    items = eval_items("vqav2")
    rows = [{"question_id": int(s.id), "answer": s.answers[0] if i % 2 else "nonsense"} for i, s in enumerate(items)]
    code, out = run_score(tmp_path, "vqav2", rows)
    expected = vqa_accuracy({str(r["question_id"]): r["answer"] for r in rows}, {s.id: s.answers for s in items})
    assert code == 0
    assert out["task"] == "vqav2" and out["metric"] == "vqa_accuracy" and out["n"] == len(items)
    assert out["score"] == pytest.approx(expected.score) and 0 < out["score"] < 100
    assert set(out["per_item"]) == {s.id for s in items}


def test_caption_predictions_that_copy_a_reference_beat_wrong_ones(tmp_path):
    from flamingo_eval.data import load_references

    refs = load_references(load_task("coco"), FIXTURES)
    items = eval_items("coco")
    good = [{"image_id": int(s.id), "caption": refs[s.id][0]} for s in items]
    bad = [{"image_id": int(s.id), "caption": "zebra zebra zebra"} for s in items]
    _, good_out = run_score(tmp_path, "coco", good)
    _, bad_out = run_score(tmp_path, "coco", bad)
    assert good_out["score"] > bad_out["score"] >= 0


def test_memes_probabilities_give_auc_100_when_they_order_the_labels(tmp_path):
    items = eval_items("hateful_memes")
    rows = [{"id": int(s.id), "proba": 0.9 if s.label == 1 else 0.1} for s in items]
    code, out = run_score(tmp_path, "hateful_memes", rows)
    assert code == 0 and out["score"] == pytest.approx(100.0)


@pytest.mark.parametrize("rows, message", [
    ("MALFORMED", "not valid JSON"),
    ([{"question_id": 1}], "lacks 'question_id' or 'answer'"),
    ([{"question_id": 999999999, "answer": "x"}], "not in the evaluation split"),
])
def test_bad_prediction_files_get_one_line_and_a_nonzero_exit(tmp_path, capsys, rows, message):
    pred = tmp_path / "pred.json"
    pred.write_text(rows if isinstance(rows, str) else json.dumps(rows))
    code = main(["score", "--task", "vqav2", "--predictions", str(pred), "--data-root", FIXTURES])
    err = capsys.readouterr().err
    assert code != 0 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_prediction_is_an_error(tmp_path, capsys):
    items = eval_items("vqav2")
    rows = [{"question_id": int(s.id), "answer": "yes"} for s in items[1:]]
    code, _ = run_score(tmp_path, "vqav2", rows)
    assert code != 0 and "no prediction for 1 evaluation item" in capsys.readouterr().err


def test_unknown_task_and_missing_files_are_one_line_errors(tmp_path, capsys):
    assert main(["score", "--task", "vqa2", "--predictions", "p.json"]) != 0
    assert "did you mean 'vqav2'" in capsys.readouterr().err
    assert main(["score", "--task", "vqav2", "--predictions", str(tmp_path / "nope.json"), "--data-root", FIXTURES]) != 0
    assert "predictions file not found" in capsys.readouterr().err
    pred = tmp_path / "p.json"
    pred.write_text("[]")
    assert main(["score", "--task", "vqav2", "--predictions", str(pred), "--data-root", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "vqav2/v2_OpenEnded_mscoco_val2014_questions.json" in err and "--data" in err
