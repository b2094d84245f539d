"""`flamingo-eval data fetch`: eval_benchmark's annotation files (a local copy, or the hub) laid out under a data
root in the tasks' layout, renamed where that repository's names differ; image sources and instructions."""

import json
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.data_setup.catalogue import ANNOTATIONS, HUB_REPO, IMAGES, OTHER_ANNOTATIONS
from flamingo_eval.data_setup.needs import task_needs
from flamingo_eval.task import available_tasks, load_task
from tests.helpers_eval_benchmark import EVAL_BENCHMARK, FIXTURES, make_eval_benchmark, unpack_images

SPEC = str(Path(__file__).parent / "golden" / "flamingo" / "mpt-x1" / "spec.yaml")


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    return make_eval_benchmark(tmp_path_factory.mktemp("eval_benchmark"))


def fetch(root, *args):
    return main(["data", "fetch", *args, "--data-root", str(root), "--quiet"])


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_fetch_from_a_local_copy_lays_out_the_tasks_files_under_their_layout_names(tmp_path, benchmark, capsys):
    root = tmp_path / "data"
    assert fetch(root, "vqav2", "coco", "hateful_memes", "--source", str(benchmark)) == 0
    assert files_under(root) == sorted([
        "coco/captions_val2014.json", "coco/dataset_coco.json", "hateful_memes/test_seen.jsonl",
        "hateful_memes/train.jsonl", "vqav2/v2_OpenEnded_mscoco_train2014_questions.json",
        "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "vqav2/v2_mscoco_train2014_annotations.json",
        "vqav2/v2_mscoco_val2014_annotations.json"])  # nothing a run does not read (captions_train2014, ...)
    assert (root / "coco/dataset_coco.json").read_bytes() == (benchmark / "mscoco_karpathy/karpathy_coco.json").read_bytes()
    out = capsys.readouterr().out
    assert "coco/dataset_coco.json (eval_benchmark's mscoco_karpathy/karpathy_coco.json)" in out
    assert "http://images.cocodataset.org/zips/val2014.zip (6.6 GB" in out and "--images downloads" in out
    assert "hatefulmemeschallenge.com" in out  # licence-gated: instructions, no download
    assert "next: flamingo-eval data check vqav2 coco hateful_memes" in out


