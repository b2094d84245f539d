"""Demonstration controls: each rewrites the plain run's prompt in one way only, as a pure function of
(seed, item id); control runs are selection variants with their own result files and resume on their own."""

import json
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.controls import Control, derangement, selection_record, standard_controls
from flamingo_eval.errors import ConfigError
from flamingo_eval.prompt import Chunk, Image, Prompt
from flamingo_eval.toy import Sizes, generate


def _prompt(answers=("red", "blue", "green", "blue"), keys=None):
    keys = keys or [f"pool/{i}" for i in range(len(answers))]
    demos = [Chunk(image=Image(key=k), text=f"Q{i}? A:{a}", answer=a) for i, (k, a) in enumerate(zip(keys, answers, strict=True))]
    return Prompt([*demos, Chunk(image=Image(key="eval/q"), text="Q? A:")], separator="\n")


def test_the_plain_control_has_no_suffix_and_leaves_the_selection_record_alone():
    sel = {"selection": "random", "seed": 42}
    assert Control().plain and Control().suffix() == "" and selection_record(sel, Control()) is sel
    both = Control(demo_images="none", demo_answers="shuffle")
    assert both.suffix() == "+demo-images-none+demo-answers-shuffle"
    assert selection_record(sel, both)["selection"] == "random+demo-images-none+demo-answers-shuffle"
    assert selection_record(sel, both)["base"] == "random"


def test_demo_images_none_drops_every_demonstration_image_and_keeps_the_text_and_query():
    p = _prompt()
    out = Control(demo_images="none").apply(p, 42, "q")
    assert [c.image for c in out[:-1]] == [None] * 4 and [c.text for c in out] == [c.text for c in p]
    assert out[-1] == p[-1] and out.separator == "\n"


def test_demo_images_shuffle_is_a_derangement_fixed_by_seed_and_item():
    p = _prompt()
    out = Control(demo_images="shuffle").apply(p, 42, "q")
    keys = [c.image.key for c in out[:-1]]
    assert sorted(keys) == sorted(c.image.key for c in p[:-1])
    assert all(k != c.image.key for k, c in zip(keys, p[:-1], strict=True))
    assert [c.text for c in out] == [c.text for c in p]
    assert Control(demo_images="shuffle").apply(p, 42, "q") == out  # a pure function of (seed, item)
    others = {tuple(c.image.key for c in Control(demo_images="shuffle").apply(p, s, i)[:-1])
              for s in range(5) for i in ("q", "r")}
    assert len(others) > 1


def test_demo_answers_shuffle_moves_every_answer_text_it_can_and_keeps_the_questions():
    p = _prompt(("red", "blue", "green", "yellow"))
    out = Control(demo_answers="shuffle").apply(p, 7, "q")
    assert [c.question() for c in out[:-1]] == [c.question() for c in p[:-1]]
    assert sorted(c.answer for c in out[:-1]) == sorted(c.answer for c in p[:-1])
    assert all(a.answer != b.answer and a.text.endswith(a.answer) for a, b in zip(out[:-1], p[:-1], strict=True))
    assert [c.image for c in out] == [c.image for c in p]


def test_equal_answers_shuffle_to_the_same_prompt_and_one_demonstration_is_refused():
    p = _prompt(("yes", "yes", "yes"))
    assert [c.text for c in Control(demo_answers="shuffle").apply(p, 1, "q")] == [c.text for c in p]
    with pytest.raises(ConfigError, match="at least 2"):
        Control(demo_answers="shuffle").apply(_prompt(("yes",)), 1, "q")
    with pytest.raises(ConfigError, match="1 shot"):
        Control(demo_images="shuffle").check("random", [0, 1, 4])


def test_a_derangement_never_fixes_a_position():
    import random

    rng = random.Random(0)
    for n in range(2, 9):
        for _ in range(20):
            p = derangement(n, rng)
            assert sorted(p) == list(range(n)) and all(p[i] != i for i in range(n))


def test_similar_first_reverses_the_demonstrations_and_needs_rices():
    p = _prompt()
    out = Control(order="similar-first").apply(p, 0, "q")
    assert out[:-1] == p[:-1][::-1] and out[-1] == p[-1]
    with pytest.raises(ConfigError, match="needs --rices"):
        Control(order="similar-first").check("random", [4])
    assert Control(order="similar-first") in standard_controls("rices")
    assert Control(order="similar-first") not in standard_controls("random")


# ---- end to end: of-toy on toy data, every control of a RICES run --------------------------------------

@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate(root, seed=3, sizes=Sizes(train=24, eval=24))
    return root


def _controls(root, out, *args):
    return main(["controls", "--model", "of-toy", "--task", "vqav2", "--shots", "4", "--num-samples", "6",
                 "--rices", "--rices-encoder", "toy", "--data-root", str(root), "--output-dir", str(out), "--quiet",
                 *args])


def _read(d: Path, stem: str):
    return (json.loads((d / f"{stem}.json").read_text()),
            {s["id"]: s for s in map(json.loads, (d / f"{stem}.samples.jsonl").read_text().splitlines())})


