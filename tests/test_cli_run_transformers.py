"""`flamingo-eval run` end to end on tiny transformers-family checkpoints (tests/helpers_vlm.py) and the fixture
data: VQAv2 and COCO at 0 and 4 shots with RICES in both prompt formats for every architecture (Qwen2.5-VL and
Llama 3.2 Vision in the default suite, the others under ``-m slow``), trials and resume, and (``-m slow``) two
processes under torchrun writing what one does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from tests import helpers_vlm as V

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = str(ROOT / "tests" / "fixtures" / "data")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
ARCHS = [a for a in V.ARCHS if a in V.BUILDERS]
FAST = ("qwen2_5_vl", "mllama")  # the rest run with `pytest -m slow` (tests/test_transformers_adapter.py checks
# every architecture against transformers in the default suite)
RUNS = [pytest.param(a, marks=() if a in FAST else pytest.mark.slow) for a in ARCHS]


def spec(directory: Path, prompt_format: str) -> Path:
    path = directory.parent / f"{directory.name}-{prompt_format}.yaml"
    path.write_text(f"family: transformers\nmodel: {directory.name}\nprompt_format: {prompt_format}\n")
    return path


def run(spec: Path, out: Path, *args: str) -> int:
    return main(["run", "--model", str(spec), "--data-root", FIXTURES, "--output-dir", str(out), "--quiet", *args])


def read(out: Path, stem: str) -> tuple[dict, list[dict]]:
    folder = next(p for p in out.iterdir() if p.is_dir())
    res = json.loads((folder / f"{stem}.json").read_text())
    return res, [json.loads(x) for x in (folder / f"{stem}.samples.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("prompt_format", ["chat", "raw"])
@pytest.mark.parametrize("arch", RUNS)
def test_vqav2_and_coco_at_zero_and_four_shots_with_rices(tiny_vlm, tiny_clip, tmp_path, arch, prompt_format):
    directory = tiny_vlm(arch)
    model_type = json.loads((directory / "config.json").read_text())["model_type"]  # smolvlm2's is "smolvlm"
    path = spec(directory, prompt_format)
    assert run(path, tmp_path / "runs", "--task", "vqav2", "coco", "--shots", "0", "4", "--rices",
               "--rices-encoder", tiny_clip, "--rices-pretrained", "none") == 0
    for task in ("vqav2", "coco"):
        for shots in (0, 4):
            res, samples = read(tmp_path / "runs", f"{task}_{shots}shot_rices")
            assert res["model"]["family"] == "transformers" and res["model"]["architecture"] == model_type
            assert res["model"]["spec"]["prompt_format"] == prompt_format and res["model"]["weights_sha256"]
            assert res["n"] == len(samples) > 0
            assert all("\n" not in s["output"] for s in samples)
            if prompt_format == "chat" and arch == "mllama":  # its template prints a date: a fixed one, recorded
                assert res["model"]["chat_template_date"] == "26 Jul 2024"


def test_trials_and_resume(tiny_vlm, tmp_path):
    path = spec(tiny_vlm(ARCHS[0]), "chat")
    args = ("--task", "vqav2", "hateful_memes", "--shots", "2", "--trials", "2")
    assert run(path, tmp_path / "runs", *args) == 0
    first = {stem: read(tmp_path / "runs", stem) for stem in ("vqav2_2shot_random", "hateful_memes_2shot_random")}
    res, samples = first["vqav2_2shot_random"]
    assert [t["seed"] for t in res["trials"]] == [42, 43] and len(samples) == 2 * res["n"]
    folder = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    logs = {p: p.read_text() for p in (folder / "items").glob("*.jsonl")}
    assert run(path, tmp_path / "runs", *args) == 0  # the same command again: nothing recomputed
    assert {p: p.read_text() for p in (folder / "items").glob("*.jsonl")} == logs
    for stem, (res, samples) in first.items():
        again, again_samples = read(tmp_path / "runs", stem)
        assert again["trials"] == res["trials"] and again_samples == samples


@pytest.mark.slow  # two torchrun processes start transformers: about a minute on a busy machine
def test_two_processes_write_the_same_results_as_one(tiny_vlm, tmp_path):
    path = spec(tiny_vlm("mllama"), "raw")
    args = ["-m", "flamingo_eval", "run", "--model", str(path), "--data-root", FIXTURES, "--quiet",
            "--task", "vqav2", "--shots", "2"]
    one = subprocess.run([sys.executable, *args, "--output-dir", str(tmp_path / "one")], env=ENV,
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29700 + os.getpid() % 1000), *args, "--output-dir", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a, sa = read(tmp_path / "one", "vqav2_2shot_random")
    b, sb = read(tmp_path / "two", "vqav2_2shot_random")
    assert b["world_size"] == 2 and a["trials"] == b["trials"]
    assert sorted((s["id"], s["answer"]) for s in sa) == sorted((s["id"], s["answer"]) for s in sb)
