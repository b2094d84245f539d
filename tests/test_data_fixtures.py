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


def test_each_eval_image_is_the_near_duplicate_of_one_pool_image():
    """RICES tests rely on this: the nearest pool image (in pixels) of every eval image is its twin."""
    import numpy as np

    from flamingo_eval.data import load_split
    from flamingo_eval.task import load_task

    twins = {"coco": {"164": "9", "192": "25", "196": "30", "208": "34", "241": "36", "257": "49"},
             "hateful_memes": {"8291": "1235", "46971": "42953", "10492": "23058", "31579": "13894",
                               "5462": "37408", "91768": "82403"},
             "vizwiz": {str(i): str(i) for i in range(6)}}
    for task_name, expected in twins.items():
        task = load_task(task_name)
        pool, ev = load_split(task, "demo", FIXTURES / "data"), load_split(task, "eval", FIXTURES / "data")
        pixels = np.stack([np.asarray(s.image.load(), dtype=float).ravel() for s in pool])
        for s in ev:
            dist = ((pixels - np.asarray(s.image.load(), dtype=float).ravel()) ** 2).sum(1)
            assert pool.ids[int(dist.argmin())] == expected[s.id], (task_name, s.id)
