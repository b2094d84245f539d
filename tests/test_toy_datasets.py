import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flamingo_eval.errors import DataError
from flamingo_eval.task import available_tasks, load_task
from flamingo_eval.toy import GENERATOR_VERSION, Sizes, default_root, ensure_toy_data, generate
from flamingo_eval.toy import datasets as toy_datasets
from flamingo_eval.toy.datasets import STAMP_FILE
from flamingo_eval.toy.language import MEME_INSULTS, answer_vocabulary, colour_words

TINY = Sizes(train=12, eval=6)
VQA_TASKS = ("vqav2", "okvqa", "textvqa", "vizwiz")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy-tiny")
    generate(root, seed=0, sizes=TINY)
    return root


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """The default sizes, which the toy model trains on; generation time is printed, not asserted."""
    root = tmp_path_factory.mktemp("toy-full")
    start = time.perf_counter()
    manifest = generate(root)
    print(f"\ntoy data, default sizes {manifest['sizes']}: generated in {time.perf_counter() - start:.2f}s")
    return root


def _load(path: Path):
    return json.loads(path.read_text())


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _vqa_split(root: Path, task: str, which: str):
    """(questions, annotations, image path of a question) for a task's demo or eval split, per its YAML."""
    spec = load_task(task)
    split = spec.demo if which == "demo" else spec.eval
    paths = spec.data_paths(root)
    questions = _load(paths[split.options["questions"]])
    annotations = _load(paths[split.options["annotations"]])

    def image(q):
        return paths[split.options["images"]] / split.options["image_file"].format(image_id=q["image_id"])

    return questions, annotations, image


def test_the_same_seed_writes_byte_identical_files_and_another_seed_does_not(tiny, tmp_path):
    generate(tmp_path / "again", seed=0, sizes=TINY)
    assert _files(tmp_path / "again") == _files(tiny)
    generate(tmp_path / "other", seed=1, sizes=TINY)
    other = _files(tmp_path / "other")
    assert other["coco/dataset_coco.json"] != _files(tiny)["coco/dataset_coco.json"]


@pytest.mark.parametrize("task", toy_datasets.TASKS)
def test_every_data_path_of_every_shipped_task_exists(tiny, task):
    paths = load_task(task).data_paths(tiny)
    missing = [f"{k}: {p}" for k, p in paths.items() if not p.exists()]
    assert not missing


def test_all_seven_tasks_are_generated():
    """ImageNet has no toy twin: its fixture is an ImageFolder tree (tests/imagenet_fixture.py)."""
    assert set(toy_datasets.TASKS) == set(available_tasks()) - {"imagenet"}


def test_coco_karpathy_splits_folders_and_references_agree(tiny):
    karpathy = _load(tiny / "coco/dataset_coco.json")
    assert karpathy["dataset"] == "coco"
    images = karpathy["images"]
    assert Counter(i["split"] for i in images) == {"train": 12, "test": 6, "val": 1, "restval": 1}
    for img in images:
        folder = "train2014" if img["split"] == "train" else "val2014"
        assert img["filepath"] == folder
        assert img["filename"] == f"COCO_{folder}_{img['cocoid']:012d}.jpg"
        assert (tiny / "coco" / folder / img["filename"]).is_file()
        assert len(img["sentences"]) == 5 and img["sentids"] == [s["sentid"] for s in img["sentences"]]
        assert all(s["tokens"] == s["raw"].split() and s["imgid"] == img["imgid"] for s in img["sentences"])
    assert len({i["cocoid"] for i in images}) == len(images)

    refs = _load(tiny / "coco/captions_val2014.json")
    assert {"info", "licenses", "images", "annotations"} <= set(refs)
    val2014 = {i["cocoid"]: i for i in images if i["filepath"] == "val2014"}
    assert {r["id"]: r["file_name"] for r in refs["images"]} == {k: v["filename"] for k, v in val2014.items()}
    by_image: dict[int, list[str]] = {}
    for a in refs["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a["caption"])
    assert by_image == {k: [s["raw"] for s in v["sentences"]] for k, v in val2014.items()}
    assert len({a["id"] for a in refs["annotations"]}) == len(refs["annotations"])


def test_flickr_references_are_keyed_by_the_file_name_stem(tiny):
    karpathy = _load(tiny / "flickr30k/dataset_flickr30k.json")
    images = karpathy["images"]
    assert Counter(i["split"] for i in images) == {"train": 12, "test": 6, "val": 1}
    refs = _load(tiny / "flickr30k/dataset_flickr30k_coco_style.json")
    stems = {i["filename"].split(".")[0]: i for i in images}
    assert all(len(s) == 10 and s.isdigit() for s in stems)
    assert {r["id"] for r in refs["images"]} == set(stems)  # strings, as OpenFlamingo's image_id is
    for a in refs["annotations"]:
        assert a["caption"] in [s["raw"] for s in stems[a["image_id"]]["sentences"]]
    assert all((tiny / "flickr30k/flickr30k-images" / i["filename"]).is_file() for i in images)


@pytest.mark.parametrize("task", VQA_TASKS)
@pytest.mark.parametrize("which", ["demo", "eval"])
def test_vqa_questions_and_annotations_pair_up_and_name_existing_images(tiny, task, which):
    questions, annotations, image = _vqa_split(tiny, task, which)
    for meta in ("info", "task_type", "data_type", "data_subtype", "license"):
        assert meta in questions  # VQA.loadRes copies these from the question file
    qs, anns = questions["questions"], annotations["annotations"]
    assert len(qs) == len(anns) == (TINY.train if which == "demo" else TINY.eval)
    assert len({q["question_id"] for q in qs}) == len(qs)
    for q, a in zip(qs, anns, strict=True):
        assert (q["question_id"], q["image_id"]) == (a["question_id"], a["image_id"])
        assert q["question"].endswith("?") and a["question_type"]
        assert image(q).is_file()
        assert len(a["answers"]) == 10
        given = [x["answer"] for x in a["answers"]]
        assert given.count(a["multiple_choice_answer"]) == max(Counter(given).values())  # a majority answer
        assert all(x["answer_confidence"] in ("yes", "maybe", "no") for x in a["answers"])
        if task == "vizwiz":
            assert all("answer_id" not in x for x in a["answers"])
            assert q["image_id"] == f"VizWiz_{'train' if which == 'demo' else 'val'}_{q['question_id']:08d}.jpg"
        else:
            assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))


