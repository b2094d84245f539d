"""VL-ICL Bench's own scorers (``evals/eval.py`` of a VL-ICL checkout) against the project's, on fuzzed predictions.

    python scripts/parity/vlicl_scorers.py --vlicl <VL-ICL checkout> [--cases 20000]

Imports ``eval_scores`` from the checkout (numpy and torch, which it imports, are in the project's venv) and
compares, per task, its score of one prediction with the project's metric for that task, over predictions
built from fragments that exercise its cleaning (newlines, periods, leading blanks, numbers, "yes" inside other
words) and answers as strings and as the ints VL-ICL's JSON holds. Prints the number compared and every
difference; exits 1 on any.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flamingo_eval.metrics import vlicl  # noqa: E402

FRAGMENTS = ["", " ", "\n", ".", "yes", "Yes", "no", "NO", "3", "12", "7.5", "a", "dog", "Dog", "-4", "x", "\n\n",
             " .", "yes.", "no\n", "ans: 42", "twenty", "1a2", "YES!", "\t", "3 + 4 = 7", "..", "blicket", "Blicket dax",
             "eyes", "noyes"]
TASKS = {  # VL-ICL's dataset name: (the project's metric, answers)
    "clevr": (vlicl.vlicl_exact, ["3", "12", "7", "dog", "Dog"]),
    "textocr": (vlicl.vlicl_exact, ["a", "blicket dax", "3"]),
    "open_mi": (vlicl.vlicl_exact, ["dax", "blicket"]),
    "operator_induction": (vlicl.vlicl_number, ["3", "12", "7", "42", "-4", "4"]),
    "operator_induction_interleaved": (vlicl.vlicl_number, ["3", "12", "7", "42"]),
    "matching_mi": (vlicl.vlicl_yes_no, ["yes", "no", "Yes", "No"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vlicl", required=True, type=Path, help="a checkout of github.com/ys-zong/VL-ICL")
    ap.add_argument("--cases", type=int, default=20000, help="per task")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("vlicl_eval", args.vlicl / "evals" / "eval.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    rng = random.Random(0)
    compared = differ = 0
    for task, (metric, answers) in TASKS.items():
        for _ in range(args.cases):
            prediction = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 5)))
            answer = rng.choice(answers)
            raw = int(answer) if answer.lstrip("-").isdigit() and rng.random() < 0.5 else answer
            theirs = 100.0 * reference.eval_scores([{"prediction": prediction, "answer": raw}], task)
            ours = metric({"0": prediction}, {"0": [str(raw)]}).score
            compared += 1
            if theirs != ours:
                differ += 1
                print(f"{task}: prediction {prediction!r}, answer {raw!r}: VL-ICL {theirs}, project {ours}")
    print(f"{compared} predictions compared, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
