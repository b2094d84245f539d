"""Postprocessing of raw generations, as OpenFlamingo's evaluation cuts them."""

import pytest

from flamingo_eval import postprocess as pp
from flamingo_eval.errors import ConfigError, EnvironmentProblem
from flamingo_eval.metrics import okvqa_stem
from flamingo_eval.task import available_tasks, load_task


def test_every_shipped_task_names_a_known_postprocessing():
    for name in available_tasks():
        assert load_task(name).postprocess in pp.POSTPROCESSORS


@pytest.mark.parametrize("raw, expected", [
    ("a man riding a bike", "a man riding a bike"),
    # no <|endofchunk|>: the model ran on into the next demonstration
    ("a man riding a bike\nOutput:a dog on a couch", "a man riding a bike\n"),
    ('a sign that says "stop" on a pole', "a sign that says stop on a pole"),
    ('"a cat" Output: "a dog"', "a cat "),
    # only the first "Output" cuts; "output" in lower case is a word
    ("a printer output tray", "a printer output tray"),
])
def test_caption_cuts_at_output_and_drops_double_quotes(raw, expected):
    assert pp.postprocess("caption", raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("yes", "yes"),
    ("yes\nQuestion:What color is the bus? Short answer:red", "yes\n"),
    ("two Answer: three", "two "),
    ("blue Short answer: red", "blue "),
    # after the marker cut, the first ", " cuts again
    ("red, white and blue", "red"),
    ("1,000", "1,000"),  # no space after the comma: a number, kept
    ("red, white\nQuestion: is it?", "red"),
    ("Question: nothing before", ""),
])
def test_vqa_cuts_at_question_answer_short_then_comma_space(raw, expected):
    assert pp.postprocess("vqa", raw) == expected


def test_none_returns_the_text_unchanged():
    assert pp.postprocess("none", " Yes\n") == " Yes\n"


def test_unknown_postprocessing_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'caption'"):
        pp.postprocess("captions", "x")


def test_okvqa_cuts_at_markers_then_stems_without_the_comma_cut(monkeypatch):
    seen = []

    def fake_stem(text):
        seen.append(text)
        return "<" + text + ">"

    monkeypatch.setattr(okvqa_stem, "stem", fake_stem)
    assert pp.postprocess("okvqa", "red, white\nQuestion: next") == "<red, white\n>"
    assert seen == ["red, white\n"]


def test_okvqa_without_nltk_data_says_how_to_install_it(monkeypatch, tmp_path):
    import nltk

    okvqa_stem.default_stemmer.cache_clear()
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    try:
        with pytest.raises(EnvironmentProblem, match="nltk.downloader punkt_tab averaged_perceptron_tagger_eng wordnet"):
            pp.postprocess("okvqa", "skiing")
    finally:
        okvqa_stem.default_stemmer.cache_clear()
