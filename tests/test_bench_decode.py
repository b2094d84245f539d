"""The decode benchmark runs end to end on a tiny model (no reference venv needed) and its systems agree."""

import importlib.util
import re
from pathlib import Path


def test_decode_bench_smoke_run(capsys):
    path = Path(__file__).resolve().parent.parent / "bench" / "decode.py"
    spec = importlib.util.spec_from_file_location("bench_decode", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--queries", "3", "--shots", "0", "2", "--naive-queries", "2", "--batch", "2", "--no-reference",
            "--layers", "2", "--width", "64", "--every", "1", "--vit-width", "64", "--vit-layers", "1"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "N=3 queries" in out and "outputs: all identical" in out
    for system in ("project", "naive"):  # one table row per shot count
        assert len(re.findall(rf"^\s+\d+ {system} ", out, re.M)) == 2
