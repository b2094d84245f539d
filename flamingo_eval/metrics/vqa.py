"""VQA accuracy: each of the ten reference answers is left out in turn and the prediction scores
min(1, matches among the other nine / 3); a question's accuracy is the mean over the ten.

Two scorers:

``official``
    The VQA API's ``vqaEval.py``. Answers are cleaned (newlines, tabs, surrounding spaces); the prediction and
    the references are normalised (punctuation, number words, articles, contractions) only when the references
    are not all identical, so against ten identical references the prediction must match them as written. The
    left-out reference is left out by position.

``openflamingo``
    OpenFlamingo's copy of it, for comparing with its published numbers. It always normalises, and it leaves
    out a reference by dict inequality: every reference equal to the left-out one goes with it. On files with
    answer ids (VQAv2, TextVQA) that is the same as by position; on files without (OpenFlamingo's VizWiz files,
    answers ``{"answer", "answer_confidence"}``) repeated answers are all left out together, which lowers the
    score. A reference given as a mapping is compared whole (its ``answer`` normalised), as OpenFlamingo
    compares the dicts; a reference given as a string is compared by its normalised text alone, as for a dict
    that holds only an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.metrics import MetricResult, matched_ids
from flamingo_eval.metrics.vqa_normalize import clean, normalize_answer

Reference = str | Mapping[str, Any]
SCORERS = ("official", "openflamingo")


def _answer(reference: Reference) -> str:
    return reference if isinstance(reference, str) else reference["answer"]


def _leave_one_out(prediction: str, answers: list[str], keys: list[Any]) -> float:
    """Mean over i of min(1, #{j: key_j != key_i and answer_j == prediction} / 3)."""
    total = 0.0
    for key in keys:
        matches = sum(1 for other, answer in zip(keys, answers, strict=True) if other != key and answer == prediction)
        total += min(1.0, matches / 3)
    return total / len(keys)


def official_question_accuracy(prediction: str, references: Sequence[Reference]) -> float:
    """One question's accuracy in [0, 1] by the official rules."""
    answers = [clean(_answer(r)) for r in references]
    prediction = clean(prediction)
    if len(set(answers)) > 1:
        answers = [normalize_answer(a) for a in answers]
        prediction = normalize_answer(prediction)
    return _leave_one_out(prediction, answers, list(range(len(answers))))


def openflamingo_question_accuracy(prediction: str, references: Sequence[Reference]) -> float:
    """One question's accuracy in [0, 1] as OpenFlamingo's evaluation computes it."""
    answers = [normalize_answer(clean(_answer(r))) for r in references]
    keys: list[Any] = []
    for reference, answer in zip(references, answers, strict=True):
        if isinstance(reference, str):
            keys.append(answer)
        else:
            rest = sorted((k, repr(v)) for k, v in reference.items() if k != "answer")
            keys.append((answer, tuple(rest)))
    return _leave_one_out(normalize_answer(clean(prediction)), answers, keys)


_QUESTION_ACCURACY: dict[str, Callable[[str, Sequence[Reference]], float]] = {
    "official": official_question_accuracy,
    "openflamingo": openflamingo_question_accuracy,
}


def vqa_accuracy(predictions: dict[str, str], references: dict[str, Sequence[Reference]],
                 scorer: str = "official") -> MetricResult:
    """Overall and per-question VQA accuracy (0-100); ``scorer`` is ``official`` or ``openflamingo``.

    The overall score is not rounded (the VQA API rounds to two decimals for display).
    """
    if scorer not in _QUESTION_ACCURACY:
        raise ConfigError(f"vqa_accuracy: unknown scorer {scorer!r}; known: {', '.join(SCORERS)}")
    question_accuracy = _QUESTION_ACCURACY[scorer]
    per_item: dict[str, float] = {}
    for qid in matched_ids(predictions, references, "vqa_accuracy"):
        refs = references[qid]
        if isinstance(refs, str) or len(refs) == 0:
            raise DataError(f"vqa_accuracy: question {qid!r} needs a list of reference answers, got {refs!r}")
        per_item[qid] = 100.0 * question_accuracy(predictions[qid], refs)
    score = sum(per_item.values()) / len(per_item)
    return MetricResult(score=score, per_item=per_item, n=len(per_item), details={"scorer": scorer})
