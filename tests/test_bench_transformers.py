"""The transformers-family benchmark runs end to end on tiny Qwen2.5-VL and Llama 3.2 Vision models and its two
systems (the family, transformers' generate) produce identical ids."""

import importlib.util
import re
from pathlib import Path


def test_transformers_bench_smoke_run(capsys):
    path = Path(__file__).resolve().parent.parent / "bench" / "transformers_family.py"
    spec = importlib.util.spec_from_file_location("bench_transformers_family", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--queries", "3", "--shots", "0", "2", "--batch", "2", "--layers", "4", "--width", "128",
            "--vit-width", "64", "--vit-layers", "2", "--qwen-max-pixels", "12544", "--mllama-tile", "56",
            "--vocab", "400"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "N=3 queries" in out and "outputs: all identical" in out
    rows = re.findall(r"^(qwen2_5_vl|mllama)\s+(\d+)\s+3\s.*identical$", out, re.M)
    assert rows == [("qwen2_5_vl", "0"), ("qwen2_5_vl", "2"), ("mllama", "0"), ("mllama", "2")]