def test_the_fetched_root_runs_once_the_images_are_unpacked(tmp_path, benchmark):
    """The issue's 'done when': fetch from a copy of eval_benchmark, then `run` on that data root."""
    root = tmp_path / "data"
    assert fetch(root, "vqav2", "coco", "hateful_memes", "--source", str(benchmark)) == 0
    unpack_images(root, ("coco/train2014", "coco/val2014", "hateful_memes/img"))
    assert main(["data", "check", "vqav2", "coco", "hateful_memes", "--data-root", str(root)]) == 0
    assert main(["run", "--model", SPEC, "--task", "vqav2", "hateful_memes", "--shots", "2", "--data-root", str(root),
                 "--output-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    for stem in ("vqav2_2shot_random", "hateful_memes_2shot_random"):
        assert json.loads((tmp_path / "runs" / "mpt-x1" / f"{stem}.json").read_text())["n"] == 6


def test_present_files_are_left_alone_unless_forced(tmp_path, benchmark, capsys):
    root = tmp_path / "data"
    mine = root / "coco" / "dataset_coco.json"
    mine.parent.mkdir(parents=True)
    mine.write_text('{"images": []}')
    assert fetch(root, "coco", "--source", str(benchmark)) == 0
    assert mine.read_text() == '{"images": []}' and "present  coco/dataset_coco.json" in capsys.readouterr().out
    assert fetch(root, "coco", "--source", str(benchmark), "--force") == 0
    assert mine.read_bytes() == (benchmark / "mscoco_karpathy/karpathy_coco.json").read_bytes()


def test_a_file_present_under_its_official_name_is_not_fetched_again(tmp_path, benchmark, capsys):
    root = tmp_path / "data"
    (root / "vizwiz").mkdir(parents=True)
    for split in ("train", "val"):
        (root / f"vizwiz/{split}.json").write_text("[]")
    assert fetch(root, "vizwiz", "--source", str(benchmark)) == 0
    assert not list((root / "vizwiz").glob("*_vqa_format.json"))
    assert "present  vizwiz/val.json" in capsys.readouterr().out


def test_a_variant_fetches_its_own_files_and_says_what_eval_benchmark_lacks(tmp_path, benchmark, capsys):
    root = tmp_path / "data"
    assert fetch(root, "vqav2:test-dev", "hateful_memes:dev_seen", "--source", str(benchmark)) == 0
    assert (root / "vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json").is_file()
    assert (root / "vqav2/v2_OpenEnded_mscoco_test2015_questions.json").is_file()
    out = capsys.readouterr().out
    assert f"absent   hateful_memes/dev_seen.jsonl: not in {HUB_REPO}" in out
    assert "http://images.cocodataset.org/zips/test2015.zip" in out


def test_a_source_without_a_needed_file_is_one_line(tmp_path, benchmark, capsys):
    partial = tmp_path / "partial"
    make_eval_benchmark(partial)
    (partial / "mscoco_karpathy/karpathy_coco.json").unlink()
    code = fetch(tmp_path / "data", "coco", "--source", str(partial))
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "mscoco_karpathy/karpathy_coco.json not found" in err and HUB_REPO in err


def test_unknown_task_is_one_line_with_a_suggestion(tmp_path, capsys):
    assert fetch(tmp_path, "vqa2") != 0
    assert "did you mean 'vqav2'" in capsys.readouterr().err


def test_without_source_it_downloads_only_the_needed_files_from_the_hub(tmp_path, benchmark, monkeypatch):
    import huggingface_hub

    calls = []

    def snapshot_download(**kwargs):
        calls.append(kwargs)
        return str(benchmark)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    root = tmp_path / "data"
    assert fetch(root, "textvqa", "hateful_memes") == 0
    assert len(calls) == 1 and calls[0]["repo_id"] == HUB_REPO and calls[0]["repo_type"] == "dataset"
    assert sorted(calls[0]["allow_patterns"]) == sorted(
        [f"textvqa/{s}_{k}_vqa_format.json" for s in ("train", "val") for k in ("questions", "annotations")]
        + ["hatefulmemes/train.jsonl", "hatefulmemes/test_seen.jsonl"])
    assert (root / "hateful_memes/test_seen.jsonl").read_bytes() == (FIXTURES / "hateful_memes/test_seen.jsonl").read_bytes()


def test_a_hub_failure_is_one_line_pointing_at_source(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def offline(**kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    code = fetch(tmp_path / "data", "coco")
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "--source DIR" in err and "no route to host" in err


def test_the_catalogue_covers_every_shipped_task():
    """Every file a task (or variant) reads comes from eval_benchmark or has instructions; every image folder
    has a source."""
    names = available_tasks() + [f"{t}:{v}" for t in available_tasks() for v in load_task(t).variants]
    for name in names:
        for need in task_needs(load_task(name)):
            if need.folder:
                assert need.default in IMAGES, (name, need.key)
            elif not any(c in ANNOTATIONS or c in OTHER_ANNOTATIONS for c in need.candidates):
                assert name == "hateful_memes:dev_seen" and "dev_seen.jsonl" in IMAGES["hateful_memes"].instructions
    assert set(ANNOTATIONS.values()) <= set(EVAL_BENCHMARK)


def test_okvqa_fetch_gets_nltk_data_into_the_cache(tmp_path, benchmark, monkeypatch, capsys):
    import nltk

    from flamingo_eval.metrics import okvqa_stem
    from tests.test_metrics_okvqa_stem import fake_nltk_download

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk-home")])
    calls = []
    monkeypatch.setattr(nltk, "download", fake_nltk_download(calls))
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda **kwargs: str(benchmark))
    assert fetch(tmp_path / "data", "okvqa") == 0
    assert [name for name, _ in calls] == list(okvqa_stem.NLTK_RESOURCES)
    assert f"OK-VQA stemming data in place ({okvqa_stem.nltk_data_dir()}" in capsys.readouterr().out
    assert okvqa_stem.missing_nltk_data() == []


def test_okvqa_fetch_from_a_local_copy_downloads_nothing_and_says_what_to_copy_where(tmp_path, benchmark,
                                                                                    monkeypatch, capsys):
    import nltk

    from flamingo_eval.metrics import okvqa_stem

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk-home")])
    monkeypatch.setattr(nltk, "download", lambda *a, **k: pytest.fail("--source means no network"))
    assert fetch(tmp_path / "data", "okvqa", "--source", str(benchmark)) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.lstrip().startswith("NLTK"))
    assert "punkt_tab, averaged_perceptron_tagger_eng, wordnet missing (not downloaded with --source)" in line
    assert f"copy that nltk_data folder's contents to {okvqa_stem.nltk_data_dir()}" in line
    assert (tmp_path / "data" / "okvqa" / "mscoco_val2014_annotations.json").is_file()  # the annotations still came
