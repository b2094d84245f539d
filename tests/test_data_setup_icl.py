"""`data fetch` / `data check` for NoCaps, TextCaps and VL-ICL: their annotation files from the official URLs
and VL-ICL's Hugging Face dataset (stood in for by the fixture files: nothing is downloaded), VL-ICL's zips
unpacked as its unzip.sh does, and every image of a multi-image item checked."""

import shutil
import zipfile
from pathlib import Path

import huggingface_hub
import pytest

from flamingo_eval.cli import main
from flamingo_eval.data_setup import images as images_module
from flamingo_eval.data_setup.catalogue import OTHER_ANNOTATIONS, VLICL_REPO
from tests.helpers_eval_benchmark import FIXTURES, make_eval_benchmark


@pytest.fixture
def offline_sources(monkeypatch, tmp_path):
    """URL downloads and hub files served from the fixture tree; VL-ICL's zips built from its fixture images."""
    by_url = {s.url: FIXTURES / path for path, s in OTHER_ANNOTATIONS.items() if s.url}
    fetched = []

    def download(url, dest, expected_bytes=None, progress=True):
        fetched.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(by_url[url], dest)
        return dest

    def hf_hub_download(repo_id, filename, repo_type=None, **kwargs):
        assert (repo_id, repo_type) == (VLICL_REPO, "dataset")
        fetched.append(filename)
        task, name = filename.split("/")
        if name.endswith(".zip"):
            archive = tmp_path / "hub" / task / name
            archive.parent.mkdir(parents=True, exist_ok=True)
            folder = FIXTURES / "vlicl" / task
            with zipfile.ZipFile(archive, "w") as z:
                for p in sorted((folder / Path(name).stem).rglob("*")):
                    z.write(p, p.relative_to(folder).as_posix())
            return str(archive)
        return str(FIXTURES / "vlicl" / filename)

    monkeypatch.setattr(images_module, "download", download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return fetched


def fetch(root, *args):
    return main(["data", "fetch", *args, "--data-root", str(root), "--quiet"])


def test_annotation_files_come_from_their_official_sources(tmp_path, offline_sources, capsys):
    root = tmp_path / "data"
    benchmark = make_eval_benchmark(tmp_path / "eval_benchmark")
    assert fetch(root, "nocaps", "textcaps", "vlicl_clevr", "--source", str(benchmark)) == 0
    for rel in ("nocaps/nocaps_val_4500_captions.json", "textcaps/TextCaps_0.1_val.json", "vlicl/clevr/query.json",
                "vlicl/clevr/support.json", "coco/dataset_coco.json"):
        assert (root / rel).read_bytes() == (FIXTURES / rel).read_bytes(), rel
    out = capsys.readouterr().out
    assert "https://nocaps.s3.amazonaws.com/nocaps_val_4500_captions.json" in out
    assert "huggingface.co/datasets/ys-zong/VL-ICL clevr/query.json" in out
    assert "nocaps/validation/ absent: 4,500 Open Images validation images, no archive (CC BY 2.0 (Open Images)); --images downloads them" in out
    assert "clevr/support.zip, clevr/query.zip of ys-zong/VL-ICL" in out


def test_vlicl_images_are_its_zips_unpacked_into_the_task_folder_and_the_root_checks(tmp_path, offline_sources):
    root = tmp_path / "data"
    assert fetch(root, "vlicl_operator_induction_interleaved", "--images") == 0
    assert "operator_induction_interleaved/support.zip" in offline_sources
    assert "operator_induction_interleaved/query.zip" not in offline_sources  # its queries live in support/
    assert main(["data", "check", "vlicl_operator_induction_interleaved", "--data-root", str(root)]) == 0
    offline_sources.clear()
    assert fetch(root, "vlicl_operator_induction_interleaved", "--images") == 0
    assert not offline_sources  # present: nothing fetched again


def test_check_names_a_missing_second_image_of_a_pair(tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "vlicl", root / "vlicl")
    second = sorted((root / "vlicl/matching_mi/query").glob("*_b.jpg"))[0]
    second.unlink()
    assert main(["data", "check", "vlicl_matching_mi", "--data-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "1 of" in out and second.name in out
    assert "fix: flamingo-eval data fetch vlicl_matching_mi --images --force" in out


def test_nocaps_images_are_fetched_one_by_one_from_their_listed_urls(tmp_path, monkeypatch):
    from flamingo_eval.data_setup.catalogue import image_source

    root = tmp_path / "data"
    listing = root / "nocaps/nocaps_val_4500_captions.json"
    listing.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "nocaps/nocaps_val_4500_captions.json", listing)
    urls = []

    def download(url, dest, expected_bytes=None, progress=True):
        urls.append(url)
        shutil.copyfile(FIXTURES / "nocaps/validation" / Path(url).name, dest)
        return dest

    monkeypatch.setattr(images_module, "download", download)
    source = image_source("nocaps", "nocaps/validation")
    (root / "nocaps/validation").mkdir()
    first = sorted((FIXTURES / "nocaps/validation").iterdir())[0]
    shutil.copyfile(first, root / "nocaps/validation" / first.name)  # an interrupted fetch left one
    line = images_module.fetch_images(source, root, progress=False)
    assert "5 images (1 already there)" in line and len(urls) == 5
    assert sorted(p.name for p in (root / "nocaps/validation").iterdir()) == \
        sorted(p.name for p in (FIXTURES / "nocaps/validation").iterdir())
