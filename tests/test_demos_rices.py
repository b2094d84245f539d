"""RICES: the whole pool ranked by image similarity, most similar LAST, never the query's own image."""

import math

import numpy as np
import pytest
from PIL import Image as PILImage

from flamingo_eval.data.sample import Sample
from flamingo_eval.demos import Demo, Selector
from flamingo_eval.demos.encoder import ClipEncoder
from flamingo_eval.demos.rices import RicesSelector
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.prompt import Image
from tests.test_demos_features import write_image

_PIXELS = PILImage.new("RGB", (2, 2))


class KeyedEncoder:
    """Features looked up by image key, so a test states similarities directly."""

    name, pretrained = "keyed", None

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = {k: np.asarray(v, np.float32) / np.linalg.norm(v) for k, v in vectors.items()}
        self.encoded: list[str] = []

    @property
    def identity(self):
        return "keyed-" + str(sorted((k, v.tobytes().hex()) for k, v in self.vectors.items()))

    def encode_batches(self, images):
        self.encoded += [im.key for im in images]
        if images:
            yield np.stack([self.vectors[im.key] for im in images])


def sample(qid: str, key: str) -> Sample:
    return Sample(id=qid, image=Image(key=key, pil=_PIXELS), question=f"q {qid}", answers=(f"a {qid}",))


