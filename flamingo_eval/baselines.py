"""Model-free baselines from a prompt's demonstrations, and whether the model copied one of them.

A few-shot score means little beside nothing: these say what the demonstrations alone would score, with the
task's own metric, and how often the model's answer is one of theirs.

- ``majority``: the most frequent demonstration answer (compared after the task's answer normalisation), ties
  to the later one; for captioning, where answers rarely repeat, the caption of the most similar demonstration
  under RICES and of the last under random.
- ``last``: the last demonstration's answer.
- Classification over many classes (ImageNet, top-k accuracy): ``majority`` is the most frequent demonstration
  class (ties to the later one), ``last`` the last one's, each as a top-1 prediction.
- Two-way classification (HatefulMemes, scored by ROC-AUC over P(positive)) needs a score per item, not an answer:
  ``majority`` is the share of demonstrations labelled with the positive option (the vote share; above 0.5
  is the majority vote, and ROC-AUC ranks by it, so a RICES vote share is a k-nearest-neighbour classifier);
  ``last`` is 1 when the last demonstration is positive, else 0.

Baselines are read from the demonstrations as selected (``demo_answers`` of a sample, in selection order), so
they are the same in the plain run and in each of its controls: a control moves the model, never its
baselines. Copies are read from the demonstrations as shown (the prompt's chunks): ``copied`` is the index
(in prompt order) of the latest demonstration whose answer the output equals after normalisation, or None;
for classification, of the latest whose label is the predicted option (P >= 0.5), which nearly every prompt
has, so there ``copy_rate`` says little and ``copy_last_rate`` is the one to read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from flamingo_eval.task import TaskSpec

BASELINES = ("majority", "last")
POSITIVE = 1  # the option whose probability a classification answer is (as the runner scores it)


def normalise(task: TaskSpec, text: str) -> str:
    """An answer as the task compares answers: its postprocessing, then VQA's normalisation (captions:
    lower case, punctuation dropped, spaces collapsed)."""
    from flamingo_eval.metrics.vqa_normalize import clean, normalize_answer, strip_punctuation
    from flamingo_eval.postprocess import postprocess

    text = postprocess(task.postprocess, text)
    if task.kind == "vqa":
        return normalize_answer(clean(text))
    return re.sub(r"\s+", " ", strip_punctuation(text.lower())).strip()


def baseline_answers(task: TaskSpec, demo_answers: Sequence[str],
                     similarities: Sequence[float] | None = None) -> dict[str, Any]:
    """Each baseline's answer for one item, from its demonstrations' answers in selection order (most similar
    last under RICES): an answer string, or for classification P(positive)."""
    if task.metric == "topk_accuracy":  # ranked over many classes (ImageNet): the class itself, as a top-1 list
        index = {name: i for i, name in enumerate(task.options)}
        classes = [index[a] for a in demo_answers]
        best = max(range(len(classes)), key=lambda i: (classes.count(classes[i]), i))
        return {"majority": [classes[best]], "last": [classes[-1]]}
    if task.kind == "classification":
        positive = task.options[POSITIVE]
        votes = [a == positive for a in demo_answers]
        return {"majority": sum(votes) / len(votes), "last": float(votes[-1])}
    from flamingo_eval.postprocess import postprocess

    last = len(demo_answers) - 1
    if task.kind == "caption":
        best = last if similarities is None else max(range(len(demo_answers)), key=lambda i: (similarities[i], i))
    else:
        keys = [normalise(task, a) for a in demo_answers]
        counts = {k: keys.count(k) for k in keys}
        best = max(range(len(keys)), key=lambda i: (counts[keys[i]], i))
    return {"majority": postprocess(task.postprocess, demo_answers[best]),
            "last": postprocess(task.postprocess, demo_answers[last])}


def copied(task: TaskSpec, shown_answers: Sequence[str | None], answer: Any) -> int | None:
    """The index (prompt order) of the latest demonstration whose answer the model's answer equals, or None."""
    if task.metric == "topk_accuracy":
        target = task.options[answer[0]]
        same = [i for i, a in enumerate(shown_answers) if a == target]
    elif task.kind == "classification":
        target = task.options[POSITIVE] if float(answer) >= 0.5 else task.options[1 - POSITIVE]
        same = [i for i, a in enumerate(shown_answers) if a == target]
    else:
        mine = normalise(task, answer)
        same = [i for i, a in enumerate(shown_answers) if a is not None and normalise(task, a) == mine]
    return same[-1] if same else None


def shown_answers(row: Mapping[str, Any]) -> list[str | None]:
    """The answers of a sample's demonstrations as its prompt showed them (its chunks but the query)."""
    return [c.get("answer") for c in row["chunks"][:-1]]


class BaselineTally:
    """One trial's baselines and copy rates, gathered row by row as its samples stream past (a full-scale
    trial's records never sit in memory together): ``add`` each scored row (it gains ``copied``), then
    ``result``. Only each item's baseline answers are kept."""

    def __init__(self, task: TaskSpec, references: Mapping[str, Any], vqa_scorer: str = "official"):
        self.task, self.references, self.vqa_scorer = task, references, vqa_scorer
        self.answers: dict[str, dict[str, Any]] = {}
        self.copies = self.last_copies = 0
        self.incomplete = False  # a row predating the baselines, or a prompt without demonstrations

    def add(self, row: dict) -> None:
        if "skipped" in row:
            return
        if not row.get("demo_answers"):
            self.incomplete = True
            return
        self.answers[row["id"]] = baseline_answers(self.task, row["demo_answers"], row.get("similarities"))
        shown = shown_answers(row)
        row["copied"] = copied(self.task, shown, row["answer"])
        self.copies += row["copied"] is not None
        self.last_copies += row["copied"] is not None and row["copied"] == len(shown) - 1

    def result(self) -> dict[str, Any] | None:
        """Each baseline scored with the task's metric, and the copy rates; None where any row had no
        demonstrations to vote on (VL-ICL at 0 shots) or predates the baselines."""
        from flamingo_eval.scoring import score_answers

        if self.incomplete or not self.answers:
            return None
        refs = {i: self.references[i] for i in self.answers}
        out: dict[str, Any] = {name: score_answers(self.task, {i: a[name] for i, a in self.answers.items()}, refs,
                                                   self.vqa_scorer).score for name in BASELINES}
        out["copy_rate"] = 100.0 * self.copies / len(self.answers)
        out["copy_last_rate"] = 100.0 * self.last_copies / len(self.answers)
        return out


def trial_baselines(task: TaskSpec, rows: Sequence[dict], references: Mapping[str, Any],
                    vqa_scorer: str = "official") -> dict[str, Any] | None:
    """One trial's baselines (scored with the task's metric) and copy rates over its rows (each gains
    ``copied``): ``BaselineTally`` over rows already in memory."""
    tally = BaselineTally(task, references, vqa_scorer)
    for r in rows:
        tally.add(r)
    return tally.result()


def mean_baselines(trials: Sequence[dict | None]) -> dict[str, float] | None:
    """The baselines of a result: each one's mean over its trials (None if any trial has none)."""
    if not trials or any(t is None for t in trials):
        return None
    return {k: sum(t[k] for t in trials) / len(trials) for k in trials[0]}
