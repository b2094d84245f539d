"""OK-VQA stemming rules, checked with injected language tools so no NLTK data is needed."""

import pytest

from flamingo_eval.errors import EnvironmentProblem
from flamingo_eval.metrics import okvqa_stem
from flamingo_eval.metrics.okvqa_stem import MANUAL_MATCHES, OKVQAStemmer


def make_stemmer(tags: dict[str, str], calls: list | None = None) -> OKVQAStemmer:
    """Whitespace tokenizer, a fixed tag table (default NN), and tools that mark what they were asked."""
    calls = [] if calls is None else calls

    def lemmatize_verb(word):
        calls.append(("lemma", word))
        return f"V({word})"

    def singularize(word):
        calls.append(("singular", word))
        return f"S({word})"

    return OKVQAStemmer(
        tokenize=str.split,
        tag=lambda words: [(w, tags.get(w, "NN")) for w in words],
        lemmatize_verb=lemmatize_verb,
        singularize=singularize,
    )


def test_manual_table_wins_over_every_other_rule():
    calls = []
    stemmer = make_stemmer({"jeans": "NNS", "morning": "NN", "leaves": "NNS"}, calls)
    # "morning" ends in "ing" and "jeans"/"leaves" are plural nouns, but the table decides first
    assert stemmer.stem("jeans morning leaves") == "jean morn leaf"
    assert calls == []


def test_table_entries_that_map_to_themselves_block_singularisation():
    stemmer = make_stemmer({"christmas": "NNS", "tennis": "NNS", "police": "NNS"})
    assert stemmer.stem("christmas tennis police") == "christmas tennis police"


def test_words_ending_in_ing_get_their_verb_lemma_whatever_their_tag():
    calls = []
    stemmer = make_stemmer({"skiing": "NN", "kings": "NNS", "swimming": "VBG"}, calls)
    assert stemmer.stem("skiing swimming") == "V(skiing) V(swimming)"
    assert calls == [("lemma", "skiing"), ("lemma", "swimming")]


def test_ing_rule_comes_before_the_plural_rule():
    # "surfings" does not end in "ing": plural rule; "ceiling" tagged NNS still takes the ing rule
    stemmer = make_stemmer({"surfings": "NNS", "ceiling": "NNS"})
    assert stemmer.stem("surfings ceiling") == "S(surfings) V(ceiling)"


@pytest.mark.parametrize("tag, singularised", [("NNS", True), ("NNPS", True), ("NN", False), ("NNP", False),
                                               ("VBZ", False), ("JJ", False)])
def test_only_plural_noun_tags_are_singularised(tag, singularised):
    stemmer = make_stemmer({"dogs": tag})
    assert stemmer.stem("dogs") == ("S(dogs)" if singularised else "dogs")


def test_words_are_rejoined_with_single_spaces_including_punctuation_tokens():
    stemmer = OKVQAStemmer(
        tokenize=lambda text: ["red", ",", "white"],
        tag=lambda words: [(w, "JJ") for w in words],
        lemmatize_verb=str.upper,
        singularize=str.upper,
    )
    assert stemmer.stem("red, white") == "red , white"


def test_manual_table_facts():
    # OpenFlamingo's table has 168 entries; spot checks of the kinds of entry it holds
    assert len(MANUAL_MATCHES) == 168
    assert MANUAL_MATCHES["pudding"] == "pud"
    assert MANUAL_MATCHES["men's"] == "men"
    assert MANUAL_MATCHES["earing"] == "ear"
    assert MANUAL_MATCHES["married"] == "married"


def test_missing_nltk_data_names_the_install_command(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    assert okvqa_stem.missing_nltk_data() == ["punkt_tab", "averaged_perceptron_tagger_eng", "wordnet"]
    with pytest.raises(EnvironmentProblem) as info:
        okvqa_stem.nltk_stemmer()
    message = str(info.value)
    assert "\n" not in message
    assert "punkt_tab, averaged_perceptron_tagger_eng, wordnet" in message
    assert "`python -m nltk.downloader punkt_tab averaged_perceptron_tagger_eng wordnet`" in message


def test_real_nltk_stemmer_where_its_data_is_installed():
    if okvqa_stem.missing_nltk_data():
        pytest.skip("NLTK data not installed: " + okvqa_stem.install_hint())
    stemmer = okvqa_stem.nltk_stemmer()
    # "skiing" -> WordNet verb lemma "ski"; "dogs" tagged NNS -> "dog"; "jeans" from the table
    assert stemmer.stem("skiing") == "ski"
    assert stemmer.stem("dogs") == "dog"
    assert stemmer.stem("blue jeans") == "blue jean"


def fake_nltk_download(calls: list, succeed: bool = True):
    """nltk.download's signature: lays out each resource where nltk.data.find looks, or fails as offline does."""

    def download(name, download_dir, quiet, raise_on_error, print_error_to):
        calls.append((name, download_dir))
        if not succeed:
            raise ValueError("Error with downloaded zip file")  # what raise_on_error gives without a network
        (okvqa_stem.Path(download_dir) / okvqa_stem.NLTK_RESOURCES[name]).mkdir(parents=True)
        return True

    return download


def test_fetch_puts_the_missing_nltk_data_in_the_cache_where_the_stemmer_looks(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk-home")])
    calls = []
    assert okvqa_stem.fetch_nltk_data(fake_nltk_download(calls)) == []
    folder = str(okvqa_stem.nltk_data_dir())
    assert calls == [(name, folder) for name in okvqa_stem.NLTK_RESOURCES]
    assert folder.startswith(str(okvqa_stem.cache_dir())) and folder in nltk.data.path
    assert okvqa_stem.missing_nltk_data() == []
    assert okvqa_stem.fetch_nltk_data(fake_nltk_download(calls)) == [] and len(calls) == 3  # nothing fetched twice


def test_an_offline_fetch_returns_what_is_still_missing_and_says_where_to_copy_it(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk-home")])
    missing = okvqa_stem.fetch_nltk_data(fake_nltk_download([], succeed=False))
    assert missing == list(okvqa_stem.NLTK_RESOURCES)
    hint = okvqa_stem.copy_hint(missing)
    assert "python -m nltk.downloader -d nltk_data punkt_tab averaged_perceptron_tagger_eng wordnet" in hint
    assert hint.endswith(str(okvqa_stem.nltk_data_dir()))
