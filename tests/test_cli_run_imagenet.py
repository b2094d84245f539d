"""`flamingo-eval run --model of-toy --task imagenet --shots 0 4` end to end on a 4-class ImageFolder
fixture: top-1 and top-5 in the result, `score` re-scoring the run's top-5 lists, prompt ensembling recorded;
a tree of some ImageNet classes ranked over the packaged 1000 names, and one clear line when the class list
cannot name the data's classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flamingo_eval
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


def test_a_tree_of_some_imagenet_classes_keeps_their_labels_and_ranks_all_1000_names(ran, tmp_path):
    """The fixture's folders are the first four WordNet ids: with the packaged names, labels 0-3 of 1000."""
    root, _, _ = ran
    code = main(["run", "--model", "of-toy", "--task", "imagenet", "--shots", "4", "--num-samples", "3",
                 "--data-root", str(root), "--output-dir", str(tmp_path), "--quiet"])
    assert code == 0
    samples = [json.loads(x) for x in (tmp_path / "of-toy" / "imagenet_4shot_random.samples.jsonl").read_text().splitlines()]
    assert {s["references"] for s in samples} <= {0, 1, 2, 3} and all(len(s["answer"]) == 5 for s in samples)
    packaged = [x for x in (Path(flamingo_eval.__file__).parent / "data" / "imagenet_classnames.txt").read_text()
                .splitlines() if not x.startswith("#")]
    assert {d["text"].removeprefix("Output:") for s in samples for d in s["chunks"][:-1]} <= set(packaged[:4])


def test_folders_that_are_not_imagenet_classes_need_their_own_names_in_one_line(tmp_path, capsys):
    make_imagenet(tmp_path)
    for split in ("train", "val"):
        for i, folder in enumerate(sorted((tmp_path / "imagenet" / split).iterdir())):
            folder.rename(folder.parent / f"class_{i}")
    code = main(["run", "--model", "of-toy", "--task", "imagenet", "--shots", "0", "--data-root", str(tmp_path),
                 "--output-dir", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "4 class folders" in err and "'class_0'" in err and "--data classnames=PATH" in err
