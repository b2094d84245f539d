"""Model-free baselines and copies: what the demonstrations alone score with the task's metric, and which
demonstration (if any) the model's answer repeats; a result's baselines recompute from its samples file."""

import json
from collections import Counter

import pytest

from flamingo_eval.baselines import baseline_answers, copied, mean_baselines, normalise
from flamingo_eval.metrics import compute_metric
from flamingo_eval.runner import RunConfig, Runner
from flamingo_eval.task import load_task
from flamingo_eval.toy import Sizes, generate


@pytest.fixture(scope="module")
def tasks():
    return {name: load_task(name) for name in ("vqav2", "coco", "hateful_memes")}


def test_vqa_majority_is_the_most_frequent_normalised_answer_ties_to_the_later(tasks):
    vqa = tasks["vqav2"]
    assert baseline_answers(vqa, ["two", "red", "2", "blue"]) == {"majority": "2", "last": "blue"}
    assert baseline_answers(vqa, ["red", "blue", "red", "blue"])["majority"] == "blue"
    assert baseline_answers(vqa, ["red", "Blue", "green"])["majority"] == "green"


def test_caption_majority_is_the_most_similar_under_rices_and_the_last_under_random(tasks):
    coco = tasks["coco"]
    caps = ["a red square", "two blue circles", "a green star"]
    assert baseline_answers(coco, caps) == {"majority": "a green star", "last": "a green star"}
    assert baseline_answers(coco, caps, [0.9, 0.5, 0.1])["majority"] == "a red square"
    assert baseline_answers(coco, caps, [0.2, 0.5, 0.5])["majority"] == "a green star"  # a tie: the later


def test_classification_baselines_are_the_positive_vote_share_and_the_last_label(tasks):
    memes = tasks["hateful_memes"]
    assert baseline_answers(memes, ["yes", "no", "no", "yes"]) == {"majority": 0.5, "last": 1.0}
    assert baseline_answers(memes, ["yes", "yes", "no", "no"]) == {"majority": 0.5, "last": 0.0}
    assert baseline_answers(memes, ["no", "no", "no", "yes"])["majority"] == 0.25


def test_copied_is_the_latest_demonstration_the_answer_equals_after_normalisation(tasks):
    vqa, coco, memes = tasks["vqav2"], tasks["coco"], tasks["hateful_memes"]
    assert copied(vqa, ["two", "red", "2", "blue"], "2") == 2
    assert copied(vqa, ["two", "red", "blue"], " Red.") == 1
    assert copied(vqa, ["two", "red"], "green") is None
    assert copied(coco, ["A red square.", "a blue circle"], "a red  square") == 0
    assert copied(memes, ["yes", "no", "no"], 0.8) == 0 and copied(memes, ["yes", "no", "no"], 0.2) == 2
    assert normalise(vqa, "Two Dogs") == "2 dogs"


def test_a_result_without_baselines_in_a_trial_has_none():
    assert mean_baselines([{"majority": 1.0, "last": 3.0}, {"majority": 3.0, "last": 5.0}]) == {
        "majority": 2.0, "last": 4.0}
    assert mean_baselines([{"majority": 1.0}, None]) is None


# ---- a result's baselines recompute from its samples file -----------------------------------------------

@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate(root, seed=5, sizes=Sizes(train=24, eval=24))
    return root


@pytest.fixture(scope="module")
def of_toy():
    from flamingo_eval.models import load_model

    return load_model("of-toy")


def _recomputed(task, samples):
    """The baselines from the samples' selected demonstration answers, by the rules written out again."""
    answers = {"majority": {}, "last": {}}
    for s in samples:
        demo = s["demo_answers"]
        if task.kind == "classification":
            answers["majority"][s["id"]] = sum(a == task.options[1] for a in demo) / len(demo)
            answers["last"][s["id"]] = 1.0 if demo[-1] == task.options[1] else 0.0
            continue
        if task.kind == "caption":
            sims = s["similarities"] or [0.0] * len(demo)
            best = max(i for i in range(len(demo)) if sims[i] == max(sims))
        else:
            counts = Counter(normalise(task, a) for a in demo)
            top = max(counts.values())
            best = max(i for i, a in enumerate(demo) if counts[normalise(task, a)] == top)
        answers["majority"][s["id"]] = demo[best].replace('"', "") if task.kind == "caption" else demo[best]
        answers["last"][s["id"]] = demo[-1].replace('"', "") if task.kind == "caption" else demo[-1]
    refs = {s["id"]: s["references"] for s in samples}
    return {k: compute_metric(task.metric, a, refs).score for k, a in answers.items()}


@pytest.mark.parametrize("task_name,rices", [("vqav2", False), ("hateful_memes", False), ("coco", True)])
def test_the_baselines_in_a_result_equal_a_recomputation_from_its_samples(of_toy, toy_root, tmp_path, tasks,
                                                                            task_name, rices):
    from flamingo_eval.toy.demo import RICES_ENCODER

    config = RunConfig(model="of-toy", tasks=[task_name], shots=[4], seeds=[42], rices=rices, num_samples=10,
                       rices_encoder=RICES_ENCODER, rices_pretrained=None, batch_size=10, data_root=str(toy_root),
                       output_dir=str(tmp_path), progress=False)
    (result,) = Runner(config, model=of_toy).run()
    samples = [json.loads(x) for x in (tmp_path / "of-toy" / result["samples_file"]).read_text().splitlines()]
    task = tasks[task_name]
    again = _recomputed(task, samples)
    assert result["baselines"]["majority"] == pytest.approx(again["majority"])
    assert result["baselines"]["last"] == pytest.approx(again["last"])
    copies = [s["copied"] for s in samples]
    assert all(c is None or 0 <= c < 4 for c in copies)
    for s in samples:  # "copied" names a demonstration whose shown answer the output equals
        if s["copied"] is not None and task.kind != "classification":
            assert normalise(task, s["chunks"][s["copied"]]["answer"]) == normalise(task, s["answer"])
    assert result["baselines"]["copy_rate"] == pytest.approx(100 * sum(c is not None for c in copies) / len(copies))
    assert result["baselines"]["copy_last_rate"] == pytest.approx(100 * copies.count(3) / len(copies))


def test_a_prompt_without_demonstrations_has_no_baselines():
    from flamingo_eval.baselines import trial_baselines
    from flamingo_eval.task import load_task

    rows = [{"id": "1", "answer": "3", "demo_answers": [], "chunks": [{"image": "q", "text": "Q"}]}]
    assert trial_baselines(load_task("vqav2"), rows, {"1": ["3"]}) is None


def test_imagenet_baselines_are_the_majority_and_last_class_as_top1_predictions(tmp_path):
    from flamingo_eval.task import with_options

    task = load_task("imagenet")
    names = tmp_path / "names.txt"
    names.write_text("tench\ngoldfish\nshark\n")
    task = with_options(task, task.data_paths(tmp_path, {"classnames": str(names)}))
    assert baseline_answers(task, ["goldfish", "shark", "goldfish", "tench"]) == {"majority": [1], "last": [0]}
    assert baseline_answers(task, ["shark", "tench"])["majority"] == [0]  # a tie goes to the later one
    assert copied(task, ["goldfish", "shark", "tench"], [2, 0]) == 1
    assert copied(task, ["goldfish", "tench"], [2, 0]) is None
