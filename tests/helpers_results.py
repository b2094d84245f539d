"""Builders of result files for leaderboard and regress tests."""

import json
from pathlib import Path

from flamingo_eval.results import SCHEMA


def write_result(directory: Path, model: str, task: str, shots: int, scores: list[float], selection="random",
                 metric="cider", created="2026-01-01T00:00:00+00:00") -> Path:
    mean = sum(scores) / len(scores)
    std = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
    data = {"schema": SCHEMA, "model": {"name": model}, "task": {"name": task, "metric": metric},
            "shots": shots, "selection": {"selection": selection},
            "trials": [{"seed": 42 + i, "score": s, "n": 10} for i, s in enumerate(scores)],
            "mean": mean, "std": std, "n": 10, "created": created}
    path = directory / model / f"{task}_{shots}shot_{selection}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
