"""OK-VQA answer stemming, as OpenFlamingo applies it to predictions (the OK-VQA v1.1 references are stemmed).

Per word of the tokenised, POS-tagged answer: a manual table first; else a word ending in "ing" becomes its
WordNet verb lemma; else a plural noun (NNS, NNPS) is singularised by ``inflection``; words are joined with
single spaces. The tokenizer, tagger, lemmatizer and singulariser are parameters so the rules can be checked
without NLTK's data, which ``nltk.download`` fetches over the network and no PyPI or Debian package ships
whole.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flamingo_eval.cache import cache_dir
from flamingo_eval.errors import EnvironmentProblem

# OpenFlamingo's corrections where the automatic rules disagree with the OK-VQA v1.1 stemmed answers
# (eval/ok_vqa_utils.py, 168 entries). Some map a word to itself to stop a wrong singularisation.
MANUAL_MATCHES: dict[str, str] = {
    "police": "police", "las": "las", "vegas": "vegas", "yes": "yes", "jeans": "jean", "hell's": "hell",
    "domino's": "domino", "morning": "morn", "clothes": "cloth", "are": "are", "riding": "ride",
    "leaves": "leaf", "dangerous": "danger", "clothing": "cloth", "texting": "text", "kiting": "kite",
    "firefighters": "firefight", "ties": "tie", "married": "married", "teething": "teeth", "gloves": "glove",
    "tennis": "tennis", "dining": "dine", "directions": "direct", "waves": "wave", "christmas": "christmas",
    "drives": "drive", "pudding": "pud", "coding": "code", "plating": "plate", "quantas": "quanta",
    "hornes": "horn", "graves": "grave", "mating": "mate", "paned": "pane", "alertness": "alert",
    "sunbathing": "sunbath", "tenning": "ten", "wetness": "wet", "urinating": "urine", "sickness": "sick",
    "braves": "brave", "firefighting": "firefight", "lenses": "lens", "reflections": "reflect",
    "backpackers": "backpack", "eatting": "eat", "designers": "design", "curiousity": "curious",
    "playfulness": "play", "blindness": "blind", "hawke": "hawk", "tomatoe": "tomato", "rodeoing": "rodeo",
    "brightness": "bright", "circuses": "circus", "skateboarders": "skateboard", "staring": "stare",
    "electronics": "electron", "electicity": "elect", "mountainous": "mountain", "socializing": "social",
    "hamburgers": "hamburg", "caves": "cave", "transitions": "transit", "wading": "wade", "creame": "cream",
    "toileting": "toilet", "sautee": "saute", "buildings": "build", "belongings": "belong",
    "stockings": "stock", "walle": "wall", "cumulis": "cumuli", "travelers": "travel", "conducter": "conduct",
    "browsing": "brows", "pooping": "poop", "haircutting": "haircut", "toppings": "top", "hearding": "heard",
    "sunblocker": "sunblock", "bases": "base", "markings": "mark", "mopeds": "mope",
    "kindergartener": "kindergarten", "pies": "pie", "scrapbooking": "scrapbook", "couponing": "coupon",
    "meetings": "meet", "elevators": "elev", "lowes": "low", "men's": "men", "childrens": "children",
    "shelves": "shelve", "paintings": "paint", "raines": "rain", "paring": "pare", "expressions": "express",
    "routes": "rout", "pease": "peas", "vastness": "vast", "awning": "awn", "boy's": "boy",
    "drunkenness": "drunken", "teasing": "teas", "conferences": "confer", "ripeness": "ripe",
    "suspenders": "suspend", "earnings": "earn", "reporters": "report", "kid's": "kid",
    "containers": "contain", "corgie": "corgi", "porche": "porch", "microwaves": "microwave",
    "batter's": "batter", "sadness": "sad", "apartments": "apart", "oxygenize": "oxygen",
    "striping": "stripe", "purring": "pure", "professionals": "profession", "piping": "pipe",
    "farmer's": "farmer", "potatoe": "potato", "emirates": "emir", "womens": "women",
    "veteran's": "veteran", "wilderness": "wilder", "propellers": "propel", "alpes": "alp",
    "charioteering": "chariot", "swining": "swine", "illness": "ill", "crepte": "crept",
    "adhesives": "adhesive", "regent's": "regent", "decorations": "decor", "rabbies": "rabbi",
    "overseas": "oversea", "travellers": "travel", "casings": "case", "smugness": "smug", "doves": "dove",
    "nationals": "nation", "mustange": "mustang", "ringe": "ring", "gondoliere": "gondolier",
    "vacationing": "vacate", "reminders": "remind", "baldness": "bald", "settings": "set", "glaced": "glace",
    "coniferous": "conifer", "revelations": "revel", "personals": "person", "daughter's": "daughter",
    "badness": "bad", "projections": "project", "polarizing": "polar", "vandalizers": "vandal",
    "minerals": "miner", "protesters": "protest", "controllers": "control", "weddings": "wed",
    "sometimes": "sometime", "earing": "ear",
}

PLURAL_TAGS = ("NNS", "NNPS")

# NLTK resource -> the path nltk.data.find looks for (NLTK >= 3.9 names: the tab/JSON forms of the same models).
NLTK_RESOURCES: dict[str, str] = {
    "punkt_tab": "tokenizers/punkt_tab/english/",
    "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng/",
    "wordnet": "corpora/wordnet",
}


@dataclass(frozen=True)
class OKVQAStemmer:
    """The stemming rules over injectable language tools.

    ``tokenize`` splits text into words, ``tag`` gives each word its Penn Treebank tag, ``lemmatize_verb``
    returns a word's verb lemma and ``singularize`` a noun's singular.
    """

    tokenize: Callable[[str], list[str]]
    tag: Callable[[list[str]], Sequence[tuple[str, str]]]
    lemmatize_verb: Callable[[str], str]
    singularize: Callable[[str], str]

    def stem_word(self, word: str, tag: str) -> str:
        if word in MANUAL_MATCHES:
            return MANUAL_MATCHES[word]
        if word.endswith("ing"):
            return self.lemmatize_verb(word)
        if tag.startswith(PLURAL_TAGS):
            return self.singularize(word)
        return word

    def stem(self, text: str) -> str:
        return " ".join(self.stem_word(w, t) for w, t in self.tag(self.tokenize(text)))


def nltk_data_dir() -> Path:
    """flamingo-eval's own NLTK data folder, where ``data fetch okvqa`` puts it: searched after NLTK's usual
    folders, so an ``NLTK_DATA`` or ``~/nltk_data`` the user set up still wins."""
    return cache_dir("nltk_data")


def _search_cache() -> None:
    import nltk

    folder = str(nltk_data_dir())
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)  # NLTK's documented way to add a data folder


def missing_nltk_data() -> list[str]:
    """The NLTK resources the stemmer needs that no NLTK data folder (the cache's included) holds."""
    import nltk

    _search_cache()
    missing = []
    for name, path in NLTK_RESOURCES.items():
        try:
            nltk.data.find(path)
        except LookupError:
            missing.append(name)
    return missing


def install_hint() -> str:
    return "python -m nltk.downloader " + " ".join(NLTK_RESOURCES)


def copy_hint(missing: Sequence[str]) -> str:
    """What to do without a network: the folder to fill, and the command that fills a copy elsewhere."""
    return (f"on a machine with a network run `python -m nltk.downloader -d nltk_data {' '.join(missing)}` and "
            f"copy that nltk_data folder's contents to {nltk_data_dir()}")


def fetch_nltk_data(download: Callable[..., bool] | None = None) -> list[str]:
    """Download the missing resources into :func:`nltk_data_dir`; returns those still missing.

    ``download`` is ``nltk.download``'s signature (a parameter so tests need no network); its errors, which
    NLTK prints rather than raises, are swallowed here: what is still missing afterwards is the answer.
    """
    missing = missing_nltk_data()
    if not missing:
        return []
    if download is None:
        import nltk

        download = nltk.download
    folder = nltk_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in missing:
        try:
            download(name, download_dir=str(folder), quiet=True, raise_on_error=True, print_error_to=io.StringIO())
        except Exception:  # offline, a proxy, a half-written zip: whatever it is, the resource is still missing
            pass
    return missing_nltk_data()


def nltk_stemmer() -> OKVQAStemmer:
    """The stemmer on NLTK and inflection, as OpenFlamingo runs it."""
    try:
        import inflection
        import nltk
        from nltk.stem import WordNetLemmatizer
    except ImportError as e:
        raise EnvironmentProblem(f"OK-VQA stemming needs the Python package {e.name!r}: "
                                 f"install with `pip install nltk inflection`") from None
    missing = missing_nltk_data()
    if missing:
        raise EnvironmentProblem(
            f"OK-VQA stemming needs NLTK data that is not installed ({', '.join(missing)}): "
            f"install it with `flamingo-eval data fetch okvqa` or `{install_hint()}` (these download; offline, "
            f"copy an nltk_data folder to {nltk_data_dir()} or point NLTK_DATA at it)")
    lemmatizer = WordNetLemmatizer()
    return OKVQAStemmer(
        tokenize=nltk.word_tokenize,
        tag=nltk.pos_tag,
        lemmatize_verb=lambda word: lemmatizer.lemmatize(word, "v"),
        singularize=inflection.singularize,
    )


@functools.lru_cache(maxsize=1)
def default_stemmer() -> OKVQAStemmer:
    """Built on first use and kept: loading the tagger and WordNet takes a while."""
    return nltk_stemmer()


def stem(text: str) -> str:
    """OK-VQA-stem ``text`` with NLTK (EnvironmentProblem, naming the install command, if its data is missing)."""
    return default_stemmer().stem(text)
