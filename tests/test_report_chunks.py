"""A trial's items as the data scripts the page loads on demand: fixed-size chunks, a summary for filters and
paging, demonstrations written once, prompts as the text between the chunks' texts."""

import math

import pytest

from flamingo_eval.report.cells import Demo, Item
from flamingo_eval.report.chunks import SHARED_MAX, TrialWriter, is_wrong, prompt_glue
from flamingo_eval.report.images import ImageResolver, Thumbnails
from tests.helpers_report import read_script


def item(i, demos, score=50.0, prompt=None, query="Question:what is it? Short answer:"):
    texts = [d.text for d in demos] + [query]
    rendered = "".join(f"<image>{t}<|endofchunk|>\n" for t in texts[:-1]) + f"<image>{texts[-1]}"
    return Item(seed=1, id=f"q{i}", demos=demos, query_image=f"coco/val2014/{i}.jpg", query_text=query,
                output=f" out{i}", answer=f"out{i}", references=["a", "b"], score=score,
                prompt=rendered if prompt is None else prompt)


def demo(j):
    return Demo(f"d{j}", f"coco/train2014/{j}.jpg", f"Question:q{j}? Short answer:a{j}")


def writer(tmp_path, shared=False, chunk=10):
    return TrialWriter(tmp_path / "data", "cell/t0", Thumbnails(tmp_path, cache=tmp_path / "c"),
                       ImageResolver(None, tmp_path / "no-images"), chunk_items=chunk, shared_demos=shared)


def load(tmp_path, file):
    name, payload = read_script(tmp_path / "data" / "cell" / "t0" / file)
    assert name == f"data/cell/t0/{file}"  # the name the page asks for is the name it registers under
    return payload


def test_items_go_into_fixed_size_chunks_and_the_summary_lists_every_id_and_score(tmp_path):
    w = writer(tmp_path, chunk=10)
    for i in range(25):
        w.add(item(i, [demo(i), demo(i + 1)], score=float(i % 3) * 50))
    info = w.close()
    assert (info["items"], info["chunks"], info["wrong"], info["dir"]) == (25, 3, 9, "data/cell/t0")
    summary = load(tmp_path, "summary.js")
    assert summary["ids"] == [f"q{i}" for i in range(25)] and summary["chunk"] == 10
    assert summary["scores"] == [float(i % 3) * 50 for i in range(25)]
    assert [len(load(tmp_path, f"i{k}.js")["items"]) for k in range(3)] == [10, 10, 5]
    assert load(tmp_path, "search.js")["lines"][7] == "q7\tquestion:what is it? short answer:\t out7\tout7"
    assert not (tmp_path / "data" / "cell" / "t0" / "i3.js").exists()


def test_rices_demonstrations_are_written_once_per_chunk_that_uses_them(tmp_path):
    w = writer(tmp_path, shared=False)
    w.add(item(0, [demo(1), demo(2)]))
    w.add(item(1, [demo(2), demo(3)]))
    w.close()
    chunk = load(tmp_path, "i0.js")
    assert [d["id"] for d in chunk["demos"]] == ["d1", "d2", "d3"]
    assert [it["d"] for it in chunk["items"]] == [[-1, -2], [-2, -3]]  # -1 - index into the chunk's table
    d = chunk["demos"][0]
    assert (d["key"], d["text"], d["img"]) == ("coco/train2014/1.jpg", "Question:q1? Short answer:a1", None)
    assert not (tmp_path / "data" / "cell" / "t0" / "demos.js").exists()


def test_random_demonstrations_are_written_once_per_trial(tmp_path):
    w = writer(tmp_path, shared=True, chunk=2)
    for i in range(6):
        w.add(item(i, [demo(i % 3), demo((i + 1) % 3)]))
    info = w.close()
    assert info["demos"] == "data/cell/t0/demos.js"
    assert [d["id"] for d in load(tmp_path, "demos.js")["demos"]] == ["d0", "d1", "d2"]
    assert [it["d"] for k in range(3) for it in load(tmp_path, f"i{k}.js")["items"]] == [
        [0, 1], [1, 2], [2, 0], [0, 1], [1, 2], [2, 0]]
    assert all(load(tmp_path, f"i{k}.js")["demos"] == [] for k in range(3))


