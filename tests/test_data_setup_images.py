"""Image archives: downloaded with progress and resumption, checked against the published SHA-256 or size,
unpacked into the data-root folder; `data fetch --images` on a local (file://) archive."""

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.data_setup import catalogue
from flamingo_eval.data_setup.images import download, fetch_images, unpack, verify
from flamingo_eval.errors import DataError
from tests.helpers_eval_benchmark import FIXTURES, make_eval_benchmark


def make_zip(path: Path, top: str, source: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{top}/", "")
        for f in sorted(source.iterdir()):
            z.write(f, f"{top}/{f.name}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def val_zip(tmp_path):
    return make_zip(tmp_path / "val2014.zip", "val2014", FIXTURES / "coco/val2014")


def coco_val(zip_path: Path, **changes) -> catalogue.ImageSource:
    published = {"url": zip_path.as_uri(), "bytes": zip_path.stat().st_size, "sha256": sha256(zip_path)}
    return replace(catalogue.IMAGES["coco/val2014"], **{**published, **changes})


def test_download_resumes_from_a_part_file(tmp_path, val_zip):
    dest = tmp_path / "out" / "val2014.zip"
    dest.parent.mkdir()
    Path(str(dest) + ".part").write_bytes(val_zip.read_bytes()[:100])  # an interrupted earlier attempt
    download(val_zip.as_uri(), dest, val_zip.stat().st_size, progress=False)
    assert dest.read_bytes() == val_zip.read_bytes() and not Path(str(dest) + ".part").exists()


def test_a_checksum_mismatch_deletes_the_archive(tmp_path, val_zip):
    bad = coco_val(val_zip, sha256="0" * 64)
    with pytest.raises(DataError, match="does not match the published"):
        verify(val_zip, bad, progress=False)
    assert not val_zip.exists()


def test_a_size_mismatch_is_caught_before_hashing(tmp_path, val_zip):
    with pytest.raises(DataError, match="bytes, but"):
        verify(val_zip, coco_val(val_zip, bytes=1), progress=False)


def test_unpack_refuses_entries_outside_the_expected_folder(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("val2014/ok.jpg", b"x")
        z.writestr("val2014/../../escape.txt", b"x")
    with pytest.raises(DataError, match="not under val2014/"):
        unpack(evil, tmp_path / "t", "val2014", progress=False)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "t").exists()


def test_fetch_images_downloads_verifies_and_unpacks_into_the_layout_folder(tmp_path, val_zip):
    root = tmp_path / "data"
    line = fetch_images(coco_val(val_zip), root, progress=False)
    assert sorted(p.name for p in (root / "coco/val2014").iterdir()) == sorted(
        p.name for p in (FIXTURES / "coco/val2014").iterdir())
    assert not (root / "coco/val2014.zip").exists()
    assert "published SHA-256 checked" in line and sha256(val_zip) in line


def test_data_fetch_images_fills_the_open_folders_and_then_check_passes(tmp_path, monkeypatch, capsys):
    archives = tmp_path / "archives"
    archives.mkdir()
    sources = dict(catalogue.IMAGES)
    for folder in ("coco/train2014", "coco/val2014"):
        z = make_zip(archives / f"{Path(folder).name}.zip", Path(folder).name, FIXTURES / folder)
        # no published checksum for these: the size the server reports is what is checked
        sources[folder] = replace(sources[folder], url=z.as_uri(), bytes=None, sha256=None)
    monkeypatch.setattr(catalogue, "IMAGES", sources)
    benchmark = make_eval_benchmark(tmp_path / "eval_benchmark")
    root = tmp_path / "data"
    assert main(["data", "fetch", "coco", "vqav2", "--images", "--source", str(benchmark), "--data-root", str(root),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("unpacked coco/val2014") == 1  # shared by coco and vqav2, fetched once
    assert "length sent checked" in out
    assert main(["data", "check", "coco", "vqav2", "--data-root", str(root)]) == 0
