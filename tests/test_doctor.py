"""`flamingo-eval doctor`: every problem on one line with its fix, exit 1 when a run would stop; on the toy data
with of-toy, nothing stops a run. Also the cache-space estimate (doctor/storage.py)."""

import pytest

from flamingo_eval.cli import main
from flamingo_eval.doctor import environment, storage
from flamingo_eval.doctor.storage import FEATURE_BYTES, FEATURE_DIM, cache_needs, check_disk
from flamingo_eval.metrics import okvqa_stem
from flamingo_eval.task import available_tasks, load_task
from flamingo_eval.toy import Sizes, generate
from flamingo_eval.toy.datasets import TASKS as TOY_TASKS


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate(root, seed=0, sizes=Sizes(train=12, eval=6))
    return root


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(environment, "visible_gpus", lambda: [])
    monkeypatch.setattr(environment, "search_rate", lambda backend, device, dim: 1e8)


def lines(capsys):
    return capsys.readouterr().out.splitlines()


def test_a_bare_machine_lists_each_problem_with_its_fix_and_exits_1(tmp_path, no_gpu, monkeypatch, capsys):
    monkeypatch.setattr(okvqa_stem, "missing_nltk_data", lambda: list(okvqa_stem.NLTK_RESOURCES))
    assert main(["doctor", "--data-root", str(tmp_path / "data")]) == 1
    out = lines(capsys)
    failed = [x for x in out if x.startswith("FAIL")]
    assert {x.split()[1] for x in failed} == {"nltk", "data"}
    assert sum(x.startswith("FAIL  data") for x in out) == len(available_tasks())  # none of their data here
    assert all("; fix: " in x for x in out if x.startswith(("FAIL", "WARN")))
    assert any(x.startswith("WARN  cuda") for x in out)  # no GPU: a warning for a CPU run, not a blocker
    assert out[-1].startswith(f"{len(available_tasks()) + 1} problem(s) would stop a run")


def test_asking_for_cuda_without_a_gpu_blocks(toy_root, no_gpu, capsys):
    assert main(["doctor", "--task", "coco", "--data-root", str(toy_root), "--device", "cuda"]) == 1
    assert any(x.startswith("FAIL  cuda") for x in lines(capsys))


def test_the_toy_data_and_of_toy_exit_0(toy_root, no_gpu, monkeypatch, capsys):
    monkeypatch.setattr(okvqa_stem, "missing_nltk_data", lambda: [])  # NLTK's data in place
    assert main(["doctor", "--task", *TOY_TASKS, "--data-root", str(toy_root), "--model", "of-toy"]) == 0
    out = lines(capsys)
    assert not [x for x in out if x.startswith("FAIL")]
    assert [x.split()[0] for x in out if x.startswith(("ok", "WARN"))].count("ok") >= 8
    assert any(x.startswith("ok    fits") for x in out) and out[-1].startswith("nothing stops a run")


def test_without_nltk_data_only_okvqa_is_blocked_on_the_toy_data(toy_root, no_gpu, monkeypatch, capsys):
    monkeypatch.setattr(okvqa_stem, "missing_nltk_data", lambda: ["wordnet"])
    assert main(["doctor", "--task", *TOY_TASKS, "--data-root", str(toy_root), "--model", "of-toy"]) == 1
    assert [x.split()[1] for x in lines(capsys) if x.startswith("FAIL")] == ["nltk"]
    tasks = ["coco", "flickr30k", "vqav2", "textvqa", "vizwiz", "hateful_memes"]
    assert main(["doctor", "--task", *tasks, "--data-root", str(toy_root), "--model", "of-toy"]) == 0


def test_an_unknown_task_is_one_error_line(tmp_path, capsys):
    assert main(["doctor", "--task", "vqa2", "--data-root", str(tmp_path)]) == 2
    assert "did you mean 'vqav2'" in capsys.readouterr().err


def test_features_are_counted_per_split_and_once_more_per_shared_image(toy_root):
    from flamingo_eval.data import load_split

    def images(name):
        task = load_task(name)
        return [{(task.candidates(k)[0], f) for k, fs in load_split(task, w, toy_root).image_files().items() for f in fs}
                for w in ("demo", "eval")]

    vqa, ok = images("vqav2"), images("okvqa")
    per_split = sum(map(len, vqa + ok))
    shared = len(set().union(*vqa, *ok))
    assert shared < per_split  # OK-VQA's images are COCO's, as VQAv2's are
    need, bound = cache_needs([load_task("vqav2"), load_task("okvqa")], toy_root)
    annotations = sum(p.stat().st_size for p in (toy_root / "vqav2").glob("*.json")) + sum(
        p.stat().st_size for p in (toy_root / "okvqa").glob("*.json"))
    assert not bound and need == (per_split + shared) * FEATURE_DIM * FEATURE_BYTES + annotations


def test_without_annotations_the_published_sizes_bound_the_need(tmp_path):
    need, bound = cache_needs([load_task("coco")], tmp_path)
    assert bound and need == 2 * (82_783 + 5_000) * FEATURE_DIM * FEATURE_BYTES


def test_a_cache_disk_too_small_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: type("U", (), {"free": 1_000_000})())
    check = check_disk([load_task("vqav2")], tmp_path)
    assert check.status == "fail" and "FLAMINGO_EVAL_CACHE" in check.fix and "up to" in check.what
