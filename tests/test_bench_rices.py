"""The RICES benchmark runs end to end (here at a thousandth of VQAv2's size) and restores what it patches."""

import importlib.util
from pathlib import Path

from flamingo_eval.demos.index import FlatIPIndex


def test_rices_bench_smoke_run(capsys):
    path = Path(__file__).resolve().parent.parent / "bench" / "rices.py"
    spec = importlib.util.spec_from_file_location("bench_rices", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    search = FlatIPIndex.search
    assert bench.main(["--scale", "0.001", "--k", "4"]) == 0
    assert FlatIPIndex.search is search
    out = capsys.readouterr().out
    assert "select() for 214 questions" in out and "budget 120 s: OK" in out
