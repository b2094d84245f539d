"""The Idefics benchmark runs end to end on tiny models of both families and its two systems agree."""

import importlib.util
import re
from pathlib import Path


def test_idefics_bench_smoke_run(capsys):
    path = Path(__file__).resolve().parent.parent / "bench" / "idefics.py"
    spec = importlib.util.spec_from_file_location("bench_idefics", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--queries", "3", "--idefics-shots", "0", "2", "--idefics2-shots", "2", "--batch", "2", "--layers", "4",
            "--width", "128", "--vit-width", "64", "--vit-layers", "1", "--idefics2-edge", "56", "--vocab", "400"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "N=3 queries" in out and "outputs: all identical" in out
    rows = re.findall(r"^(idefics2?)\s+(\d+)\s+3\s.*identical$", out, re.M)
    assert rows == [("idefics", "0"), ("idefics", "2"), ("idefics2", "2")]
