"""Scale: a VQAv2-train-sized pool (443,757 questions) loads from the split cache in about a second.

Marked slow (writes ~400 MB of synthetic JSON, parses it once: ~40 s, ~2.5 GB peak memory).
Run: ``pytest -m slow tests/test_data_split_scale.py -s`` (prints the figures).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

N_QUESTIONS = 443_757  # VQAv2 train2014
ANSWERS = ["yes", "no", "2", "red", "two", "it's fine", "t-shirt", "10:30", "blue", "none"]

LOAD = """
import json, sys, time
t0 = time.perf_counter()
from flamingo_eval.data import load_split
from flamingo_eval.task import load_task
s = load_split(load_task("vqav2"), "demo", sys.argv[1])
t1 = time.perf_counter()
item = s[len(s) // 2]
print(json.dumps({"n": len(s), "load_s": t1 - t0, "mid_id": item.id, "answers": len(item.answers)}))
"""


def write_vqav2_train(root: Path, n: int) -> None:
    (root / "vqav2").mkdir(parents=True)
    with open(root / "vqav2/v2_OpenEnded_mscoco_train2014_questions.json", "w") as f:
        json.dump({"data_subtype": "train2014", "questions": [
            {"image_id": 100000 + i // 5, "question": f"What is the colour of thing number {i}?", "question_id": i}
            for i in range(n)]}, f)
    with open(root / "vqav2/v2_mscoco_train2014_annotations.json", "w") as f:
        json.dump({"data_subtype": "train2014", "annotations": [
            {"question_type": "what is", "multiple_choice_answer": "yes", "image_id": 100000 + i // 5,
             "answer_type": "other", "question_id": i,
             "answers": [{"answer": ANSWERS[(i + j) % 10], "answer_confidence": "yes", "answer_id": j + 1}
                         for j in range(10)]}
            for i in range(n)]}, f)


def load_in_fresh_process(root: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", LOAD, str(root)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_vqav2_sized_pool_loads_from_the_cache_in_about_a_second(tmp_path):
    write_vqav2_train(tmp_path, N_QUESTIONS)
    t = time.perf_counter()
    first = load_in_fresh_process(tmp_path)
    first_s = time.perf_counter() - t
    second = load_in_fresh_process(tmp_path)
    print(f"\n{N_QUESTIONS} questions: first load (parse + store) {first['load_s']:.1f} s "
          f"(process {first_s:.1f} s); cached load {second['load_s']:.2f} s including imports")
    assert first["n"] == second["n"] == N_QUESTIONS
    assert second["mid_id"] == str(N_QUESTIONS // 2) and second["answers"] == 10
    assert second["load_s"] < 3.0
