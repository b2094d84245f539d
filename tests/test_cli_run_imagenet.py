"""`flamingo-eval run --model of-toy --task imagenet --shots 0 4` end to end on a 4-class ImageFolder
fixture: top-1 and top-5 in the result, `score` re-scoring the run's top-5 lists, prompt ensembling recorded,
and one clear line when the class list does not match the data."""

from __future__ import annotations

import json

import pytest

from flamingo_eval.cli import main
from tests.imagenet_fixture import make_imagenet


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    names = make_imagenet(root)
    out = root / "runs"
    code = main(["run", "--model", "of-toy", "--task", "imagenet", "--shots", "0", "4", "--data-root", str(root),
                 "--data", f"classnames={names}", "--output-dir", str(out), "--quiet", "--batch-size", "5"])
    assert code == 0
    return root, names, out / "of-toy"


def test_each_shot_count_reports_top1_and_top5(ran):
    _, _, d = ran
    for shots in (0, 4):
        res = json.loads((d / f"imagenet_{shots}shot_random.json").read_text())
        samples = [json.loads(x) for x in (d / res["samples_file"]).read_text().splitlines()]
        assert res["task"]["metric"] == "topk_accuracy" and res["n"] == len(samples) == 12
        assert 0 <= res["mean"] <= res["top5_mean"] == res["trials"][0]["top5"] == 100.0  # 4 classes: all in top 5
        assert res["mean"] == 100.0 * sum(s["answer"][0] == s["references"] for s in samples) / 12
        assert all(sorted(s["answer"]) == [0, 1, 2, 3] for s in samples)
        assert "prompt_ensemble" not in res
    zero = [json.loads(x) for x in (d / "imagenet_0shot_random.samples.jsonl").read_text().splitlines()]
    assert all(c["image"] is None for s in zero for c in s["chunks"][:-1])  # 0 shots: text-only demos


def test_score_rescores_the_top5_lists(ran, tmp_path, capsys):
    root, names, d = ran
    samples = [json.loads(x) for x in (d / "imagenet_4shot_random.samples.jsonl").read_text().splitlines()]
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{"id": s["id"], "top5": s["answer"]} for s in samples]))
    capsys.readouterr()
    assert main(["score", "--task", "imagenet", "--predictions", str(preds), "--data-root", str(root),
                 "--data", f"classnames={names}"]) == 0
    res = json.loads((d / "imagenet_4shot_random.json").read_text())
    assert f"{res['mean']:.2f}" in capsys.readouterr().out


def test_prompt_ensembling_is_recorded(ran, tmp_path):
    root, names, _ = ran
    assert main(["run", "--model", "of-toy", "--task", "imagenet", "--shots", "2", "--num-samples", "2",
                 "--data-root", str(root), "--data", f"classnames={names}", "--output-dir", str(tmp_path),
                 "--quiet", "--prompt-ensemble", "2"]) == 0
    res = json.loads((tmp_path / "of-toy" / "imagenet_2shot_random.json").read_text())
    assert res["prompt_ensemble"] == 2 and res["n"] == 2


def test_the_packaged_1000_names_against_4_class_folders_is_one_line(ran, tmp_path, capsys):
    root, _, _ = ran
    code = main(["run", "--model", "of-toy", "--task", "imagenet", "--shots", "0", "--data-root", str(root),
                 "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "4 classes" in err and "names 1000" in err and "--data classnames=PATH" in err
