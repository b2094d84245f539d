"""Top-1 (the score) and top-5 (details) accuracy over ranked class indices (metrics/topk.py)."""

from __future__ import annotations

import pytest

from flamingo_eval.errors import UserError
from flamingo_eval.metrics import compute_metric
from flamingo_eval.metrics.topk import top_classes


def test_top_classes_are_best_first_with_ties_to_the_lower_index():
    assert top_classes([0.1, 0.5, 0.5, -1.0, 0.3, 0.2, 0.0]) == [1, 2, 4, 5, 0]
    assert top_classes([0.0, 1.0], k=5) == [1, 0]


def test_top1_is_the_score_and_top5_a_detail():
    preds = {"a": [3, 1, 2, 0, 4], "b": [0, 3, 1, 2, 4], "c": [9, 8, 7, 6, 5], "d": [2]}
    refs = {"a": 3, "b": 1, "c": 0, "d": 2}
    result = compute_metric("topk_accuracy", preds, refs)
    assert result.score == 50.0 and result.details["top5"] == 75.0
    assert result.per_item == {"a": 100.0, "b": 0.0, "c": 0.0, "d": 100.0}


def test_a_prediction_that_is_not_a_list_of_indices_is_refused():
    with pytest.raises(UserError, match="list of 1 to 5 class indices"):
        compute_metric("topk_accuracy", {"a": 0.7}, {"a": 1})
