"""VQA accuracy by the official VQA API rules, and OpenFlamingo's variant of them.

Every expected value is derived in a comment from the rule: for each of the ten references, count the
OTHER references equal to the prediction, take min(1, count/3), and average the ten.
"""

import pytest

from flamingo_eval.errors import ConfigError, DataError, UserError
from flamingo_eval.metrics import compute_metric
from flamingo_eval.metrics.vqa import (
    official_question_accuracy,
    openflamingo_question_accuracy,
    vqa_accuracy,
)
from flamingo_eval.metrics.vqa_normalize import normalize_answer, strip_punctuation


def acc(prediction, references):
    return official_question_accuracy(prediction, references)


# --- the leave-one-out count -------------------------------------------------------------------------------

def test_four_or_more_matches_score_one():
    # 4 "yes": a "yes" left out leaves 3 matches -> 1; a "no" left out leaves 4 -> 1.
    assert acc("yes", ["yes"] * 4 + ["no"] * 6) == 1.0


def test_three_matches_score_nine_tenths():
    # 3 "yes": each of those left out leaves 2 -> 2/3; each of the 7 others leaves 3 -> 1.
    # (3 * 2/3 + 7 * 1) / 10 = 0.9
    assert acc("yes", ["yes"] * 3 + ["no"] * 7) == pytest.approx(0.9)


def test_two_matches_score_three_fifths():
    # 2 "yes": each left out leaves 1 -> 1/3; each of the 8 others leaves 2 -> 2/3.
    # (2 * 1/3 + 8 * 2/3) / 10 = 18/30 = 0.6
    assert acc("yes", ["yes"] * 2 + ["no"] * 8) == pytest.approx(0.6)


def test_one_match_scores_three_tenths():
    # 1 "cat": left out leaves 0 -> 0; each of the 9 others leaves 1 -> 1/3.  9 * 1/3 / 10 = 0.3
    assert acc("cat", ["cat"] + ["dog"] * 9) == pytest.approx(0.3)


def test_no_match_scores_zero():
    assert acc("bird", ["cat"] + ["dog"] * 9) == 0.0


def test_leave_one_out_is_by_position_even_for_repeated_answers():
    # 8 "unanswerable": each left out leaves 7 -> 1; each of the 2 others leaves 8 -> 1.  Mean 1.
    assert acc("unanswerable", ["unanswerable"] * 8 + ["blank screen", "no idea"]) == 1.0


# --- normalisation, applied when the references disagree -----------------------------------------------------

@pytest.mark.parametrize("prediction, reference, why", [
    ("Two.", "2", "period stripped at the end, lower-cased, number word to digit"),
    ("a dog", "dog", "article dropped"),
    ("The Dog", "dog", "article dropped after lower-casing"),
    ("dont know", "don't know", "apostrophe-less contraction restored"),
    ("hot-dog", "hot dog", "a hyphen inside a word becomes a space"),
    ("yes !", "yes", "a mark next to a space is deleted"),
    ("1,000", "1000", "a digit-comma-digit number loses its comma"),
    ("none", "0", "'none' counts as zero"),
    ("3.5", "3.5", "a period before a digit stays"),
    ("  yes\n", "yes", "newlines, tabs and surrounding spaces are cleaned first"),
    ("red\tcar", "red car", "a tab becomes a space"),
])
def test_normalised_prediction_matches_normalised_reference(prediction, reference, why):
    # 3 matching references among 10 disagreeing ones -> 0.9 (see test_three_matches_score_nine_tenths)
    references = [reference] * 3 + ["something else"] * 7
    assert acc(prediction, references) == pytest.approx(0.9), why


@pytest.mark.parametrize("text, expected", [
    # "," and "1,000": the d,d pattern makes every mark vanish instead of becoming a space
    ("1,000 (approx)", "1000 approx"),
    # no mark next to a space, no d,d number: each mark becomes a space
    ("a/b", "a b"),
    # "/ " is in the text, so "/" is deleted; "-" is not next to a space, so it becomes a space
    ("a/ b-c", "a b c"),
    # a colon and an apostrophe are not in the list
    ("5:30 o'clock", "5:30 o'clock"),
])
def test_punctuation_rules(text, expected):
    assert " ".join(strip_punctuation(text).split()) == expected


def test_normalisation_of_words():
    # number map and articles apply per word, contractions after them; words are re-joined by single spaces
    assert normalize_answer("The  Three   Dogs") == "3 dogs"
    assert normalize_answer("isnt it") == "isn't it"
    assert normalize_answer("an") == ""


def test_references_that_disagree_are_normalised_too():
    # references "Two" x3 normalise to "2", matching the prediction "2": 0.9
    assert acc("2", ["Two"] * 3 + ["three"] * 7) == pytest.approx(0.9)


# --- ten identical references: nothing is normalised ---------------------------------------------------------

def test_identical_references_compare_the_prediction_as_written():
    references = ["two"] * 10
    assert acc("two", references) == 1.0
    assert acc(" two\n", references) == 1.0  # cleaning still applies
    assert acc("2", references) == 0.0       # no number-word mapping
    assert acc("Two", references) == 0.0     # not even lower-casing
    assert acc("two.", references) == 0.0    # nor punctuation


def test_identity_is_judged_after_cleaning():
    # "yes " and "yes" clean to the same answer: identical, so "Yes" (not normalised) matches nothing
    assert acc("Yes", ["yes "] * 5 + ["yes"] * 5) == 0.0


# --- OpenFlamingo's variant ------------------------------------------------------------------------------------

