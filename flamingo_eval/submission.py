"""EvalAI submission files for the test splits whose answers are not public (VQAv2 test-dev, VizWiz test).

A task with ``submission: {format: ..., questions: <data key>}`` is not scored here: each trial's answers go
to the file the evaluation server takes, normalised as OpenFlamingo's ``fill_vqa_testdev_results`` does
(newlines and tabs to spaces, stripped, then the VQA evaluation's punctuation, number, article and
contraction processing). Every question the server expects is present: the evaluated split's (answer "" for
any left out by --num-samples) and, for VQAv2, every other test2015 question (the server rejects a test-dev
file without them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flamingo_eval.data.sample import Sample
from flamingo_eval.errors import ConfigError


@dataclass(frozen=True)
class Server:
    """Where a format's files are uploaded, and how an entry names its question."""

    id_field: str
    upload: str
    phase: str


FORMATS = {
    "vqav2": Server("question_id", "https://eval.ai/web/challenges/challenge-page/830/my-submission",
                    "the Test-Dev phase"),
    "vizwiz": Server("image", "https://eval.ai/web/challenges/challenge-page/2185/my-submission",
                     "the test-dev or test-standard phase"),
}


def check_spec(spec: Any, kind: str, files: Mapping[str, str], source: str) -> None:
    """A task YAML's ``submission`` mapping: a known format on a VQA task, ``questions`` naming a data key."""
    if kind != "vqa" or not isinstance(spec, dict) or spec.get("format") not in FORMATS:
        raise ConfigError(f"{source}: submission must be {{format: {' | '.join(FORMATS)}}} on a vqa task")
    extra = set(spec) - {"format", "questions"}
    if extra:
        raise ConfigError(f"{source}: unknown submission key(s) {', '.join(sorted(extra))}")
    if "questions" in spec and spec["questions"] not in files:
        raise ConfigError(f"{source}: submission questions {spec['questions']!r} is not a key of 'files'")


def server_answer(text: str) -> str:
    """An answer as the servers compare it (what OpenFlamingo wrote into its submission files)."""
    from flamingo_eval.metrics.vqa_normalize import clean, normalize_answer

    return normalize_answer(clean(text))


def _all_question_ids(path: Path) -> list[int]:
    from flamingo_eval.data.jsonio import field, list_field, load_json

    return [field(q, "question_id", path, f"questions[{i}]")
            for i, q in enumerate(list_field(load_json(path), "questions", path))]


def submission_rows(spec: Mapping[str, Any], split: Sequence[Sample], answers: Mapping[str, str],
                    paths: Mapping[str, Path]) -> list[dict]:
    """The server's entries: one per question of ``split`` (its answer, or "" if it was not evaluated), then
    one with answer "" for each further question of the ``questions`` file."""
    fmt = spec["format"]
    rows = []
    for s in split:
        answer = server_answer(answers[s.id]) if s.id in answers else ""
        if fmt == "vqav2":
            rows.append({"question_id": int(s.id), "answer": answer})
        else:
            rows.append({"image": Path(s.image.path).name, "answer": answer})
    if "questions" in spec:
        seen = {r["question_id"] for r in rows}
        rows.extend({"question_id": q, "answer": ""} for q in _all_question_ids(paths[spec["questions"]])
                    if q not in seen)
    return rows


def upload_line(fmt: str, path: Path, answered: int, total: int) -> str:
    server = FORMATS[fmt]
    return (f"{answered} answers ({total} entries) -> {path}; upload it at {server.upload} ({server.phase})")
