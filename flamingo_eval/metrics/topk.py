"""Top-1 and top-5 accuracy of ranked classification (ImageNet), as OpenFlamingo computes them.

An item's prediction is its class indices, best first (at least one, at most ``K``): it is right at top-1
when the first is its label and at top-5 when the label is among them. ``score`` is top-1 (the published
metric); ``details["top5"]`` is top-5, which OpenFlamingo computes and drops.
"""

from __future__ import annotations

from collections.abc import Sequence

from flamingo_eval.errors import UserError
from flamingo_eval.metrics import MetricResult, matched_ids

K = 5


def top_classes(scores: Sequence[float], k: int = K) -> list[int]:
    """The indices of the ``k`` highest scores, best first; ties go to the lower index (torch.topk's order
    on the CPU is not specified for ties, a sort is)."""
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:k]


def topk_accuracy(predictions: dict[str, Sequence[int]], references: dict[str, int]) -> MetricResult:
    """Top-1 accuracy x100; ``per_item`` is each item's top-1 correctness (0 or 100)."""
    ids = matched_ids(predictions, references, "topk_accuracy")
    per_item, top5 = {}, 0
    for i in ids:
        ranked = predictions[i]
        if not isinstance(ranked, (list, tuple)) or not 1 <= len(ranked) <= K or \
                not all(isinstance(c, int) and not isinstance(c, bool) for c in ranked):
            raise UserError(f"topk_accuracy: item {i!r}: a prediction is a list of 1 to {K} class indices, "
                            f"best first, not {ranked!r}")
        per_item[i] = 100.0 * (ranked[0] == references[i])
        top5 += references[i] in ranked
    return MetricResult(score=sum(per_item.values()) / len(ids), per_item=per_item, n=len(ids),
                        details={"top5": 100.0 * top5 / len(ids)})