def _same_demonstrations_but_the_control(folder: Path, stem: str, variants: list[str], k: int) -> dict:
    """Every control's samples name the plain run's demonstrations and change the prompt as the control says;
    returns each control's mean."""
    plain, base = _read(folder, stem)
    assert "control" not in plain["selection"]
    means = {}
    for variant in variants:
        res, rows = _read(folder, f"{stem}+{variant}")
        sel = plain["selection"]["selection"]
        assert res["selection"]["selection"] == f"{sel}+{variant}" and res["selection"]["base"] == sel
        assert res["baselines"]["majority"] == plain["baselines"]["majority"]  # baselines: the selection's
        assert rows.keys() == base.keys()
        for i, row in rows.items():
            b = base[i]
            assert (row["demos"], row["demo_answers"], row["similarities"]) == (
                b["demos"], b["demo_answers"], b["similarities"])
            assert row["chunks"][-1] == b["chunks"][-1]
            demos, plain_demos = row["chunks"][:-1], b["chunks"][:-1]
            if variant == "demo-images-none":
                assert [c["image"] for c in demos] == [None] * k
                assert [c["text"] for c in demos] == [c["text"] for c in plain_demos]
            elif variant == "demo-images-shuffle":
                assert [c["text"] for c in demos] == [c["text"] for c in plain_demos]
                assert sorted(c["image"] for c in demos) == sorted(c["image"] for c in plain_demos)
                assert [c["image"] for c in demos] != [c["image"] for c in plain_demos]
            elif variant == "demo-answers-shuffle":
                assert [c["image"] for c in demos] == [c["image"] for c in plain_demos]
                assert sorted(c["answer"] for c in demos) == sorted(c["answer"] for c in plain_demos)
                assert [c["text"][: -len(c["answer"])] for c in demos] == [
                    c["text"][: -len(c["answer"])] for c in plain_demos]
            else:
                assert demos == plain_demos[::-1]
        means[variant] = res["mean"]
    return means


def _resumes(folder: Path, rerun, stem: str, means: dict) -> None:
    """One item log per control (the run key holds the control); the same command again recomputes nothing."""
    logs = {p: p.read_text() for p in (folder / "items").glob("*.jsonl")}
    assert len(logs) == len(means) + 1
    assert rerun() == 0
    assert {p: p.read_text() for p in (folder / "items").glob("*.jsonl")} == logs
    for variant, mean in means.items():
        assert _read(folder, f"{stem}+{variant}")[0]["mean"] == mean


def test_every_control_runs_on_the_plain_runs_demonstrations_and_resumes(toy_root, tmp_path):
    out = tmp_path / "runs"
    assert _controls(toy_root, out) == 0
    means = _same_demonstrations_but_the_control(
        out / "of-toy", "vqav2_4shot_rices",
        ["demo-images-none", "demo-images-shuffle", "demo-answers-shuffle", "order-similar-first"], 4)
    _resumes(out / "of-toy", lambda: _controls(toy_root, out), "vqav2_4shot_rices", means)


def test_every_control_runs_on_a_tiny_hugging_face_model_and_resumes(tmp_path):
    """The tiny Idefics2 checkpoint on the fixture data: its processor renders the same controlled chunks."""
    from tests.helpers_idefics import BUILDERS

    BUILDERS["idefics2"](tmp_path / "tiny-idefics2" / "model", seed=3)
    spec = tmp_path / "tiny-idefics2" / "spec.yaml"
    spec.write_text("family: idefics2\nmodel: model\n")
    fixtures = Path(__file__).resolve().parent / "fixtures" / "data"

    def controls():
        return main(["controls", "--model", str(spec), "--task", "vqav2", "--shots", "2", "--num-samples", "3",
                     "--data-root", str(fixtures), "--output-dir", str(tmp_path / "runs"), "--quiet"])

    assert controls() == 0
    folder = tmp_path / "runs" / "tiny-idefics2"
    means = _same_demonstrations_but_the_control(
        folder, "vqav2_2shot_random", ["demo-images-none", "demo-images-shuffle", "demo-answers-shuffle"], 2)
    plain = _read(folder, "vqav2_2shot_random")[1]
    rows = _read(folder, "vqav2_2shot_random+demo-images-none")[1]
    for i, r in rows.items():  # the rendered prompt holds the query's image alone: a third of the image tokens
        assert 3 * r["prompt"].count("<image>") == plain[i]["prompt"].count("<image>") > 0
    _resumes(folder, controls, "vqav2_2shot_random", means)


def test_controls_that_cannot_apply_are_one_line(toy_root, tmp_path, capsys):
    code = main(["run", "--model", "of-toy", "--task", "vqav2", "--shots", "4", "--order", "similar-first",
                 "--data-root", str(toy_root), "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "similar-first needs --rices" in err and len(err.splitlines()) == 1
    code = main(["controls", "--model", "of-toy", "--task", "vqav2", "--shots", "4", "--demo-images", "none",
                 "--data-root", str(toy_root), "--output-dir", str(tmp_path), "--quiet"])
    assert code != 0 and "controls runs the plain run and every control itself" in capsys.readouterr().err