def test_a_trial_table_that_would_grow_past_its_cap_continues_in_the_chunks(tmp_path):
    w = writer(tmp_path, shared=True, chunk=1000)
    w.add(item(0, [demo(j) for j in range(SHARED_MAX + 2)]))
    w.close()
    [it] = load(tmp_path, "i0.js")["items"]
    assert it["d"][SHARED_MAX - 1] == SHARED_MAX - 1 and it["d"][SHARED_MAX:] == [-1, -2]


def test_prompts_are_stored_as_the_text_around_the_chunks_and_rebuild_exactly(tmp_path):
    w = writer(tmp_path)
    demos = [demo(1), demo(2)]
    w.add(item(0, demos))
    w.add(item(1, demos, prompt="a prompt that does not hold its chunks' texts"))
    w.close()
    p = load(tmp_path, "p0.js")
    first, second = p["prompts"]
    assert second == "a prompt that does not hold its chunks' texts"
    texts = [d.text for d in demos] + ["Question:what is it? Short answer:"]
    rebuilt = p["glue"][first[0]] + "".join(t + p["glue"][g] for t, g in zip(texts, first[1:], strict=True))
    assert rebuilt == item(0, demos).prompt
    assert set(p["glue"]) == {"<image>", "<|endofchunk|>\n<image>", ""}


@pytest.mark.parametrize("prompt, texts", [("abcabc", ["abc", "abc"]), ("<i>x\n<i>", ["x", ""]), ("", [""])])
def test_prompt_glue_rebuilds_any_prompt_that_holds_its_texts_in_order(prompt, texts):
    glue = prompt_glue(prompt, texts)
    assert glue[0] + "".join(t + g for t, g in zip(texts, glue[1:], strict=True)) == prompt
    assert prompt_glue("xy", ["y", "x"]) is None


def test_scores_that_json_cannot_hold_become_null_and_wrong_means_no_credit(tmp_path):
    w = writer(tmp_path)
    w.add(item(0, [], score=math.nan))
    w.add(item(1, [], score=0.0))
    w.close()
    assert load(tmp_path, "summary.js")["scores"] == [None, 0.0]
    assert [is_wrong(s) for s in (None, 0.0, 0.001, 100.0)] == [False, True, False, False]


def test_a_chunk_with_several_images_lists_the_later_ones_under_more(tmp_path):
    """VL-ICL's pairs: the samples record's ``images`` becomes ``more`` beside the first image's key, for the
    demonstration and the query; single-image chunks have no ``more``."""
    from flamingo_eval.report.cells import normalise

    line = {"seed": 0, "id": "0", "demos": ["3", "5"], "answer": "7", "score": 100.0, "prompt": "",
            "chunks": [{"image": "vlicl/a.png", "text": "Q\nAnswer: 1", "images": ["vlicl/a.png", "vlicl/b.png"]},
                       {"image": "vlicl/c.png", "text": "Q\nAnswer: 2"},
                       {"image": "vlicl/e.png", "text": "Q\nAnswer:", "images": ["vlicl/e.png", "vlicl/f.png"]}]}
    it = normalise(line, line["chunks"])
    assert [d.more_images for d in it.demos] == [["vlicl/b.png"], []] and it.query_more_images == ["vlicl/f.png"]
    w = writer(tmp_path)
    w.add(it)
    w.close()
    payload = load(tmp_path, "i0.js")
    row, demos = payload["items"][0], payload["demos"]
    assert [m["key"] for m in row["more"]] == ["vlicl/f.png"]
    assert [m["key"] for m in demos[0]["more"]] == ["vlicl/b.png"] and "more" not in demos[1]
