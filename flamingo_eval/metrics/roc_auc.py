"""ROC-AUC of P(positive option) for ranked binary classification (HatefulMemes), as OpenFlamingo scores it.

Each option's summed log-probability is divided by its token count, the means are soft-maxed over the
options, and the positive option's share is the item's score. For two options that equals OpenFlamingo's
"probability of the predicted class if it is the positive one, else one minus it".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from flamingo_eval.errors import DataError, UserError
from flamingo_eval.metrics import MetricResult, matched_ids

THRESHOLD = 0.5


def option_probability(logprob_sums: Sequence[float], lengths: Sequence[int], positive: int) -> float:
    """P(option ``positive``): softmax over the options of their mean per-token log-probability.

    Length normalisation keeps an option from losing only because it has more tokens.
    """
    if len(logprob_sums) != len(lengths) or len(lengths) < 2:
        raise ValueError("need one token count per option and at least two options")
    if not 0 <= positive < len(lengths):
        raise ValueError(f"positive option {positive} out of range for {len(lengths)} options")
    if any(n <= 0 for n in lengths):
        raise ValueError(f"every option needs at least one token, got lengths {list(lengths)}")
    means = [s / n for s, n in zip(logprob_sums, lengths, strict=True)]
    top = max(means)
    weights = [math.exp(m - top) for m in means]
    return weights[positive] / sum(weights)


def roc_auc(predictions: dict[str, float], references: dict[str, int]) -> MetricResult:
    """ROC-AUC x100 of P(positive) against 0/1 labels, each item counted once.

    ROC-AUC is a property of the ranking of all items, not a mean over them, so ``per_item`` instead holds
    each item's correctness at the 0.5 threshold: 1.0 if (p >= 0.5) equals its label, else 0.0; their mean
    (x100) is in ``details["accuracy"]``.
    """
    from sklearn.metrics import roc_auc_score

    ids = matched_ids(predictions, references, "roc_auc")
    labels = []
    for i in ids:
        label = references[i]
        if label not in (0, 1):
            raise DataError(f"roc_auc: item {i!r} has label {label!r}; labels are 0 or 1")
        labels.append(int(label))
    scores = [float(predictions[i]) for i in ids]
    if any(not 0.0 <= p <= 1.0 for p in scores):
        raise UserError("roc_auc: predictions are probabilities of the positive class, between 0 and 1")
    positives = sum(labels)
    if positives in (0, len(labels)):
        raise UserError(f"roc_auc: all {len(labels)} items have label {labels[0]}; "
                        f"ROC-AUC needs both classes among the scored items")
    auc = float(roc_auc_score(labels, scores))
    per_item = {i: float((p >= THRESHOLD) == bool(y)) for i, p, y in zip(ids, scores, labels, strict=True)}
    accuracy = 100.0 * sum(per_item.values()) / len(per_item)
    return MetricResult(score=100.0 * auc, per_item=per_item, n=len(ids),
                        details={"threshold": THRESHOLD, "accuracy": accuracy, "positives": positives})
