"""End to end on of-toy and the fixture data: the tasks that test in-context learning run in one command, their
results say what their protocol did, and `score` re-scores each from its predictions file to the same number."""

import json
import shutil
from pathlib import Path

import pytest

from flamingo_eval.cli import main

FIXTURES = str(Path(__file__).parent / "fixtures" / "data")
TASKS = ["nocaps", "textcaps", "vlicl_clevr", "vlicl_operator_induction_interleaved"]
PREDICTION_FIELDS = {"caption": ("image_id", "caption"), "vqa": ("question_id", "answer")}

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="CIDEr needs Java")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "--model", "of-toy", "--task", *TASKS, "--shots", "0", "4", "--data-root", FIXTURES,
                 "--output-dir", str(out), "--quiet"]) == 0
    return out / "of-toy"


def load(runs, stem):
    res = json.loads((runs / f"{stem}.json").read_text())
    return res, [json.loads(x) for x in (runs / f"{stem}.samples.jsonl").read_text().splitlines()]


def test_nocaps_reports_cider_overall_and_per_domain(runs):
    res, samples = load(runs, "nocaps_4shot_random")
    assert res["n"] == 6 and set(res["groups"]) == {"in-domain", "near-domain", "out-domain"}
    assert res["trials"][0]["groups"] == res["groups"]
    assert all(s["demos"] and all(c["image"].startswith("coco/train2014/") for c in s["chunks"][:-1]) for s in samples)
    assert "groups" not in load(runs, "textcaps_4shot_random")[0]


def test_vlicl_prompts_follow_its_protocol(runs):
    res, samples = load(runs, "vlicl_operator_induction_interleaved_4shot_vlicl")
    assert res["selection"] == {"selection": "vlicl", "seed": 0, "shot_sequence": [0, 1, 2, 4, 8]}
    assert res["seeds"] == [0] and res["demonstrations_per_prompt"] == 4 and not res["zero_shot_text_only_demos"]
    assert res["generation"]["num_beams"] == 1 and res["generation"]["max_new_tokens"] == 15
    s = samples[0]
    assert [len(c["images"]) for c in s["chunks"]] == [2] * 5
    assert s["prompt"].startswith("\n<image><image>") and s["prompt"].count("<image>") == 10
    zero, zero_samples = load(runs, "vlicl_clevr_0shot_vlicl")
    assert zero["demonstrations_per_prompt"] == 0 and all(len(x["chunks"]) == 1 for x in zero_samples)
    assert all("images" not in c for x in zero_samples for c in x["chunks"])  # one image: the record as ever


@pytest.mark.parametrize("task", TASKS)
def test_score_rescores_each_task_from_its_predictions_file(runs, tmp_path, task):
    res, samples = load(runs, f"{task}_4shot_{'vlicl' if task.startswith('vlicl') else 'random'}")
    id_field, answer_field = PREDICTION_FIELDS[res["task"]["kind"]]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{id_field: s["id"], answer_field: s["answer"]} for s in samples]))
    out = tmp_path / "score.json"
    assert main(["score", "--task", task, "--predictions", str(pred), "--data-root", FIXTURES,
                 "--output", str(out)]) == 0
    scored = json.loads(out.read_text())
    assert scored["score"] == pytest.approx(res["mean"], abs=1e-9) and scored["n"] == res["n"]
    assert scored.get("groups") == res.get("groups")


def test_a_detailed_task_description_runs_the_detailed_variant(tmp_path):
    assert main(["run", "--model", "of-toy", "--task", "vlicl_operator_induction", "--shots", "1",
                 "--task-description", "detailed", "--num-samples", "2", "--data-root", FIXTURES,
                 "--output-dir", str(tmp_path), "--quiet"]) == 0
    res, samples = load(tmp_path / "of-toy", "vlicl_operator_induction:detailed_1shot_vlicl")
    assert res["task"]["name"] == "vlicl_operator_induction:detailed"
    assert samples[0]["prompt"].startswith("The image contains two digit numbers and a ? representing")


def test_rices_on_a_vlicl_task_is_one_clear_line(tmp_path, capsys):
    code = main(["run", "--model", "of-toy", "--task", "vlicl_clevr", "--shots", "1", "--rices", "--data-root",
                 FIXTURES, "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "--rices does not apply" in err and "Traceback" not in err
