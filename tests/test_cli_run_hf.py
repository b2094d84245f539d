"""`flamingo-eval run` end to end on tiny Idefics, Idefics2 and Idefics3 checkpoints and the fixture data:
0 and 4 shots with RICES, trials, resume, and two processes under torchrun writing what one does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from tests.helpers_idefics import BUILDERS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = str(ROOT / "tests" / "fixtures" / "data")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module", params=["idefics", "idefics2", "idefics3"])
def spec(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp(request.param)
    BUILDERS[request.param](root / "model", seed=3)
    path = root / "spec.yaml"
    path.write_text(f"family: {request.param}\nmodel: model\n")  # relative to the spec file
    return path


def run(spec: Path, out: Path, *args: str) -> int:
    return main(["run", "--model", str(spec), "--data-root", FIXTURES, "--output-dir", str(out), "--quiet", *args])


def read(out: Path, stem: str) -> tuple[dict, list[dict]]:
    folder = next(p for p in out.iterdir() if p.is_dir())
    res = json.loads((folder / f"{stem}.json").read_text())
    return res, [json.loads(x) for x in (folder / f"{stem}.samples.jsonl").read_text().splitlines()]


def test_zero_and_four_shots_with_rices(spec, tmp_path, tiny_clip):
    assert run(spec, tmp_path / "runs", "--task", "vqav2", "--shots", "0", "4", "--rices", "--rices-encoder", tiny_clip,
               "--rices-pretrained", "none") == 0
    for shots in (0, 4):
        res, samples = read(tmp_path / "runs", f"vqav2_{shots}shot_rices")
        assert res["model"]["family"] == spec.read_text().split()[1] and res["model"]["weights_sha256"]
        assert res["n"] == len(samples) > 0 and 0.0 <= res["mean"] <= 100.0
        assert all(s["prompt"].count("<image>") == (shots + 1 if shots else 1) for s in samples)
        assert all("\n" not in s["output"] for s in samples)


def test_trials_and_resume(spec, tmp_path):
    args = ("--task", "vqav2", "hateful_memes", "--shots", "2", "--trials", "2")
    assert run(spec, tmp_path / "runs", *args) == 0
    first = {stem: read(tmp_path / "runs", stem) for stem in ("vqav2_2shot_random", "hateful_memes_2shot_random")}
    res, samples = first["vqav2_2shot_random"]
    assert [t["seed"] for t in res["trials"]] == [42, 43] and len(samples) == 2 * res["n"]
    folder = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    logs = {p: p.read_text() for p in (folder / "items").glob("*.jsonl")}
    assert run(spec, tmp_path / "runs", *args) == 0  # the same command again: nothing recomputed
    assert {p: p.read_text() for p in (folder / "items").glob("*.jsonl")} == logs
    for stem, (res, samples) in first.items():
        again, again_samples = read(tmp_path / "runs", stem)
        assert again["trials"] == res["trials"] and again_samples == samples


def test_two_processes_write_the_same_results_as_one(spec, tmp_path):
    args = ["-m", "flamingo_eval", "run", "--model", str(spec), "--data-root", FIXTURES, "--quiet",
            "--task", "vqav2", "--shots", "2"]
    one = subprocess.run([sys.executable, *args, "--output-dir", str(tmp_path / "one")], env=ENV,
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29600 + os.getpid() % 1000), *args, "--output-dir", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a, sa = read(tmp_path / "one", "vqav2_2shot_random")
    b, sb = read(tmp_path / "two", "vqav2_2shot_random")
    assert b["world_size"] == 2 and a["trials"] == b["trials"]
    assert sorted((s["id"], s["answer"]) for s in sa) == sorted((s["id"], s["answer"]) for s in sb)
