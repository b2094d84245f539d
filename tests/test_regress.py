"""regress: exit 0 when every baseline score holds within tolerance, 1 on a drop or a missing entry."""

from flamingo_eval.cli import main
from tests.helpers_results import write_result


def _setup(tmp_path, current_score, with_second=True):
    base, cur = tmp_path / "base", tmp_path / "cur"
    write_result(base, "toy", "coco", 4, [50.0])
    write_result(base, "toy", "vqav2", 4, [30.0], metric="vqa_accuracy")
    write_result(cur, "toy", "coco", 4, [current_score])
    if with_second:
        write_result(cur, "toy", "vqav2", 4, [31.0], metric="vqa_accuracy")
    return str(base), str(cur)


def test_scores_within_tolerance_pass(tmp_path, capsys):
    base, cur = _setup(tmp_path, 49.8)
    assert main(["regress", "--baseline", base, "--current", cur, "--tolerance", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "-0.20" in out and "OK" in out


def test_a_drop_beyond_tolerance_fails(tmp_path, capsys):
    base, cur = _setup(tmp_path, 45.0)
    assert main(["regress", "--baseline", base, "--current", cur, "--tolerance", "0.5"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_missing_current_entry_fails(tmp_path, capsys):
    base, cur = _setup(tmp_path, 50.0, with_second=False)
    assert main(["regress", "--baseline", base, "--current", cur]) == 1
    assert "MISSING" in capsys.readouterr().out
