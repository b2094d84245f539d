"""The full-scale memory benchmark runs end to end (here at a two-thousandth of VQAv2 val, one process)."""

import importlib.util
import re
from pathlib import Path


def test_fullscale_bench_smoke_run(tmp_path, capsys):
    path = Path(__file__).resolve().parent.parent / "bench" / "fullscale.py"
    spec = importlib.util.spec_from_file_location("bench_fullscale", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--scale", "0.0005", "--pool", "300", "--shots", "4", "--trials", "2", "--nproc", "1",
            "--root", str(tmp_path / "data"), "--out", str(tmp_path / "runs")]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"107 questions, 4 shots, 2 trials, 1 process\(es\), \d+ s; output digest [0-9a-f]{16}", out)
    assert re.search(r"^\| 0 \| \d+ \| \d+ \| -?\d+ \| \d+ \|$", out, re.M)  # rank 0's peak memory
    samples = (tmp_path / "runs" / "stub-instant" / "vqav2_4shot_random.samples.jsonl").read_text().splitlines()
    assert len(samples) == 2 * 107