def angle(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


@pytest.fixture
def pool_and_encoder():
    """Pool images at 10, 20, 32, 40 degrees from the query image at 0; image b has two questions."""
    enc = KeyedEncoder({"a": angle(10), "b": angle(20), "c": angle(32), "d": angle(40), "query": angle(0)})
    pool = [sample("p0", "c"), sample("p1", "b"), sample("p2", "a"), sample("p3", "d"), sample("p4", "b")]
    return pool, enc


def ids(demos: list[Demo]) -> list[str]:
    return [d.sample.id for d in demos]


def test_top_k_most_similar_last_with_similarities(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel = RicesSelector(pool, "pool-fp", enc)
    demos = sel.select(sample("v0", "query"), 3)
    # a (10 deg), then b's two questions (20 deg) in pool order; reversed so the closest is last
    assert ids(demos) == ["p4", "p1", "p2"]
    assert [round(d.similarity, 5) for d in demos] == [
        round(math.cos(math.radians(x)), 5) for x in (20, 20, 10)
    ]


def test_a_pool_image_stands_for_all_its_questions(pool_and_encoder):
    pool, enc = pool_and_encoder
    assert ids(RicesSelector(pool, "fp", enc).select(sample("v0", "query"), 5)) == [
        "p3",
        "p0",
        "p4",
        "p1",
        "p2",
    ]


def test_query_and_samples_sharing_its_image_never_demonstrate(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel = RicesSelector(pool, "fp", enc)
    sel.prepare(pool, "fp")  # evaluating on the pool itself: every query is in the pool
    assert ids(sel.select(pool[1], 3)) == ["p3", "p0", "p2"]  # p1 and p4 (image b) excluded, k still 3
    assert ids(sel.select(pool[2], 3)) == ["p0", "p4", "p1"]
    assert sel.usable(pool[1]) == 3


def test_ties_go_to_the_lower_pool_index():
    """Identical images under different keys tie exactly; their questions interleave by pool index."""
    enc = KeyedEncoder({"x": angle(5), "y": angle(5), "far": angle(80), "q": angle(0)})
    pool = [sample("p0", "far"), sample("p1", "y"), sample("p2", "x"), sample("p3", "y"), sample("p4", "x")]
    assert ids(RicesSelector(pool, "fp", enc).select(sample("v", "q"), 4)) == ["p4", "p3", "p2", "p1"]


def test_asking_for_more_than_the_usable_pool_is_a_data_error(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel = RicesSelector(pool, "fp", enc)
    assert len(sel.select(sample("v", "query"), 5)) == 5
    with pytest.raises(DataError, match="6 demonstrations requested for v but the pool has only 5"):
        sel.select(sample("v", "query"), 6)
    with pytest.raises(DataError, match="only 3 samples that do not share its image"):
        sel.select(pool[1], 4)


def test_zero_shots_select_nothing_and_negative_k_is_rejected(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel = RicesSelector(pool, "fp", enc)
    assert sel.select(sample("v", "query"), 0) == []
    with pytest.raises(ConfigError, match=">= 0"):
        sel.select(sample("v", "query"), -1)


def test_an_empty_pool_is_a_data_error():
    with pytest.raises(DataError, match="pool is empty"):
        RicesSelector([], "fp", KeyedEncoder({})).select(sample("v", "q"), 1)


def test_describe_names_the_encoder(pool_and_encoder):
    pool, enc = pool_and_encoder
    sel: Selector = RicesSelector(pool, "fp", enc)
    assert sel.name == "rices"
    assert sel.describe() == {"selection": "rices", "encoder": "keyed", "pretrained": None}


def test_prepare_encodes_each_query_image_once_and_select_then_needs_no_encoder(pool_and_encoder):
    pool, enc = pool_and_encoder
    enc.vectors["e"] = np.asarray(angle(35), np.float32)
    queries = [sample("v0", "query"), sample("v1", "e"), sample("v2", "query")]
    sel = RicesSelector(pool, "fp", enc)
    sel.prepare(queries, "queries-fp")
    assert sorted(enc.encoded) == ["a", "b", "c", "d", "e", "query"]
    enc.encoded.clear()
    assert ids(sel.select(queries[0], 2)) == ids(sel.select(queries[2], 2))
    assert ids(sel.select(queries[1], 2)) == ["p3", "p0"]
    assert enc.encoded == []


def test_prepared_and_unprepared_selection_agree_at_any_depth(pool_and_encoder):
    pool, enc = pool_and_encoder
    queries = [sample("v0", "query"), *pool]
    prepared = RicesSelector(pool, "fp", enc, depth=2)
    prepared.prepare(queries, "qfp")
    fresh = RicesSelector(pool, "fp", enc)
    for q in queries:
        for k in (1, 2, 3):  # k = 3 is deeper than prepared
            assert prepared.select(q, k) == fresh.select(q, k)


@pytest.mark.parametrize("backend", ["faiss-cpu", "torch"])
def test_ranking_equals_brute_force_over_every_pool_question(backend):
    rng = np.random.default_rng(7)
    keys = [f"img{i}" for i in range(60)]
    enc = KeyedEncoder({k: rng.standard_normal(24) for k in keys})
    pool = [sample(f"p{i}", keys[rng.integers(0, 40)]) for i in range(200)]  # images 0..39, ~5 questions each
    queries = [sample(f"v{i}", keys[rng.integers(30, 60)]) for i in range(40)]  # some share pool images
    sel = RicesSelector(pool, "fp", enc, backend=backend)
    sel.prepare(queries, "qfp", k=16)
    pool_feats = np.stack([enc.vectors[s.image.key] for s in pool])
    for q in queries:
        sims = pool_feats @ enc.vectors[q.image.key]
        allowed = np.array([s.image.key != q.image.key for s in pool])
        order = [i for i in np.lexsort((np.arange(len(pool)), -sims)) if allowed[i]][:16]
        assert ids(sel.select(q, 16)) == [pool[i].id for i in reversed(order)]


def test_expansion_caps_each_image_at_k_and_pads_a_short_pool():
    from flamingo_eval.demos.rices import ImageMembers, expand_neighbours

    members = ImageMembers.of(np.array([1, 0, 1, 1, 2]), 3)  # image 1 has pool samples 0, 2, 3
    imgs = np.array([[1, 0, 2], [2, 0, -1]])
    sims = np.array([[0.9, 0.5, 0.1], [0.8, 0.7, -np.inf]], dtype=np.float32)
    idx, sim = expand_neighbours(imgs, sims, np.array([-1, 0]), members, 2)
    assert idx.tolist() == [[0, 2], [4, -1]]  # row 1: image 0 is the query's own, -1 is no neighbour
    assert sim[0].tolist() == pytest.approx([0.9, 0.9]) and np.isnan(sim[1, 1])


def test_with_a_clip_encoder_an_identical_image_demonstrates_last(tmp_path, tiny_clip):  # noqa: F811
    colors = ["red", "green", "blue", "yellow", "white"]
    paths = [write_image(tmp_path / f"{c}.png", c) for c in colors]
    pool = [
        Sample(id=f"p{i}", image=Image(key=f"train/{c}.png", path=str(p)), answers=(c,))
        for i, (c, p) in enumerate(zip(colors, paths, strict=True))
    ]
    twin = write_image(tmp_path / "val-blue.png", "blue")  # same pixels as train/blue.png, another key
    query = Sample(id="v0", image=Image(key="val/blue.png", path=str(twin)))
    sel = RicesSelector(pool, "train-fp", ClipEncoder(tiny_clip, None, num_workers=0, progress=False))
    sel.prepare([query], "val-fp")
    demos = sel.select(query, 3)
    assert demos[-1].sample.id == "p2" and demos[-1].similarity == pytest.approx(1.0, abs=1e-5)
    assert demos[0].similarity <= demos[1].similarity <= demos[2].similarity
