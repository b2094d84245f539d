"""Metrics: name -> scorer over {id: prediction} and {id: reference}, all on the 0-100 scale of the published tables.

Each scorer lives in its own module and is imported on first use, so that naming a metric does not pull in
scikit-learn or pycocoevalcap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flamingo_eval.errors import UserError
from flamingo_eval.registry import Registry

METRICS = Registry("metric", {
    "cider": "flamingo_eval.metrics.cider:cider",
    "vqa_accuracy": "flamingo_eval.metrics.vqa:vqa_accuracy",
    "roc_auc": "flamingo_eval.metrics.roc_auc:roc_auc",
    "vlicl_exact": "flamingo_eval.metrics.vlicl:vlicl_exact",
    "vlicl_number": "flamingo_eval.metrics.vlicl:vlicl_number",
    "vlicl_yes_no": "flamingo_eval.metrics.vlicl:vlicl_yes_no",
    "topk_accuracy": "flamingo_eval.metrics.topk:topk_accuracy",
})

_SHOWN_IDS = 5


@dataclass
class MetricResult:
    """A metric's value over a set of items.

    ``score`` is on the 0-100 scale. ``per_item`` maps every scored id to its own value: for a metric that is a
    mean over items (CIDEr, VQA accuracy) on the same scale as ``score``, so the mean of ``per_item`` is
    ``score``; ROC-AUC is not a mean, and its module says what its per-item value is. ``n`` is the number of
    items scored; ``details`` holds metric-specific extras (scorer variant, counts) that results files keep.
    """

    score: float
    per_item: dict[str, float]
    n: int
    details: dict[str, Any] = field(default_factory=dict)


def _some(ids: set) -> str:
    shown = sorted(map(str, ids))[:_SHOWN_IDS]
    more = f" and {len(ids) - len(shown)} more" if len(ids) > len(shown) else ""
    return ", ".join(repr(i) for i in shown) + more


def matched_ids(predictions: Mapping, references: Mapping, metric: str) -> list:
    """The ids to score, sorted so that a score never depends on the order results arrived in.

    Every prediction needs a reference and every reference a prediction: a gap means a run lost or
    duplicated work, and scoring the overlap would silently report a number over a different set.
    """
    if not predictions:
        raise UserError(f"{metric}: there are no predictions to score")
    pred_ids, ref_ids = set(predictions), set(references)
    problems = []
    if pred_ids - ref_ids:
        problems.append(f"{len(pred_ids - ref_ids)} predictions have no reference ({_some(pred_ids - ref_ids)})")
    if ref_ids - pred_ids:
        problems.append(f"{len(ref_ids - pred_ids)} references have no prediction ({_some(ref_ids - pred_ids)})")
    if problems:
        raise UserError(f"{metric}: predictions and references do not match: " + "; ".join(problems))
    return sorted(pred_ids, key=str)


def compute_metric(name: str, predictions: dict, references: dict, **options: Any) -> MetricResult:
    """Score ``predictions`` against ``references`` with the metric a task spec names."""
    scorer = METRICS.get(name)
    matched_ids(predictions, references, name)
    return scorer(predictions, references, **options)
