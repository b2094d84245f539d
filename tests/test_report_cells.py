"""Reading runs into cells: one per leaderboard row, each item a samples line with its demonstrations in prompt
order; samples written before runs recorded their prompt chunks are rebuilt from the task's data."""

import json

import pytest

from flamingo_eval.report.cells import ReadStats, cell_id, collect_cells, iter_items
from tests.helpers_report import read_samples, stand_in_run
from tests.helpers_results import write_result
from tests.test_runner import FIXTURES


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("cells")
        mp.setenv("FLAMINGO_EVAL_CACHE", str(base / "cache"))
        return stand_in_run(base / "runs")


def test_one_cell_per_leaderboard_row_with_its_published_numbers_and_samples(run, tmp_path):
    write_result(tmp_path, "of-9b", "coco", 4, [88.0, 90.0])
    cells = collect_cells([str(run), str(tmp_path)])
    keys = [(c.row["model"], c.task, c.shots, c.row["selection"]) for c in cells]
    assert sorted(keys) == sorted([("of-9b", "coco", 4, "random")] + [
        ("copy-last-demo", t, s, "random") for t in ("vqav2", "hateful_memes") for s in (0, 2)])
    of9b = next(c for c in cells if c.row["model"] == "of-9b")
    assert of9b.row["published"] == "89.0" and of9b.row["published_std"] == "0.3" and of9b.samples_path is None
    vqa = next(c for c in cells if c.id == "copy-last-demo__vqav2_2shot_random")
    assert vqa.samples_path == run / "vqav2_2shot_random.samples.jsonl" and vqa.seeds() == [1, 2]
    assert len({c.id for c in cells}) == len(cells)


def test_cell_ids_are_safe_file_names():
    assert cell_id({"model": "my model/v2", "task": "vqav2:test-dev", "shots": 4, "selection": "rices"}) == \
        "my_model_v2__vqav2_test-dev_4shot_rices"


def test_an_item_is_its_samples_line_with_the_demonstrations_in_prompt_order(run):
    [cell] = [c for c in collect_cells([str(run)]) if c.id == "copy-last-demo__vqav2_2shot_random"]
    lines = read_samples(cell.samples_path)
    stats = ReadStats()
    items = list(iter_items(cell, None, stats))
    assert stats.lines == len(lines) == len(items) and stats.rebuilt == stats.without_chunks == 0
    for line, item in zip(lines, items, strict=True):
        assert (item.seed, item.id, item.output, item.answer, item.references, item.score, item.prompt) == (
            line["seed"], line["id"], line["output"], line["answer"], line["references"], line["score"], line["prompt"])
        assert [d.id for d in item.demos] == line["demos"]
        assert [(d.image, d.text) for d in item.demos] == [(c["image"], c["text"]) for c in line["chunks"][:-1]]
        assert (item.query_image, item.query_text) == (line["chunks"][-1]["image"], line["chunks"][-1]["text"])
        assert item.query_image.startswith("coco/val2014/") and item.chunks_known


def _strip_chunks(cell, tmp_path):
    """The cell as a run from before samples recorded chunks (and results their data paths)."""
    lines = read_samples(cell.samples_path)
    old = tmp_path / cell.samples_path.name
    old.write_text("".join(json.dumps({k: v for k, v in x.items() if k != "chunks"}) + "\n" for x in lines))
    cell.samples_path = old
    cell.result = {k: v for k, v in cell.result.items() if k != "data_paths"}
    return lines


@pytest.mark.parametrize("stem", ["vqav2_2shot_random", "vqav2_0shot_random", "hateful_memes_2shot_random"])
def test_samples_without_recorded_chunks_are_rebuilt_from_the_task_data(run, tmp_path, stem):
    [cell] = [c for c in collect_cells([str(run)]) if c.id == f"copy-last-demo__{stem}"]
    lines = _strip_chunks(cell, tmp_path)
    stats = ReadStats()
    items = list(iter_items(cell, FIXTURES, stats))
    assert stats.rebuilt == len(lines) and not stats.notes
    for line, item in zip(lines, items, strict=True):
        assert [(d.id, d.image, d.text) for d in item.demos] == [
            (d, c["image"], c["text"]) for d, c in zip(line["demos"], line["chunks"][:-1], strict=True)]
        assert (item.query_image, item.query_text) == (line["chunks"][-1]["image"], line["chunks"][-1]["text"])


def test_without_chunks_or_data_the_demonstrations_are_shown_by_id_with_one_note(run, tmp_path):
    cells = [c for c in collect_cells([str(run)]) if c.task == "vqav2"]
    stats = ReadStats()
    for cell in cells:
        lines = _strip_chunks(cell, tmp_path)
        items = list(iter_items(cell, tmp_path / "no-data", stats))
        assert [[d.id for d in i.demos] for i in items] == [x["demos"] for x in lines]
        assert all(not i.chunks_known and i.query_image is None for i in items)
    assert stats.without_chunks == sum(c.result["n"] * 2 for c in cells)
    [note] = stats.notes
    assert note.startswith("vqav2: samples written before") and "--data-root" in note


def test_unreadable_lines_are_counted_not_fatal(run, tmp_path):
    [cell] = [c for c in collect_cells([str(run)]) if c.id == "copy-last-demo__vqav2_2shot_random"]
    text = cell.samples_path.read_text()
    broken = tmp_path / "broken.samples.jsonl"
    broken.write_text('{"seed": 1, "id": "cut sh\n' + text + "[1, 2]\n\n")
    cell.samples_path = broken
    stats = ReadStats()
    assert len(list(iter_items(cell, None, stats))) == len(text.splitlines()) and stats.bad_lines == 2
