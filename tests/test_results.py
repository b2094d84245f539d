"""Result files: atomic writes, and an item log that survives a crash mid-line."""

import json

import pytest

from flamingo_eval.errors import UserError
from flamingo_eval.results import ItemLog, ensure_writable_dir, write_json_atomic


def test_item_log_reads_back_rows_and_skips_a_line_cut_by_a_crash(tmp_path):
    log = ItemLog(tmp_path / "items" / "k.r0.jsonl")
    log.append([{"id": "1", "answer": "a"}, {"id": "2", "answer": "b"}])
    with open(log.path, "a") as f:
        f.write('{"id": "3", "ans')  # the process died here
    log.append([{"id": "4", "answer": "d"}])
    rows = list(ItemLog.read_all([log.path]))
    assert [r["id"] for r in rows] == ["1", "2", "4"]


def test_atomic_json_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_unwritable_output_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="output directory .* is not writable"):
        ensure_writable_dir(blocker / "runs")
