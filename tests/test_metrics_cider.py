"""CIDEr against a direct pycocoevalcap computation; Java is started once for the whole module."""

import shutil

import pytest

from flamingo_eval.errors import DataError, EnvironmentProblem, UserError
from flamingo_eval.metrics import cider as cider_module
from flamingo_eval.metrics import compute_metric

# Raw captions as a model and annotators write them: capitals, punctuation, a newline, a blank prediction.
PREDICTIONS = {
    "391895": "A man riding a bike down a road.",
    "522418": "Two dogs, playing in the grass!",
    "184613": "a kitchen with a stove\nand a sink",
    "318219": "",
}
REFERENCES = {
    "391895": ["A man rides his bike on a dirt road.", "a person riding a bicycle"],
    "522418": ["Two dogs play in the grass.", "dogs running on a lawn", "Two brown dogs."],
    "184613": ["A kitchen with a stove and a sink.", "a small kitchen"],
    "318219": ["A cat on a couch."],
}
# The same text as the PTB tokenizer leaves it (lower case, punctuation tokens dropped), written by hand.
TOKENIZED_PREDICTIONS = {
    "391895": "a man riding a bike down a road",
    "522418": "two dogs playing in the grass",
    "184613": "a kitchen with a stove and a sink",
    "318219": "",
}
TOKENIZED_REFERENCES = {
    "391895": ["a man rides his bike on a dirt road", "a person riding a bicycle"],
    "522418": ["two dogs play in the grass", "dogs running on a lawn", "two brown dogs"],
    "184613": ["a kitchen with a stove and a sink", "a small kitchen"],
    "318219": ["a cat on a couch"],
}


@pytest.fixture(scope="module")
def result():
    if shutil.which("java") is None:
        pytest.skip("no Java here: " + cider_module.JAVA_HINT)
    return compute_metric("cider", PREDICTIONS, REFERENCES)


def direct_cider():
    from pycocoevalcap.cider.cider import Cider

    ids = list(TOKENIZED_PREDICTIONS)
    gts = {i: TOKENIZED_REFERENCES[i] for i in ids}
    res = {i: [TOKENIZED_PREDICTIONS[i]] for i in ids}
    score, scores = Cider().compute_score(gts, res)
    return 100 * score, {i: 100 * s for i, s in zip(ids, scores, strict=True)}


def test_cider_equals_pycocoevalcap_on_ptb_tokenized_text(result):
    score, per_item = direct_cider()
    assert result.score == pytest.approx(score, rel=1e-12)
    assert result.per_item == pytest.approx(per_item, rel=1e-12)
    assert result.n == 4
    assert result.details["tokenizer"] == "ptb"


def test_cider_is_the_mean_of_per_item_cider_and_a_blank_caption_scores_zero(result):
    assert result.score == pytest.approx(sum(result.per_item.values()) / 4)
    assert result.per_item["318219"] == 0.0
    assert result.per_item["184613"] > result.per_item["391895"] > 0


def test_without_java_cider_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(cider_module.shutil, "which", lambda name: None)
    with pytest.raises(EnvironmentProblem, match=r"CIDEr needs Java .*`apt-get install default-jre-headless`"):
        cider_module.cider({"1": "a dog"}, {"1": ["a dog"]})


def test_a_tokenizer_that_cannot_start_is_an_environment_problem(monkeypatch):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    def fail(self, captions):
        raise FileNotFoundError(2, "No such file or directory", "java")

    monkeypatch.setattr(cider_module.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(PTBTokenizer, "tokenize", fail)
    with pytest.raises(EnvironmentProblem, match="CIDEr needs Java .*did not start.*default-jre-headless"):
        cider_module.cider({"1": "a dog"}, {"1": ["a dog"]})


def test_a_read_only_pycocoevalcap_folder_is_named_as_the_problem(monkeypatch):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    def fail(self, captions):
        raise PermissionError(13, "Permission denied", "/site-packages/pycocoevalcap/tokenizer/tmpx")

    monkeypatch.setattr(cider_module.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(PTBTokenizer, "tokenize", fail)
    with pytest.raises(EnvironmentProblem, match="temporary file beside its jar .*make that folder writable"):
        cider_module.cider({"1": "a dog"}, {"1": ["a dog"]})


def test_blank_captions_the_tokenizer_dropped_at_the_end_come_back_empty(monkeypatch):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    monkeypatch.setattr(cider_module.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(PTBTokenizer, "tokenize", lambda self, captions: {"a": ["x y"]})
    assert cider_module.ptb_tokenize({"a": ["X y", " "], "b": [""]}) == {"a": ["x y", ""], "b": [""]}


def test_a_tokenizer_that_returns_too_little_is_an_environment_problem(monkeypatch):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    monkeypatch.setattr(cider_module.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(PTBTokenizer, "tokenize", lambda self, captions: {})
    with pytest.raises(EnvironmentProblem, match="fewer lines"):
        cider_module.cider({"1": "a dog"}, {"1": ["a dog"]})


def test_items_need_reference_captions():
    with pytest.raises(DataError, match="item '1' needs a list of reference captions"):
        cider_module.cider({"1": "a dog"}, {"1": []})


def test_ids_must_match():
    with pytest.raises(UserError, match=r"1 predictions have no reference \('2'\)"):
        compute_metric("cider", {"1": "a", "2": "b"}, {"1": ["a"]})


def test_each_group_is_scored_over_its_own_items_alone(result):
    """NoCaps' in-/near-/out-domain scores: CIDEr-D of each domain's images with that domain's document
    frequencies, as pycocoevalcap gives over that subset; the overall score is unchanged."""
    from pycocoevalcap.cider.cider import Cider

    groups = {"391895": "in-domain", "522418": "out-domain", "184613": "in-domain", "318219": "out-domain"}
    grouped = compute_metric("cider", PREDICTIONS, REFERENCES, groups=groups)
    assert grouped.score == pytest.approx(result.score, rel=1e-12)
    for name in ("in-domain", "out-domain"):
        ids = [i for i in TOKENIZED_PREDICTIONS if groups[i] == name]
        alone, _ = Cider().compute_score({i: TOKENIZED_REFERENCES[i] for i in ids},
                                         {i: [TOKENIZED_PREDICTIONS[i]] for i in ids})
        assert grouped.details["groups"][name] == pytest.approx(100 * alone, rel=1e-12)
    assert list(grouped.details["groups"]) == ["in-domain", "out-domain"]
    with pytest.raises(DataError, match="have no group"):
        compute_metric("cider", PREDICTIONS, REFERENCES, groups={"391895": "in-domain"})
