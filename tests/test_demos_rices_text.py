"""RICES by the query's question (``--rices-by text``) or by question and image (``image+text``): per pool
sample, most similar last, never a sample on the query's image; text features cached; tasks without a query
question refuse it with one line."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from flamingo_eval.cli import main
from flamingo_eval.data.sample import Sample
from flamingo_eval.demos.features import text_features
from flamingo_eval.demos.rices_text import SampleRicesSelector, check_rices_by
from flamingo_eval.errors import ConfigError
from flamingo_eval.prompt import Image

_PIXELS = PILImage.new("RGB", (2, 2))


def _unit(deg):
    return np.array([math.cos(math.radians(deg)), math.sin(math.radians(deg))], np.float32)


class KeyedEncoder:
    """Image features by key, text features by question: a test states both similarities directly."""

    name, pretrained = "keyed-text", None

    def __init__(self, images, texts):
        self.images, self.texts = images, texts
        self.encoded_texts: list[str] = []

    @property
    def identity(self):
        return "keyed-text-" + repr(sorted(self.images)) + repr(sorted(self.texts))

    def encode_batches(self, images):
        if images:
            yield np.stack([_unit(self.images[im.key]) for im in images])

    def encode_texts(self, texts):
        self.encoded_texts += list(texts)
        return np.stack([_unit(self.texts[t]) for t in texts])


def sample(qid, key, question):
    return Sample(id=qid, image=Image(key=key, pil=_PIXELS), question=question, answers=("a",))


@pytest.fixture
def pool_and_encoder():
    # questions: "colour?" at 0 degrees, "count?" at 60, "shape?" at 90; images at 0 (query), 10, 50, 80
    pool = [sample("p1", "img/a", "count?"), sample("p2", "img/b", "colour?"), sample("p3", "img/c", "shape?"),
            sample("p4", "img/c", "colour?"), sample("p5", "img/q", "colour?")]
    enc = KeyedEncoder({"img/q": 0, "img/a": 10, "img/b": 50, "img/c": 80},
                       {"colour?": 0, "count?": 60, "shape?": 90})
    return pool, enc


def test_text_ranks_pool_questions_by_the_querys_question_most_similar_last(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel = SampleRicesSelector(pool, "fp-pool", enc, "text")
    query = sample("q", "img/q", "colour?")
    demos = sel.select(query, 3)
    # p5 shares the query's image and never demonstrates; p2 and p4 ask the same question (tie: lower index)
    assert [d.sample.id for d in demos] == ["p1", "p4", "p2"]
    assert [round(d.similarity, 4) for d in demos] == [0.5, 1.0, 1.0]
    assert sel.describe()["selection"] == "rices-text"


def test_image_plus_text_adds_the_two_similarities(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel = SampleRicesSelector(pool, "fp-pool", enc, "image+text")
    demos = sel.select(sample("q", "img/q", "colour?"), 4)
    expected = {"p1": math.cos(math.radians(10)) + 0.5, "p2": math.cos(math.radians(50)) + 1,
                "p3": math.cos(math.radians(80)) + 0, "p4": math.cos(math.radians(80)) + 1}
    assert [d.sample.id for d in demos] == sorted(expected, key=expected.get)
    assert all(d.similarity == pytest.approx(expected[d.sample.id], abs=1e-5) for d in demos)


def test_prepared_and_single_queries_agree_and_text_features_are_cached(pool_and_encoder):
    pool, enc = pool_and_encoder
    queries = [sample("q", "img/q", "colour?"), sample("r", "img/a", "shape?")]
    prepared = SampleRicesSelector(pool, "fp-pool", enc, "text")
    prepared.prepare(queries, "fp-queries")
    alone = SampleRicesSelector(pool, "fp-pool", enc, "text")
    for q in queries:
        assert prepared.select(q, 3) == alone.select(q, 3)
    enc.encoded_texts.clear()
    again = text_features([s.question for s in pool], enc)
    assert enc.encoded_texts == [] and again.shape == (5, 2)


def test_tasks_without_a_query_question_refuse_text_in_one_line():
    check_rices_by("text", "vqav2", "vqa")
    for kind, task in (("caption", "coco"), ("classification", "hateful_memes")):
        for by in ("text", "image+text"):
            with pytest.raises(ConfigError, match=f"task {task} .* has no query question"):
                check_rices_by(by, task, kind)


# ---- end to end with a tiny CLIP whose text tower has the real tokenizer's vocabulary --------------------

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "tests" / "golden" / "flamingo" / "mpt-x1" / "spec.yaml")
FIXTURES = str(ROOT / "tests" / "fixtures" / "data")


@pytest.fixture(scope="module")
def text_clip(tmp_path_factory):
    import open_clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1}}
    path = tmp_path_factory.mktemp("clipcfg") / "tiny-text-clip.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return "tiny-text-clip"


def _run(tmp_path, *args):
    return main(["run", "--model", SPEC, "--data-root", FIXTURES, "--output-dir", str(tmp_path), "--quiet",
                 "--rices", "--rices-pretrained", "none", *args])


@pytest.mark.parametrize("by", ["text", "image+text"])
def test_rices_by_runs_end_to_end_on_vqa(tmp_path, text_clip, by):
    assert _run(tmp_path, "--task", "vqav2", "--shots", "2", "--rices-encoder", text_clip, "--rices-by", by) == 0
    stem = f"vqav2_2shot_rices-{by}"
    res = json.loads((tmp_path / "mpt-x1" / f"{stem}.json").read_text())
    samples = [json.loads(x) for x in (tmp_path / "mpt-x1" / f"{stem}.samples.jsonl").read_text().splitlines()]
    assert res["selection"] == {"selection": f"rices-{by}", "by": by, "encoder": text_clip, "pretrained": None}
    assert all(len(s["demos"]) == 2 and s["similarities"][0] <= s["similarities"][1] for s in samples)


def test_rices_by_text_on_a_captioning_task_is_one_line(tmp_path, text_clip, capsys):
    code = _run(tmp_path, "--task", "coco", "--shots", "2", "--rices-encoder", text_clip, "--rices-by", "text")
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "task coco (caption) has no query question" in err
