"""`flamingo-eval run` end to end on a tiny real Flamingo (the MPT parity model) and the fixture data:
the bare form, several tasks/shots/trials, RICES, batch-size and world-size invariance, resume after SIGKILL,
and one clear line for every kind of bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flamingo_eval.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "tests" / "golden" / "flamingo" / "mpt-x1" / "spec.yaml")
FIXTURES = str(ROOT / "tests" / "fixtures" / "data")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def run_cli(tmp_path, *args, out="runs"):
    return main(["run", "--model", SPEC, "--data-root", FIXTURES, "--output-dir", str(tmp_path / out),
                 "--quiet", *args])


def result(tmp_path, stem, out="runs"):
    d = tmp_path / out / "mpt-x1"
    res = json.loads((d / f"{stem}.json").read_text())
    samples = [json.loads(x) for x in (d / f"{stem}.samples.jsonl").read_text().splitlines()]
    return res, samples


def answers(samples):
    return {(s["seed"], s["id"]): s["answer"] for s in samples}


def same_answers(a, b):
    """Generated text must match exactly; option probabilities to float noise (summation order
    follows the batch shape, ~1e-7), which cannot move a score."""
    x, y = answers(a), answers(b)
    assert x.keys() == y.keys()
    for key in x:
        if isinstance(x[key], float):
            assert x[key] == pytest.approx(y[key], rel=1e-5), key
        else:
            assert x[key] == y[key], key
    return True


def test_the_bare_form_runs_an_evaluation(tmp_path, capsys):
    code = main(["--model", SPEC, "--task", "vqav2", "--shots", "2", "--data-root", FIXTURES,
                 "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 0
    res, samples = result(tmp_path, "vqav2_2shot_random")
    assert res["model"]["checkpoint_sha256"] and res["n"] == len(samples) > 0
    assert "vqav2" in capsys.readouterr().out


def test_several_tasks_shots_and_trials_each_get_a_result(tmp_path):
    assert run_cli(tmp_path, "--task", "vqav2", "hateful_memes", "--shots", "0", "2", "--trials", "2") == 0
    for task in ("vqav2", "hateful_memes"):
        for shots in (0, 2):
            res, samples = result(tmp_path, f"{task}_{shots}shot_random")
            assert [t["seed"] for t in res["trials"]] == [42, 43]
            assert len(samples) == 2 * res["n"]
    memes, samples = result(tmp_path, "hateful_memes_2shot_random")
    assert memes["task"]["metric"] == "roc_auc" and 0.0 <= memes["mean"] <= 100.0
    assert all(0.0 < s["answer"] < 1.0 and len(s["output"]["logprobs"]) == 2 for s in samples)


def test_rices_selects_demonstrations_by_clip_similarity(tmp_path, tiny_clip):
    assert run_cli(tmp_path, "--task", "vqav2", "--shots", "2", "--rices", "--rices-encoder", tiny_clip,
                   "--rices-pretrained", "none") == 0
    res, samples = result(tmp_path, "vqav2_2shot_rices")
    assert res["selection"]["selection"] == "rices" and res["selection"]["encoder"] == tiny_clip
    assert all(len(s["similarities"]) == 2 and s["similarities"][0] <= s["similarities"][1] for s in samples)


def test_rices_encoder_toy_is_the_shipped_toy_vit_without_a_pretrained_tag(tmp_path):
    from flamingo_eval.toy.demo import RICES_ENCODER

    assert run_cli(tmp_path, "--task", "vqav2", "--shots", "2", "--rices", "--rices-encoder", "toy") == 0
    res, _ = result(tmp_path, "vqav2_2shot_rices")
    assert (res["selection"]["encoder"], res["selection"]["pretrained"]) == (RICES_ENCODER, None)


def test_scores_are_identical_at_batch_sizes_1_and_4(tmp_path):
    for bs in ("1", "4"):
        assert run_cli(tmp_path, "--task", "vqav2", "hateful_memes", "--shots", "2", "--batch-size", bs,
                       out=f"bs{bs}") == 0
    for stem in ("vqav2_2shot_random", "hateful_memes_2shot_random"):
        a, sa = result(tmp_path, stem, out="bs1")
        b, sb = result(tmp_path, stem, out="bs4")
        assert a["trials"] == b["trials"] and same_answers(sa, sb)


def _cli(*args):
    return [sys.executable, "-m", "flamingo_eval", "run", "--model", SPEC, "--data-root", FIXTURES, "--quiet", *args]


def test_two_processes_write_the_same_results_as_one(tmp_path):
    args = ["--task", "vqav2", "--shots", "2"]
    one = subprocess.run(_cli(*args, "--output-dir", str(tmp_path / "one")), env=ENV, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(29500 + os.getpid() % 1000), "-m", "flamingo_eval", "run",
                          "--model", SPEC, "--data-root", FIXTURES, "--quiet", *args, "--output-dir",
                          str(tmp_path / "two")], env=ENV, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a, sa = result(tmp_path, "vqav2_2shot_random", out="one")
    b, sb = result(tmp_path, "vqav2_2shot_random", out="two")
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert a["trials"] == b["trials"] and answers(sa) == answers(sb)
    assert sorted(s["id"] for s in sb) == sorted(s["id"] for s in sa)  # every item exactly once


def test_a_run_killed_with_sigkill_resumes_without_recomputing(tmp_path):
    args = ["--task", "vqav2", "coco", "--shots", "0", "2", "--batch-size", "1"]
    proc = subprocess.Popen(_cli(*args, "--output-dir", str(tmp_path / "runs")), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    items = tmp_path / "runs" / "mpt-x1" / "items"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        logs = list(items.glob("*.jsonl")) if items.exists() else []
        if sum(p.read_text().count("\n") for p in logs) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_text() for p in items.glob("*.jsonl")}
    done_before = sum(t.count("\n") for t in before.values())
    assert done_before >= 3

    rerun = subprocess.run(_cli(*args, "--output-dir", str(tmp_path / "runs")), env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = {p.name: p.read_text() for p in items.glob("*.jsonl")}
    for name, text in before.items():  # finished items were kept, not recomputed
        assert after[name].startswith(text.rstrip("\n").rsplit("\n", 1)[0])
    ids_per_log = [[json.loads(x)["id"] for x in t.splitlines() if x.endswith("}")] for t in after.values()]
    assert all(len(ids) == len(set(ids)) for ids in ids_per_log)  # nothing scored twice

    fresh = subprocess.run(_cli(*args, "--output-dir", str(tmp_path / "fresh")), env=ENV, capture_output=True, text=True)
    assert fresh.returncode == 0
    for stem in ("vqav2_0shot_random", "vqav2_2shot_random", "coco_0shot_random", "coco_2shot_random"):
        a, sa = result(tmp_path, stem)
        b, sb = result(tmp_path, stem, out="fresh")
        assert a["trials"] == b["trials"] and same_answers(sa, sb)


# ---- bad input: one line on stderr, a non-zero exit, no traceback ----------------------------------------

def one_line_error(capsys, code):
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("flamingo-eval: error:")]
    assert len(lines) == 1, err
    return lines[0]


def copy_fixtures(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FIXTURES, root)
    return root


def test_unknown_model_and_task_suggest_the_closest_name(tmp_path, capsys):
    line = one_line_error(capsys, main(["--model", "of-9x", "--task", "vqav2", "--shots", "4"]))
    assert "unknown model 'of-9x' (did you mean 'of-9b'?)" in line
    line = one_line_error(capsys, main(["--model", SPEC, "--task", "vqa2", "--shots", "4"]))
    assert "did you mean 'vqav2'" in line


def test_missing_data_file_names_it_and_the_expected_layout(tmp_path, capsys):
    line = one_line_error(capsys, main(["--model", SPEC, "--task", "textvqa", "--shots", "2", "--data-root",
                                        str(tmp_path)]))
    assert "textvqa/val_questions_vqa_format.json" in line and "--data val_questions=PATH" in line


def test_malformed_annotation_json_names_the_file(tmp_path, capsys):
    root = copy_fixtures(tmp_path)
    (root / "vqav2" / "v2_mscoco_val2014_annotations.json").write_text('{"annotations": [')
    line = one_line_error(capsys, main(["--model", SPEC, "--task", "vqav2", "--shots", "2", "--data-root", str(root)]))
    assert "v2_mscoco_val2014_annotations.json" in line


def test_empty_evaluation_split_is_refused(tmp_path, capsys):
    root = copy_fixtures(tmp_path)
    memes = root / "hateful_memes" / "test_seen.jsonl"
    memes.write_text("")
    line = one_line_error(capsys, main(["--model", SPEC, "--task", "hateful_memes", "--shots", "2",
                                        "--data-root", str(root)]))
    assert "empty" in line


def test_more_shots_than_the_pool_holds(tmp_path, capsys):
    line = one_line_error(capsys, run_cli(tmp_path, "--task", "vqav2", "--shots", "64"))
    assert "64 shots" in line and "pool holds" in line


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_line_error(capsys, main(["--model", SPEC, "--task", "vqav2", "--shots", "2", "--data-root", FIXTURES,
                                        "--output-dir", str(blocker / "runs")]))
    assert "not writable" in line


def test_missing_weights_name_the_file(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    text = Path(SPEC).read_text().replace("checkpoint: checkpoint.pt", f"checkpoint: {tmp_path / 'missing.pt'}")
    text = text.replace("../", str(Path(SPEC).parent.parent) + "/")
    spec.write_text(text)
    line = one_line_error(capsys, main(["--model", str(spec), "--task", "vqav2", "--shots", "2",
                                        "--data-root", FIXTURES, "--output-dir", str(tmp_path / "o")]))
    assert "missing.pt" in line


def test_a_corrupt_image_names_it_and_keeps_finished_items(tmp_path, capsys):
    root = copy_fixtures(tmp_path)
    from flamingo_eval.data import load_split
    from flamingo_eval.task import load_task

    items = load_split(load_task("vqav2"), "eval", str(root))
    victim = sorted(items, key=lambda s: (len(s.question) + len(s.text), s.id))[-1]  # the last one run
    Path(victim.image.path).write_bytes(b"\x89PNG broken")
    line = one_line_error(capsys, main(["--model", SPEC, "--task", "vqav2", "--shots", "2", "--data-root", str(root),
                                        "--output-dir", str(tmp_path / "runs"), "--batch-size", "1", "--quiet"]))
    assert victim.image.path in line
    logs = list((tmp_path / "runs" / "mpt-x1" / "items").glob("*.jsonl"))
    assert sum(p.read_text().count("\n") for p in logs) == len(items) - 1


def test_okvqa_without_nltk_data_stops_before_any_model_work(tmp_path, capsys, monkeypatch):
    from flamingo_eval.metrics import okvqa_stem

    okvqa_stem.default_stemmer.cache_clear()
    monkeypatch.setattr(okvqa_stem, "missing_nltk_data", lambda: ["wordnet"])
    line = one_line_error(capsys, run_cli(tmp_path, "--task", "okvqa", "--shots", "2"))
    assert "nltk.downloader" in line and not (tmp_path / "runs" / "mpt-x1" / "items").exists()
    okvqa_stem.default_stemmer.cache_clear()


def test_java_missing_for_cider_is_one_line(tmp_path):
    env = {**ENV, "PATH": str(tmp_path)}  # no java on PATH
    r = subprocess.run([sys.executable, "-m", "flamingo_eval", "run", "--model", SPEC, "--task", "coco",
                        "--shots", "0", "--data-root", FIXTURES, "--output-dir", str(tmp_path / "o"), "--quiet"],
                       env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "Java" in r.stderr and "apt-get install" in r.stderr


def test_a_prompt_longer_than_the_model_context_is_one_line(tmp_path, capsys):
    # the tiny MPT has 256 ALiBi positions; four memes demonstrations do not fit
    line = one_line_error(capsys, run_cli(tmp_path, "--task", "hateful_memes", "--shots", "4"))
    assert "exceeds" in line and "context of 256 tokens" in line and "fewer shots" in line
