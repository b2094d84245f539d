"""CIDEr-D with pycocoevalcap, on PTB-tokenised text, as COCOEvalCap computes it for the published tables.

COCOEvalCap.evaluate() also runs METEOR and SPICE, and SPICE downloads a model on first use, so offline it
fails; this calls its tokenizer and CIDEr scorer directly, which is the same computation for CIDEr. Document
frequencies come from the scored items' references, so a score depends on which items are scored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence

from flamingo_eval.errors import DataError, EnvironmentProblem
from flamingo_eval.metrics import MetricResult, matched_ids

JAVA_HINT = "install with `apt-get install default-jre-headless`"


def _java_missing(reason: str) -> EnvironmentProblem:
    return EnvironmentProblem(f"CIDEr needs Java for the PTB tokenizer ({reason}): {JAVA_HINT}")


def require_java() -> None:
    """Fail before any model work when CIDEr will not be computable."""
    if shutil.which("java") is None:
        raise _java_missing("no `java` on PATH")


@contextlib.contextmanager
def _child_stderr_captured() -> Iterator[None]:
    """The tokenizer's JVM writes progress and warnings to the inherited stderr; keep them off the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def ptb_tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
    """Lower-cased, PTB-tokenised captions without punctuation tokens, by pycocoevalcap's Stanford tokenizer."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    require_java()
    # The tokenizer joins captions with newlines, so a caption's own newlines would shift every later one.
    request = {k: [{"caption": c.replace("\n", " ").replace("\r", " ")} for c in v] for k, v in captions.items()}
    try:
        with _child_stderr_captured():
            tokenized = PTBTokenizer().tokenize(request)
    except PermissionError as e:
        raise EnvironmentProblem(f"CIDEr: pycocoevalcap's PTB tokenizer writes a temporary file beside its jar "
                                 f"and may not ({e}): make that folder writable") from None
    except OSError as e:
        raise _java_missing(f"it did not start: {e}") from None
    # It pairs output lines with captions in order; Java failing mid-way shows as missing or short entries.
    # A blank last caption can lose its (empty) line, which is harmless: it tokenises to "".
    for key, texts in captions.items():
        got = tokenized.setdefault(key, [])
        if len(got) < len(texts) and all(not t.strip() for t in texts[len(got):]):
            got.extend("" for _ in texts[len(got):])
        if len(got) != len(texts):
            raise _java_missing("the tokenizer returned fewer lines than it was given; run "
                                "`java -version` to check the installation")
    return tokenized


def cider(predictions: dict[str, str], references: dict[str, Sequence[str]],
          groups: dict[str, str] | None = None) -> MetricResult:
    """Corpus CIDEr-D x100 and each item's CIDEr-D x100 (their mean is the corpus score).

    With ``groups`` (item id -> group, NoCaps' domains), ``details["groups"]`` also holds each group's CIDEr-D
    computed over that group's items alone (its own document frequencies), as NoCaps' evaluation reports
    in-domain, near-domain and out-of-domain scores.
    """
    from pycocoevalcap.cider.cider import Cider

    ids = matched_ids(predictions, references, "cider")
    for i in ids:
        refs = references[i]
        if isinstance(refs, str) or len(refs) == 0:
            raise DataError(f"cider: item {i!r} needs a list of reference captions, got {refs!r}")
    # One tokenizer run for both sides: Java start-up costs about a second.
    keyed: dict[str, list[str]] = {}
    for i in ids:
        keyed[f"p{i}"] = [predictions[i]]
        keyed[f"r{i}"] = list(references[i])
    tokens = ptb_tokenize(keyed)
    res = {i: tokens[f"p{i}"] for i in ids}
    gts = {i: tokens[f"r{i}"] for i in ids}
    score, scores = Cider().compute_score(gts, res)
    per_item = {i: 100.0 * float(s) for i, s in zip(gts, scores, strict=True)}
    details: dict = {"tokenizer": "ptb"}
    if groups is not None:
        missing = [i for i in ids if i not in groups]
        if missing:
            raise DataError(f"cider: {len(missing)} item(s) have no group, e.g. {', '.join(map(str, missing[:3]))}")
        details["groups"] = {}
        for g in sorted({groups[i] for i in ids}):
            members = [i for i in ids if groups[i] == g]
            g_score, _ = Cider().compute_score({i: gts[i] for i in members}, {i: res[i] for i in members})
            details["groups"][g] = 100.0 * float(g_score)
    return MetricResult(score=100.0 * float(score), per_item=per_item, n=len(ids), details=details)
