"""Result files: atomic writes, and an item log that survives a crash mid-line."""

import json

import pytest

from flamingo_eval.errors import UserError
from flamingo_eval.results import ItemLog, ensure_writable_dir, write_json_atomic, write_jsonl_atomic


def test_item_log_reads_back_rows_and_skips_a_line_cut_by_a_crash(tmp_path):
    log = ItemLog(tmp_path / "items" / "k.r0.jsonl")
    log.append([{"id": "1", "answer": "a"}, {"id": "2", "answer": "b"}])
    with open(log.path, "a") as f:
        f.write('{"id": "3", "ans')  # the process died here
    (at_4,) = log.append([{"id": "4", "answer": "d"}])
    rows = list(ItemLog.scan([log.path]))
    assert [r["id"] for _, _, r in rows] == ["1", "2", "4"]
    assert [ItemLog.read_at(path, at)["id"] for path, at, _ in rows] == ["1", "2", "4"]
    assert rows[-1][1] == at_4 and ItemLog.read_at(log.path, at_4) == {"id": "4", "answer": "d"}


def test_item_log_offsets_count_bytes_not_characters(tmp_path):
    log = ItemLog(tmp_path / "k.r0.jsonl")
    offsets = log.append([{"id": "1", "answer": "café\u2028"}, {"id": "2", "answer": "b"}])
    assert [ItemLog.read_at(log.path, at)["id"] for at in offsets] == ["1", "2"]
    assert [r["answer"] for _, _, r in ItemLog.scan([log.path])] == ["café\u2028", "b"]


def test_jsonl_is_written_as_rows_are_produced_and_a_failure_leaves_nothing(tmp_path):
    def rows():
        yield {"id": "1"}
        assert (tmp_path / "s.jsonl").exists() is False  # nothing renamed before the last row
        raise RuntimeError("the run died mid-file")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(tmp_path / "s.jsonl", rows())
    assert list(tmp_path.iterdir()) == []
    write_jsonl_atomic(tmp_path / "s.jsonl", ({"id": str(i)} for i in range(3)))
    assert (tmp_path / "s.jsonl").read_text() == '{"id": "0"}\n{"id": "1"}\n{"id": "2"}\n'


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
