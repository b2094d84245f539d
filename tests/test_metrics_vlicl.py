"""VL-ICL Bench's scorers (evals/eval.py), case by case: its cleaning (strip, cut at the first newline or,
failing that, the first period), exact match ignoring case, the first integer for operator induction, and
the yes/no test for matching."""

import pytest

from flamingo_eval.metrics import compute_metric
from flamingo_eval.metrics.vlicl import clean, first_number


@pytest.mark.parametrize("raw, cleaned", [
    (" dax\nThis is a blicket", "dax"),          # cut at the first newline
    ("\n\n dax. More text", "dax"),              # leading newlines stripped first, then cut at the period
    ("STOP sign", "STOP sign"),                  # nothing to cut
    ("3.5 apples", "3"),                         # the period of a decimal cuts too
    (".hidden", ".hidden"),                      # a period at 0 is no cut
    ("", ""),
])
def test_its_cleaning_strips_then_cuts_at_a_newline_else_a_period(raw, cleaned):
    assert clean(raw) == cleaned


@pytest.mark.parametrize("raw, number", [(" 12 is the answer", "12"), ("x = 7\n8", "7"), ("five", ""),
                                         ("-3", "3"), ("2.5", "2")])
def test_operator_induction_takes_the_first_run_of_digits(raw, number):
    assert first_number(raw) == number


def score(metric, pairs):
    preds = {str(i): p for i, (p, _) in enumerate(pairs)}
    refs = {str(i): [a] for i, (_, a) in enumerate(pairs)}
    return compute_metric(metric, preds, refs)


def test_exact_match_ignores_case_but_not_extra_words():
    r = score("vlicl_exact", [("Dax", "dax"), (" STOP\nsign", "stop"), ("a dax", "dax"), ("3 ", "3"), ("3.", "3")])
    assert r.per_item == {"0": 100.0, "1": 100.0, "2": 0.0, "3": 100.0, "4": 100.0}
    assert r.score == pytest.approx(80.0) and r.n == 5


def test_operator_tasks_compare_the_first_integer():
    r = score("vlicl_number", [("The result is 12.", "12"), ("12", "21"), ("no idea", "0"), ("0", "0")])
    assert [r.per_item[str(i)] for i in range(4)] == [100.0, 0.0, 0.0, 100.0]


def test_matching_answers_yes_need_yes_and_no_needs_its_absence():
    r = score("vlicl_yes_no", [("Yes, they match", "yes"), ("no", "yes"), ("No.", "no"), ("yes", "no"),
                               ("maybe\nyes", "no"), ("eyes", "yes")])
    assert [r.per_item[str(i)] for i in range(6)] == [100.0, 0.0, 100.0, 0.0, 100.0, 100.0]


def test_a_reference_that_is_not_a_list_is_one_clear_error():
    from flamingo_eval.errors import DataError

    with pytest.raises(DataError, match="needs a list"):
        compute_metric("vlicl_exact", {"0": "a"}, {"0": "a"})
