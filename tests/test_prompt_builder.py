"""Prompt builder: OpenFlamingo's prompts (protocol 3.3) per task kind, checked against committed snapshots.

Regenerate the snapshots after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/test_prompt_builder.py``.
"""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.data.sample import Sample
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.prompt import Image
from flamingo_eval.prompt_builder import build_prompt, effective_shots
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"
SNAPSHOTS = Path(__file__).parent / "snapshots" / "prompts"
SEVEN = ["coco", "flickr30k", "hateful_memes", "okvqa", "textvqa", "vizwiz", "vqav2"]


def image(name: str) -> Image:
    return Image(key=f"t/{name}", path=f"/x/{name}")


def test_zero_shots_means_two_demonstrations_otherwise_as_many_as_shots():
    assert [effective_shots(s) for s in (0, 1, 4, 32)] == [2, 1, 4, 32]
    with pytest.raises(ConfigError):
        effective_shots(-1)


def test_caption_prompt_strips_the_first_caption_and_ends_with_the_query_image():
    task = load_task("coco")
    demos = [Sample("1", image("a"), answers=(" A dog runs. \n", "other")), Sample("2", image("b"), answers=("Two cats",))]
    p = build_prompt(task, demos, Sample("3", image("q")))
    assert render(p) == "<image>Output:A dog runs.<|endofchunk|>\n<image>Output:Two cats<|endofchunk|>\n<image>Output:"
    assert [i.key for i in p.images()] == ["t/a", "t/b", "t/q"]


def test_zero_shot_demonstrations_carry_no_image():
    task = load_task("coco")
    demos = [Sample("1", image("a"), answers=("c1",)), Sample("2", image("b"), answers=("c2",))]
    p = build_prompt(task, demos, Sample("3", image("q")), demo_images=False)
    assert render(p) == "Output:c1<|endofchunk|>\nOutput:c2<|endofchunk|>\n<image>Output:"
    assert [i.key for i in p.images()] == ["t/q"]


def test_vqa_demonstrations_show_the_first_annotator_answer_unchanged():
    task = load_task("vqav2")
    demo = Sample("1", image("a"), question="How many?", answers=("two ", "2", "2", "2"))
    p = build_prompt(task, [demo], Sample("2", image("q"), question="What colour? "))
    assert render(p) == ("<image>Question:How many? Short answer:two <|endofchunk|>\n"
                         "<image>Question:What colour?  Short answer:")


def test_classification_demonstrations_name_the_label_option_without_a_separator():
    task = load_task("hateful_memes")
    demos = [Sample("1", image("a"), text="hi", label=1), Sample("2", image("b"), text="it's {fine}", label=0)]
    p = build_prompt(task, demos, Sample("3", image("q"), text="q"))
    assert render(p) == ("<image>is an image with: 'hi' written on it. Is it hateful? Answer:yes<|endofchunk|>"
                         "<image>is an image with: 'it's {fine}' written on it. Is it hateful? Answer:no<|endofchunk|>"
                         "<image>is an image with: 'q' written on it. Is it hateful? Answer:")


def test_a_demonstration_without_an_answer_is_a_data_error():
    with pytest.raises(DataError, match="demonstration 1 has no answers"):
        build_prompt(load_task("vqav2"), [Sample("1", image("a"), question="q")], Sample("2", image("q")))
    with pytest.raises(DataError, match="demonstration 1 has label None"):
        build_prompt(load_task("hateful_memes"), [Sample("1", image("a"), text="t")], Sample("2", image("q")))


def test_a_template_field_that_does_not_exist_is_a_config_error():
    task = load_task("vqav2")
    bad = replace(task, prompt=replace(task.prompt, query="Q:{questoin}"))
    with pytest.raises(ConfigError, match=r"uses \{questoin\}"):
        build_prompt(bad, [], Sample("2", image("q"), question="x"))


def snapshot_of(task_name: str, shots: int) -> dict:
    task = load_task(task_name)
    pool, ev = load_split(task, "demo", DATA), load_split(task, "eval", DATA)
    demos = pool[: effective_shots(shots)]
    prompt = build_prompt(task, demos, ev[0], demo_images=shots > 0)
    return {"task": task_name, "shots": shots, "demo_ids": [d.id for d in demos], "query_id": ev[0].id,
            "rendered": render(prompt), "image_keys": [i.key for i in prompt.images()]}


@pytest.mark.parametrize("shots", [0, 4])
@pytest.mark.parametrize("task_name", SEVEN)
def test_prompt_matches_its_snapshot(task_name, shots):
    got = snapshot_of(task_name, shots)
    path = SNAPSHOTS / f"{task_name}-{shots}shot.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert path.is_file(), f"no snapshot {path}; run with UPDATE_SNAPSHOTS=1 to create it"
    assert got == json.loads(path.read_text())
    # the structure OpenFlamingo expects, whatever the texts
    n_demos = effective_shots(shots)
    assert got["rendered"].count("<|endofchunk|>") == n_demos
    assert got["rendered"].count("<image>") == len(got["image_keys"]) == (1 if shots == 0 else n_demos + 1)


def test_a_demonstration_knows_its_answer_as_the_suffix_of_its_text_and_the_query_has_none():
    task = load_task("vqav2")
    demo = Sample("1", image("a"), question="How many?", answers=("two ", "2"))
    p = build_prompt(task, [demo], Sample("2", image("q"), question="What colour?"))
    assert p[0].answer == "two " and p[0].text.endswith(p[0].answer)
    assert p[0].question() == "Question:How many? Short answer:"
    assert p[-1].answer is None and p[-1].question() == p[-1].text


def test_an_answer_that_does_not_end_the_text_is_refused():
    from flamingo_eval.prompt import Chunk

    with pytest.raises(ValueError, match="must end its text"):
        Chunk(image=None, text="Output:a cat.", answer="a cat")
