"""From final answers to a score: the references of a task's evaluation items and the task's metric.

Shared by ``run`` (answers it just produced) and ``score`` (answers read from the official result formats).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flamingo_eval.data.sample import Sample
from flamingo_eval.errors import DataError, UserError
from flamingo_eval.task import TaskSpec

# The official result formats: which field names the item and which holds the answer.
PREDICTION_FIELDS = {"caption": ("image_id", "caption"), "vqa": ("question_id", "answer"),
                     "classification": ("id", "proba")}


def references_for(task: TaskSpec, items: Sequence[Sample], paths: dict[str, Path]) -> dict[str, Any]:
    """What each item's answer is scored against: reference captions (the task's ``references`` file, else
    the split's own captions), the ten answers, or the label."""
    if task.kind == "caption" and task.references is not None:
        from flamingo_eval.data import load_caption_references

        ref_path = paths[task.references]
        all_refs = load_caption_references(ref_path)
        missing = [s.id for s in items if s.id not in all_refs]
        if missing:
            raise DataError(f"{ref_path}: no reference captions for {len(missing)} evaluation image(s), "
                            f"e.g. {', '.join(missing[:3])}")
        return {s.id: list(all_refs[s.id]) for s in items}
    if task.kind in ("caption", "vqa"):
        return {s.id: list(s.answers) for s in items}
    return {s.id: s.label for s in items}


def groups_for(task: TaskSpec, items: Sequence[Sample], paths: dict[str, Path]) -> dict[str, str] | None:
    """Each item's group where the task scores groups apart (NoCaps' domains: ``groups: {file, field}``)."""
    spec = task.raw.get("groups")
    if spec is None:
        return None
    from flamingo_eval.data.references import load_image_groups

    groups = load_image_groups(paths[spec["file"]], spec["field"])
    missing = [s.id for s in items if s.id not in groups]
    if missing:
        raise DataError(f"{paths[spec['file']]}: no {spec['field']!r} for {len(missing)} evaluation image(s), "
                        f"e.g. {', '.join(missing[:3])}")
    return {s.id: groups[s.id] for s in items}


def check_environment(task: TaskSpec) -> None:
    """What scoring will need outside Python (Java for CIDEr, NLTK data for OK-VQA), checked up front."""
    if task.metric == "cider":
        from flamingo_eval.metrics.cider import require_java

        require_java()
    if task.postprocess == "okvqa":
        from flamingo_eval.metrics.okvqa_stem import default_stemmer

        default_stemmer()


def metric_options(task: TaskSpec, vqa_scorer: str = "official") -> dict[str, Any]:
    return {"scorer": vqa_scorer} if task.metric == "vqa_accuracy" else {}


def score_answers(task: TaskSpec, answers: dict[str, Any], references: dict[str, Any], vqa_scorer: str = "official",
                  groups: dict[str, str] | None = None):
    """The task's metric over final answers (a caption, an answer string, or P(positive option)); with
    ``groups``, each group's score too (in ``details["groups"]``)."""
    from flamingo_eval.metrics import compute_metric

    options = metric_options(task, vqa_scorer)
    if groups is not None:
        options["groups"] = {i: groups[i] for i in answers if i in groups}
    return compute_metric(task.metric, answers, references, **options)


def read_predictions(task: TaskSpec, path: Path) -> dict[str, Any]:
    """An official result file -> {item id: answer}; wrong shape or duplicate ids are one-line errors."""
    id_field, answer_field = ("id", "top5") if task.metric == "topk_accuracy" else PREDICTION_FIELDS[task.kind]
    try:
        rows = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"predictions file not found: {path}") from None
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a JSON list of {{{id_field!r}, {answer_field!r}}} objects")
    out: dict[str, Any] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or id_field not in row or answer_field not in row:
            raise UserError(f"{path}: entry {i} lacks {id_field!r} or {answer_field!r}")
        key = str(row[id_field])
        if key in out:
            raise UserError(f"{path}: {id_field} {key} appears twice")
        value = row[answer_field]
        if task.metric == "topk_accuracy":
            if not isinstance(value, list):
                raise UserError(f"{path}: entry {i}: {answer_field!r} must be a list of class indices, best first")
        elif task.kind == "classification":
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise UserError(f"{path}: entry {i}: {answer_field!r} must be a probability in [0, 1]")
            value = float(value)
        elif not isinstance(value, str):
            raise UserError(f"{path}: entry {i}: {answer_field!r} must be a string")
        out[key] = value
    return out


def check_coverage(predictions: dict[str, Any], items: Sequence[Sample], source: str) -> None:
    ids = {s.id for s in items}
    unknown = [k for k in predictions if k not in ids]
    if unknown:
        raise UserError(f"{source}: {len(unknown)} prediction(s) for ids not in the evaluation split, "
                        f"e.g. {', '.join(unknown[:3])}")
    missing = [s.id for s in items if s.id not in predictions]
    if missing:
        raise UserError(f"{source}: no prediction for {len(missing)} evaluation item(s), e.g. {', '.join(missing[:3])}")


def score_file(task: TaskSpec, predictions_path: Path, data_root: str, overrides: dict[str, str],
               vqa_scorer: str = "official") -> dict[str, Any]:
    """``flamingo-eval score``: re-score an official-format prediction file without any model."""
    from flamingo_eval.data import load_split

    if task.submission is not None:
        from flamingo_eval.submission import FORMATS

        raise UserError(f"task {task.name} has no public answers: `run` writes its submission file, which "
                        f"{FORMATS[task.submission['format']].upload} scores")
    predictions = read_predictions(task, predictions_path)
    items = load_split(task, "eval", data_root, overrides)
    check_coverage(predictions, items, str(predictions_path))
    paths = task.data_paths(data_root, overrides)
    refs = references_for(task, items, paths)
    result = score_answers(task, predictions, refs, vqa_scorer, groups_for(task, items, paths))
    out = {"task": task.name, "metric": task.metric, "score": result.score, "n": result.n,
           "per_item": result.per_item}
    if "groups" in result.details:
        out["groups"] = result.details["groups"]
    return out
