"""The committed fixture data is exactly what tests/fixtures/make_fixtures.py writes, and stays small."""

import importlib.util
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def load_maker():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def test_the_generator_reproduces_the_committed_files(tmp_path):
    load_maker().make_all(tmp_path / "data")
    made, committed = files_under(tmp_path / "data"), files_under(FIXTURES / "data")
    assert sorted(made) == sorted(committed)
    # annotation files byte for byte; images may differ in encoder bytes across Pillow versions
    for rel, path in made.items():
        if path.suffix in (".json", ".jsonl"):
            assert path.read_bytes() == committed[rel].read_bytes(), rel


def test_the_fixture_tree_stays_under_a_megabyte():
    assert sum(p.stat().st_size for p in files_under(FIXTURES / "data").values()) < 1_000_000
