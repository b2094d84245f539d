"""VL-ICL's demonstrations and prompt, reproduced: after ``random.seed(0)`` VL-ICL draws, for each shot count
of its run in order and each query in file order, ``random.sample(support, n)`` (open_mi: one other class by
``random.choice`` and the order by ``random.choice([True, False])``). The oracle below replays that loop with
Python's global ``random``, as VL-ICL's scripts do; the selector must give the same demonstrations."""

import json
import random
from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.demos.vlicl import VliclSelector, demonstrations_per_prompt, with_description
from flamingo_eval.errors import DataError
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.prompt_builder import build_prompt
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"
OPERATOR = {"+": 0, "-": 1, "x": 2}


def oracle(dataset, shots, seed=0):
    """{(n, query index): [(image paths, question, answer), ...]} the way VL-ICL's I2T_inference.py draws them."""
    queries = json.loads((DATA / "vlicl" / dataset / "query.json").read_text())
    support = [] if dataset == "open_mi" else json.loads((DATA / "vlicl" / dataset / "support.json").read_text())
    random.seed(seed)
    out = {}
    for n in shots:
        for qi, q in enumerate(queries):
            if dataset == "open_mi":
                other = random.choice([c for c in q["classes"] if c != q["answer"]])
                order = [q["answer"], other] if random.choice([True, False]) else [other, q["answer"]]
                demos = [([q["support"][c]["images"][i]], "This is a", c) for i in range(n) for c in order]
            elif dataset == "matching_mi":
                demos = [(s[p]["image"], s[p]["question"], s[p]["answer"]) for s in random.sample(support, n)
                         for p in ("same", "diff")]
            elif dataset.startswith("operator_induction"):
                demos = [(s["image"], s["question"], str(s["answer"][OPERATOR[q["operator"]]]))
                         for s in random.sample(support, n)]
            else:
                demos = [(s["image"], s["question"], str(s["answer"])) for s in random.sample(support, n)]
            out[(n, qi)] = demos
    return out


def selected(task_name, shots, seed=0):
    task = load_task(task_name)
    paths = task.data_paths(DATA)
    selector = VliclSelector(task, paths, seed, shots)
    queries = load_split(task, "eval", DATA)
    prefix = f"{task.files['images']}/"
    out = {}
    for n in shots:
        for q in queries:
            out[(n, int(q.id))] = [([im.key.removeprefix(prefix) for im in (d.sample.image, *d.sample.more_images)],
                                    d.sample.question, d.sample.answers[0]) for d in selector.select(q, n)]
    return out


@pytest.mark.parametrize("dataset", ["clevr", "operator_induction", "operator_induction_interleaved", "textocr",
                                     "open_mi", "matching_mi"])
def test_the_demonstrations_are_those_vlicl_draws_from_seed_0(dataset):
    shots = load_task(f"vlicl_{dataset}").raw["vlicl"]["shots"]
    assert selected(f"vlicl_{dataset}", shots) == oracle(dataset, shots)


def test_a_shot_count_gets_the_same_demonstrations_whichever_others_are_run():
    alone = selected("vlicl_clevr", [4])
    assert alone[(4, 0)] == oracle("clevr", [0, 1, 2, 4, 8])[(4, 0)]
    assert selected("vlicl_clevr", [8, 4])[(4, 0)] == alone[(4, 0)]


def test_other_seeds_draw_other_demonstrations():
    seed1 = oracle("textocr", [0, 1, 2, 4, 8], seed=1)
    assert selected("vlicl_textocr", [4], seed=1) == {k: v for k, v in seed1.items() if k[0] == 4}
    assert selected("vlicl_textocr", [4], seed=1) != selected("vlicl_textocr", [4])


def test_two_way_and_pair_tasks_show_two_demonstrations_per_shot():
    assert demonstrations_per_prompt(load_task("vlicl_open_mi"), 5) == 10
    assert demonstrations_per_prompt(load_task("vlicl_matching_mi"), 2) == 4
    assert demonstrations_per_prompt(load_task("vlicl_clevr"), 4) == 4


def test_more_shots_than_the_data_holds_is_one_clear_line():
    task = load_task("vlicl_clevr")
    with pytest.raises(DataError, match="9 shots need 9 support records"):
        VliclSelector(task, task.data_paths(DATA), 0, [9])
    task = load_task("vlicl_open_mi")
    with pytest.raises(DataError, match="6 shots need 6 support images per class"):
        VliclSelector(task, task.data_paths(DATA), 0, [6])


@pytest.mark.parametrize("level, instruction", [
    ("nothing", ""), ("concise", "Induce the mathematical operator between the two images and calculate the result."),
])
def test_openflamingo_sees_vlicl_own_prompt(level, instruction):
    """VL-ICL's OpenFlamingo prompt: the task description and a newline, per demonstration one <image> per image
    and "{question}\\nAnswer: {answer}<|endofchunk|>", then the query's images and "{question}\\nAnswer:"."""
    (name,) = with_description(["vlicl_operator_induction_interleaved"], level)
    task = load_task(name)
    selector = VliclSelector(task, task.data_paths(DATA), 0, [2])
    query = load_split(task, "eval", DATA)[1]
    demos = selector.select(query, 2)
    expected = f"{instruction}\n" + "".join(
        f"<image><image>{d.sample.question}\nAnswer: {d.sample.answers[0]}<|endofchunk|>" for d in demos)
    expected += f"<image><image>{query.question}\nAnswer:"
    prompt = build_prompt(task, [d.sample for d in demos], query)
    assert render(prompt) == expected
    assert [len(c.images) for c in prompt] == [2, 2, 2]


def test_the_description_level_picks_the_variant_of_vlicl_tasks_only():
    assert with_description(["vlicl_clevr", "coco"], "detailed") == ["vlicl_clevr:detailed", "coco"]
    assert with_description(["vlicl_clevr"], "nothing") == ["vlicl_clevr"]
