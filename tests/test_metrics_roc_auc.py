"""ROC-AUC over P("yes") from length-normalised option log-probabilities."""

import math

import pytest

from flamingo_eval.errors import DataError, UserError
from flamingo_eval.metrics import compute_metric
from flamingo_eval.metrics.roc_auc import option_probability, roc_auc


def test_option_probability_is_softmax_of_mean_token_logprob():
    # "no" = 1 token, sum -2 -> mean -2; "yes" = 2 tokens, sum -2 -> mean -1.
    # P(yes) = e^-1 / (e^-2 + e^-1) = 1 / (1 + e^-1)
    p = option_probability([-2.0, -2.0], [1, 2], positive=1)
    assert p == pytest.approx(1 / (1 + math.exp(-1)))
    # without length normalisation the two options would tie at 0.5; the two probabilities sum to one
    assert option_probability([-2.0, -2.0], [1, 2], positive=0) == pytest.approx(1 - p)


def test_option_probability_is_stable_for_very_negative_logprobs():
    # means -1000 and -1001: P(first) = 1 / (1 + e^-1), no underflow to 0/0
    assert option_probability([-1000.0, -1001.0], [1, 1], positive=0) == pytest.approx(1 / (1 + math.exp(-1)))


@pytest.mark.parametrize("sums, lengths, positive", [([-1.0], [1], 0), ([-1.0, -1.0], [1, 0], 0),
                                                     ([-1.0, -1.0], [1, 1], 2), ([-1.0, -1.0], [1], 0)])
def test_option_probability_rejects_bad_input(sums, lengths, positive):
    with pytest.raises(ValueError):
        option_probability(sums, lengths, positive)


def test_roc_auc_by_hand():
    # positives a (0.9), b (0.4); negatives c (0.6), d (0.1), e (0.4)
    # pairs (pos > neg counts 1, tie 1/2): a>c a>d a>e = 3; b<c 0, b>d 1, b=e 1/2 -> 4.5 of 6 pairs = 0.75
    predictions = {"a": 0.9, "b": 0.4, "c": 0.6, "d": 0.1, "e": 0.4}
    references = {"a": 1, "b": 1, "c": 0, "d": 0, "e": 0}
    result = roc_auc(predictions, references)
    assert result.score == pytest.approx(75.0)
    assert result.n == 5
    # per item: thresholded at 0.5: a 1>=.5 & label 1 -> 1; b .4 -> 0 vs 1 -> 0; c .6 -> 1 vs 0 -> 0;
    # d -> 0 vs 0 -> 1; e -> 0 vs 0 -> 1
    assert result.per_item == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0, "e": 1.0}
    assert result.details["accuracy"] == pytest.approx(60.0)
    assert result.details["positives"] == 2


def test_threshold_is_inclusive():
    result = roc_auc({"x": 0.5, "y": 0.2}, {"x": 1, "y": 0})
    assert result.per_item == {"x": 1.0, "y": 1.0}
    assert result.score == 100.0  # the one pair is ranked right


def test_one_class_only_is_a_clear_user_error():
    with pytest.raises(UserError, match="all 2 items have label 1; ROC-AUC needs both classes"):
        roc_auc({"x": 0.7, "y": 0.2}, {"x": 1, "y": 1})


def test_labels_must_be_zero_or_one():
    with pytest.raises(DataError, match="item 'y' has label 2"):
        roc_auc({"x": 0.7, "y": 0.2}, {"x": 1, "y": 2})


def test_predictions_must_be_probabilities():
    with pytest.raises(UserError, match="between 0 and 1"):
        roc_auc({"x": 1.7, "y": 0.2}, {"x": 1, "y": 0})


def test_through_compute_metric_with_missing_ids():
    with pytest.raises(UserError, match=r"roc_auc: .*1 references have no prediction \('z'\)"):
        compute_metric("roc_auc", {"x": 0.7, "y": 0.2}, {"x": 1, "y": 0, "z": 1})
    assert compute_metric("roc_auc", {"x": 0.7, "y": 0.2}, {"x": 1, "y": 0}).score == 100.0
