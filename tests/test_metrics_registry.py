"""compute_metric: the names task specs use, and the id check every metric shares."""

import pytest

from flamingo_eval.errors import ConfigError, UserError
from flamingo_eval.metrics import METRICS, MetricResult, compute_metric, matched_ids
from flamingo_eval.task import available_tasks, load_task


def test_every_shipped_task_names_a_known_metric():
    for name in available_tasks():
        assert load_task(name).metric in METRICS


def test_unknown_metric_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown metric 'cidr' \\(did you mean 'cider'\\?\\)"):
        compute_metric("cidr", {}, {})


def test_ids_come_back_sorted_whatever_order_results_arrived_in():
    assert matched_ids({"b": 1, "a": 2, "c": 3}, {"c": 0, "a": 0, "b": 0}, "m") == ["a", "b", "c"]


def test_mismatch_lists_a_few_offending_ids_and_counts_the_rest():
    predictions = {str(i): "x" for i in range(10)}
    with pytest.raises(UserError) as info:
        matched_ids(predictions, {"0": ["x"]}, "vqa_accuracy")
    assert str(info.value) == ("vqa_accuracy: predictions and references do not match: 9 predictions have no "
                               "reference ('1', '2', '3', '4', '5' and 4 more)")


def test_no_predictions_is_a_user_error():
    with pytest.raises(UserError, match="no predictions to score"):
        compute_metric("vqa_accuracy", {}, {"1": ["a"]})


def test_metric_result_carries_score_items_count_details():
    r = MetricResult(score=50.0, per_item={"a": 100.0, "b": 0.0}, n=2)
    assert r.details == {}
    assert (r.score, r.n, sorted(r.per_item)) == (50.0, 2, ["a", "b"])
