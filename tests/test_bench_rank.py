"""The rank benchmark runs end to end on a tiny model, and the project's ranking equals the reference
algorithm's (get_rank_classifications: each class fed token by token over the prompt's cache). OpenFlamingo's
own code needs its own environment (scripts/parity/README.md): left out here."""

import importlib.util
import re
from pathlib import Path


def test_rank_bench_smoke_run(capsys):
    path = Path(__file__).resolve().parent.parent / "bench" / "rank.py"
    spec = importlib.util.spec_from_file_location("bench_rank", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--classes", "30", "--batch", "2", "--shots", "2", "--layers", "2", "--width", "64", "--every", "1",
            "--vit-width", "64", "--vit-layers", "1", "--no-reference"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "30 classes" in out and "OpenFlamingo: not found (skipped)" in out
    row = re.search(r"^algorithm +\S+ +\S+x +(\S+) +(\w+)$", out, re.M)
    assert row is not None and float(row.group(1)) < 1e-4 and row.group(2) == "same"
    assert re.search(r"project: \d+ passes of token trees", out)