def test_vqav2_and_okvqa_ask_about_the_coco_toy_images(tiny):
    karpathy = _load(tiny / "coco/dataset_coco.json")["images"]
    train_ids = {i["cocoid"] for i in karpathy if i["split"] == "train"}
    test_ids = {i["cocoid"] for i in karpathy if i["split"] == "test"}
    for task in ("vqav2", "okvqa"):
        demo, _, _ = _vqa_split(tiny, task, "demo")
        evaluated, _, _ = _vqa_split(tiny, task, "eval")
        assert {q["image_id"] for q in demo["questions"]} == train_ids
        assert {q["image_id"] for q in evaluated["questions"]} == test_ids


def test_textvqa_ids_are_hex_and_question_ids_run_on_from_train_into_val(tiny):
    train, _, _ = _vqa_split(tiny, "textvqa", "demo")
    val, _, _ = _vqa_split(tiny, "textvqa", "eval")
    qids = [q["question_id"] for q in train["questions"] + val["questions"]]
    assert qids == list(range(TINY.train + TINY.eval))
    image_ids = [q["image_id"] for q in train["questions"] + val["questions"]]
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in image_ids)


def test_memes_rows_have_the_real_fields_and_images(tiny):
    for name, n in (("train.jsonl", TINY.train), ("test_seen.jsonl", TINY.eval)):
        rows = [json.loads(line) for line in (tiny / "hateful_memes" / name).read_text().splitlines()]
        assert len(rows) == n
        for r in rows:
            assert list(r) == ["id", "img", "label", "text"]
            assert r["img"] == f"img/{r['id']:05d}.png" and r["label"] in (0, 1)
            assert Image.open(tiny / "hateful_memes" / r["img"]).size == (64, 64)


def test_default_sizes_give_a_few_hundred_demos_and_about_a_hundred_eval_items_per_task(full):
    stamp = _load(full / STAMP_FILE)
    assert stamp["generator_version"] == GENERATOR_VERSION and stamp["seed"] == 0
    for task in VQA_TASKS:
        demo, _, _ = _vqa_split(full, task, "demo")
        evaluated, _, _ = _vqa_split(full, task, "eval")
        assert (len(demo["questions"]), len(evaluated["questions"])) == (400, 100)


def test_every_answer_comes_from_a_small_closed_vocabulary(full):
    allowed = answer_vocabulary()
    words: set[str] = set()
    for task in VQA_TASKS:
        for which in ("demo", "eval"):
            questions, annotations, _ = _vqa_split(full, task, which)
            for q, a in zip(questions["questions"], annotations["annotations"], strict=True):
                assert {x["answer"] for x in a["answers"]} <= allowed
                words.update(q["question"].rstrip("?").split())
                words.update(w for x in a["answers"] for w in x["answer"].split())
    for name in ("coco/dataset_coco.json", "flickr30k/dataset_flickr30k.json"):
        for img in _load(full / name)["images"]:
            words.update(w for s in img["sentences"] for w in s["tokens"])
    for name in ("train.jsonl", "test_seen.jsonl"):
        for line in (full / "hateful_memes" / name).read_text().splitlines():
            words.update(json.loads(line)["text"].split())
    assert len(allowed) < 80
    assert len(words) < 200


def test_annotators_mostly_agree_with_a_little_noise(full):
    _, annotations, _ = _vqa_split(full, "vqav2", "demo")
    agreement = [sum(x["answer"] == a["multiple_choice_answer"] for x in a["answers"]) / 10
                 for a in annotations["annotations"]]
    assert 0.85 < np.mean(agreement) < 0.97
    assert min(agreement) < 1.0  # some annotators disagree somewhere


