"""VL-ICL Bench's scorers (its ``evals/eval.py``), on the 0-100 scale.

Every prediction is cleaned the same way first: stripped, then cut at its first newline, or, where there is
none past the first character, at its first period. Then:

- ``vlicl_exact``: the cleaned prediction equals the answer, ignoring case (TextOCR, CLEVR, open MiniImageNet);
- ``vlicl_number``: the first run of digits in the cleaned prediction (nothing if none) equals the answer
  (the two operator-induction tasks);
- ``vlicl_yes_no``: an answer "yes" needs "yes" in the cleaned prediction, an answer "no" needs it absent,
  ignoring case (matching MiniImageNet).

A reference is the list of the item's answers; the first is the one VL-ICL compares with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from flamingo_eval.errors import DataError
from flamingo_eval.metrics import MetricResult, matched_ids

_DIGITS = re.compile(r"\d+")


def clean(prediction: str) -> str:
    """VL-ICL's truncation of a raw prediction."""
    p = prediction.strip().strip("\n")
    cut = p.find("\n")
    if cut <= 0:
        cut = p.find(".")
    return p[:cut] if cut > 0 else p


def first_number(prediction: str) -> str:
    match = _DIGITS.search(clean(prediction))
    return match.group() if match else ""


def _exact(prediction: str, answer: str) -> bool:
    return clean(prediction).lower() == answer.lower()


def _number(prediction: str, answer: str) -> bool:
    return first_number(prediction).lower() == answer.lower()


def _yes_no(prediction: str, answer: str) -> bool:
    said_yes = "yes" in clean(prediction).lower()
    if answer.lower() == "yes":
        return said_yes
    return answer.lower() == "no" and not said_yes


def _accuracy(name: str, correct: Callable[[str, str], bool], predictions: dict[str, str],
              references: dict[str, Sequence[str]]) -> MetricResult:
    ids = matched_ids(predictions, references, name)
    per_item = {}
    for i in ids:
        refs = references[i]
        if isinstance(refs, str) or not refs:
            raise DataError(f"{name}: item {i!r} needs a list holding its answer, got {refs!r}")
        per_item[i] = 100.0 if correct(str(predictions[i]), str(refs[0])) else 0.0
    return MetricResult(score=sum(per_item.values()) / len(ids), per_item=per_item, n=len(ids))


def vlicl_exact(predictions: dict[str, str], references: dict[str, Sequence[str]]) -> MetricResult:
    return _accuracy("vlicl_exact", _exact, predictions, references)


def vlicl_number(predictions: dict[str, str], references: dict[str, Sequence[str]]) -> MetricResult:
    return _accuracy("vlicl_number", _number, predictions, references)


def vlicl_yes_no(predictions: dict[str, str], references: dict[str, Sequence[str]]) -> MetricResult:
    return _accuracy("vlicl_yes_no", _yes_no, predictions, references)