def test_openflamingo_always_normalises():
    # ten identical "two" with answer ids (VQAv2-style, so left out by position): official compares "2" as
    # written -> 0; OpenFlamingo normalises both sides -> "2" == "2", 9 others match -> 1.0
    references = [{"answer": "two", "answer_id": k} for k in range(1, 11)]
    assert openflamingo_question_accuracy("2", references) == 1.0
    assert official_question_accuracy("2", references) == 0.0


def test_openflamingo_scores_zero_against_ten_equal_answers_without_ids():
    # ten equal strings (a VizWiz question whose ten dicts are equal): leaving out one leaves out all ten,
    # so 0 matches in every slot -> 0.0 even for the right answer; the official scorer gives 1.0
    assert openflamingo_question_accuracy("two", ["two"] * 10) == 0.0
    assert official_question_accuracy("two", ["two"] * 10) == 1.0


def test_openflamingo_leaves_out_every_equal_answer_string():
    # VizWiz-like: 8 "unanswerable" + 2 others, prediction "unanswerable".
    # official (by position): every slot keeps >= 7 matches -> 1.0
    # OpenFlamingo: leaving out an "unanswerable" removes all 8 -> 0 (8 slots); the 2 others keep 8 -> 1.
    # (8 * 0 + 2 * 1) / 10 = 0.2
    references = ["unanswerable"] * 8 + ["blank screen", "no idea"]
    assert official_question_accuracy("unanswerable", references) == 1.0
    assert openflamingo_question_accuracy("unanswerable", references) == pytest.approx(0.2)


def test_openflamingo_compares_answer_dicts_whole():
    # OpenFlamingo's VizWiz files: {"answer", "answer_confidence"}, no answer id.
    # 6 x (unanswerable, yes), 1 x (unanswerable, maybe), 1 x (unanswerable, no), 2 others.
    # a "yes" slot removes the 6 equal dicts -> 2 matches left -> 2/3 (6 slots);
    # the "maybe" and "no" slots remove only themselves -> 7 -> 1; the 2 others -> 8 -> 1.
    # (6 * 2/3 + 4 * 1) / 10 = 0.8
    def ref(answer, confidence):
        return {"answer": answer, "answer_confidence": confidence}

    references = ([ref("unanswerable", "yes")] * 6 + [ref("unanswerable", "maybe"), ref("unanswerable", "no")]
                  + [ref("blank screen", "yes"), ref("cannot repair", "maybe")])
    assert openflamingo_question_accuracy("unanswerable", references) == pytest.approx(0.8)
    assert official_question_accuracy("unanswerable", references) == 1.0


def test_openflamingo_with_answer_ids_is_by_position():
    # VQAv2/TextVQA dicts carry distinct answer ids, so dict inequality leaves out one reference: as official.
    references = [{"answer": "yes", "answer_id": k} for k in range(1, 4)]
    references += [{"answer": "no", "answer_id": k} for k in range(4, 11)]
    assert openflamingo_question_accuracy("yes", references) == pytest.approx(0.9)


def test_openflamingo_groups_answers_equal_after_normalisation():
    # "Two" and "2" both normalise to "2", so they are left out together: 5 "Two" + 5 "2", prediction "two".
    # every slot removes all 10 -> 0 matches -> 0.0 (official: refs disagree, all normalise to "2", 9 others -> 1)
    references = ["Two"] * 5 + ["2"] * 5
    assert openflamingo_question_accuracy("two", references) == 0.0
    assert official_question_accuracy("two", references) == 1.0


# --- the metric over a set of questions -----------------------------------------------------------------------

def test_overall_score_is_the_mean_of_per_question_accuracy_on_0_100():
    predictions = {"1": "yes", "2": "cat", "3": "bird"}
    references = {"1": ["yes"] * 3 + ["no"] * 7, "2": ["cat"] + ["dog"] * 9, "3": ["dog"] * 10}
    result = vqa_accuracy(predictions, references)
    # per question 0.9, 0.3, 0.0 (derived above) -> x100; overall (90 + 30 + 0) / 3 = 40
    assert result.per_item == pytest.approx({"1": 90.0, "2": 30.0, "3": 0.0})
    assert result.score == pytest.approx(40.0)
    assert result.n == 3
    assert result.details["scorer"] == "official"


def test_scorer_option_and_compute_metric():
    predictions = {"q": "unanswerable"}
    references = {"q": ["unanswerable"] * 8 + ["blank screen", "no idea"]}
    assert compute_metric("vqa_accuracy", predictions, references).score == 100.0
    # 0.2 derived in test_openflamingo_leaves_out_every_equal_answer_string
    result = compute_metric("vqa_accuracy", predictions, references, scorer="openflamingo")
    assert result.score == pytest.approx(20.0)
    assert result.details["scorer"] == "openflamingo"


def test_unknown_scorer_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown scorer 'offical'"):
        vqa_accuracy({"q": "a"}, {"q": ["a"]}, scorer="offical")


def test_a_question_without_reference_answers_is_a_data_error():
    with pytest.raises(DataError, match="question 'q'"):
        vqa_accuracy({"q": "a"}, {"q": []})
    with pytest.raises(DataError, match="question 'q'"):
        vqa_accuracy({"q": "a"}, {"q": "a"})


def test_mismatched_ids_are_a_user_error_naming_them():
    with pytest.raises(UserError, match=r"1 predictions have no reference \('9'\).*1 references have no prediction \('2'\)"):
        vqa_accuracy({"1": "a", "9": "b"}, {"1": ["a"], "2": ["b"]})