def test_memes_labels_are_balanced_and_need_both_text_and_image(full):
    rows = [json.loads(line) for name in ("train.jsonl", "test_seen.jsonl")
            for line in (full / "hateful_memes" / name).read_text().splitlines()]
    assert 0.3 < np.mean([r["label"] for r in rows]) < 0.6
    insulting = [r for r in rows if r["text"].endswith(MEME_INSULTS)]
    assert all(r["label"] == 0 for r in rows if r not in insulting)  # a kind text is never hateful
    labels_per_text: dict[str, set[int]] = {}
    for r in insulting:
        labels_per_text.setdefault(r["text"], set()).add(r["label"])
    assert sum(labels == {0, 1} for labels in labels_per_text.values()) > 5  # same text, image decides


def test_vizwiz_has_a_share_of_blank_or_blurred_unanswerable_photos(full):
    questions, annotations, image = _vqa_split(full, "vizwiz", "demo")
    unanswerable = [a["multiple_choice_answer"] == "unanswerable" for a in annotations["annotations"]]
    assert 0.2 < np.mean(unanswerable) < 0.4
    detail = [np.asarray(Image.open(image(q))).astype(float).std() for q in questions["questions"]]
    blank = np.mean([d for d, u in zip(detail, unanswerable, strict=True) if u])
    clear = np.mean([d for d, u in zip(detail, unanswerable, strict=True) if not u])
    assert blank < clear / 2


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((16, 16)), dtype=np.float32).ravel() / 255


@pytest.mark.parametrize("task", ["vqav2", "okvqa", "textvqa"])
def test_the_most_similar_demo_image_usually_shares_the_answer_which_is_what_rices_exploits(full, task):
    demo_q, demo_a, demo_image = _vqa_split(full, task, "demo")
    eval_q, eval_a, eval_image = _vqa_split(full, task, "eval")
    pool = np.stack([_pixels(demo_image(q)) for q in demo_q["questions"]])
    pool_answers = [a["multiple_choice_answer"] for a in demo_a["annotations"]]
    nearest, chance = [], []
    for q, a in zip(eval_q["questions"], eval_a["annotations"], strict=True):
        distance = ((pool - _pixels(eval_image(q))) ** 2).sum(axis=1)
        nearest.append(pool_answers[int(distance.argmin())] == a["multiple_choice_answer"])
        chance.append(np.mean([p == a["multiple_choice_answer"] for p in pool_answers]))
    assert np.mean(nearest) > 2 * np.mean(chance)


def test_ensure_generates_once_then_reuses_and_regenerates_for_another_seed(tmp_path, monkeypatch):
    root = tmp_path / "toy"
    assert ensure_toy_data(root, sizes=TINY) == root
    before = _files(root)
    assert _load(root / STAMP_FILE)["seed"] == 0

    def must_not_run(*args, **kwargs):
        raise AssertionError("regenerated although the stamp matched")

    monkeypatch.setattr(toy_datasets, "generate", must_not_run)
    ensure_toy_data(root, sizes=TINY)
    monkeypatch.undo()
    assert _files(root) == before

    ensure_toy_data(root, seed=3, sizes=TINY)
    assert _load(root / STAMP_FILE)["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no temporary folder left behind


def test_ensure_refuses_to_overwrite_a_folder_that_is_not_toy_data(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "coco").mkdir()
    with pytest.raises(DataError, match="not toy data"):
        ensure_toy_data(tmp_path / "real", sizes=TINY)
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["coco"]


def test_the_default_root_lives_in_the_cache_and_depends_on_the_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMINGO_EVAL_CACHE", str(tmp_path))
    assert default_root(0).is_relative_to(tmp_path)
    assert default_root(0) != default_root(1)


@pytest.mark.parametrize("task", ["coco", "flickr30k"])
def test_each_caption_data_set_calls_the_colours_by_its_own_words(full, task):
    # No image shows which word a data set uses, so only demonstrations teach it.
    from flamingo_eval.toy.datasets import NAMES

    used: set[str] = set()
    for img in _load(full / task / f"dataset_{task}.json")["images"]:
        for sentence in img["sentences"]:
            used |= set(colour_words(sentence["raw"]))
    assert used == set(NAMES[task].values())


@pytest.mark.parametrize("task", ["vqav2", "vizwiz", "textvqa"])
def test_vqa_questions_and_answers_use_the_data_sets_words(full, task):
    from flamingo_eval.toy.datasets import NAMES

    questions, annotations, _ = _vqa_split(full, task, "demo")
    used: set[str] = set()
    for q, a in zip(questions["questions"], annotations["annotations"], strict=True):
        used |= set(colour_words(q["question"])) | {w for x in a["answers"] for w in colour_words(x["answer"])}
    assert used == set(NAMES[task].values())


def test_the_data_sets_do_not_share_one_vocabulary():
    from flamingo_eval.toy.datasets import NAMES

    assert NAMES["vqav2"] == NAMES["coco"]  # the same photos and annotators' convention
    assert len({tuple(sorted(n.items())) for n in NAMES.values()}) == 4
    for a, b in (("coco", "flickr30k"), ("coco", "vizwiz"), ("flickr30k", "vizwiz"), ("coco", "textvqa")):
        assert set(NAMES[a].values()).isdisjoint(NAMES[b].values())
