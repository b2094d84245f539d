"""VL-ICL Bench's demonstrations, drawn exactly as its ``I2T_inference.py`` draws them.

VL-ICL seeds Python's ``random`` once (seed 0), then for each shot count of its run, in order, and each query
in file order calls ``select_demonstration``: ``random.sample(support, n)`` (operator induction then keeps,
of each demonstration's three results, the one for the query's operator; matching MiniImageNet shows each
sampled record's ``same`` then its ``diff`` pair); fast open MiniImageNet is 2-way: the query's class and
one ``random.choice`` of its other classes, in an order set by ``random.choice([True, False])``, with the
query's own first n support images of each. One stream serves every shot count, so a query's
demonstrations at 4 shots depend on the shot counts run before. This module replays that stream for the
shot counts VL-ICL's paper runs (the task's ``vlicl.shots``, in that order; a shot count outside them is
drawn after them, in ascending order), so that, at trial seed 0, every prompt holds the demonstrations
VL-ICL's would, whatever ``--shots`` asks for and whatever the batch size or number of processes.
Trial k of a run uses seed k (VL-ICL's seed 0 first), and its results record that seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flamingo_eval.data.sample import Sample
from flamingo_eval.data.vlicl import (
    OPEN_MI_QUESTION,
    OPERATOR_INDEX,
    answer_texts,
    class_support,
    image_paths,
    load_records,
)
from flamingo_eval.demos import Demo
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.prompt import Image
from flamingo_eval.task import TaskSpec

TASKS = ("open_mi", "clevr", "operator_induction", "operator_induction_interleaved", "textocr", "matching_mi")


def spec(task: TaskSpec) -> dict[str, Any] | None:
    """The task's ``vlicl`` block (VL-ICL's dataset name and its paper's shot counts), None for other tasks."""
    block = task.raw.get("vlicl")
    if block is None:
        return None
    where = task.source or task.name
    if not isinstance(block, dict) or block.get("task") not in TASKS:
        raise ConfigError(f"{where}: 'vlicl.task' must be one of {', '.join(TASKS)}")
    shots = block.get("shots")
    if not isinstance(shots, list) or not shots or not all(isinstance(s, int) and s >= 0 for s in shots):
        raise ConfigError(f"{where}: 'vlicl.shots' must list VL-ICL's shot counts in the order it runs them")
    return block


def is_vlicl(task: TaskSpec) -> bool:
    return spec(task) is not None


def demonstrations_per_prompt(task: TaskSpec, shots: int) -> int:
    """How many demonstration chunks a prompt of ``shots`` holds: 2 per shot for the 2-way and pair tasks."""
    return shots * (2 if spec(task)["task"] in ("open_mi", "matching_mi") else 1)


class VliclSelector:
    """One trial's demonstrations for every (shot count, query), replayed from VL-ICL's random stream."""

    name = "vlicl"

    def __init__(self, task: TaskSpec, paths: dict[str, Path], seed: int, shots: Sequence[int]):
        block = spec(task)
        if block is None:
            raise ConfigError(f"task {task.name} is not a VL-ICL task")
        self.task, self.dataset, self.seed = task, block["task"], seed
        self.sequence = list(block["shots"]) + sorted(set(shots) - set(block["shots"]))
        self.images_key = task.eval.options["images"]
        self.images_dir = paths[self.images_key]
        self.query_path = paths[task.eval.options["annotations"]]
        self.queries = load_records(self.query_path)
        self.support_path = paths[task.demo.options["annotations"]]
        self.support = [] if self.dataset == "open_mi" else load_records(self.support_path)
        for n in shots:
            self.check(n)
        self._demos = self._replay()

    def check(self, n: int) -> None:
        """More shots than the data holds is one clear line."""
        if self.dataset == "open_mi":
            fewest = min(min(len(v) for v in class_support(q, self.query_path, f"record {i}").values())
                         for i, q in enumerate(self.queries))
            if n > fewest:
                raise DataError(f"{self.task.name}: {n} shots need {n} support images per class, but a query in "
                                f"{self.query_path} has only {fewest}")
        elif n > len(self.support):
            raise DataError(f"{self.task.name}: {n} shots need {n} support records but {self.support_path} "
                            f"holds {len(self.support)}")

    def _image(self, rel: str) -> Image:
        return Image(key=self.task.image_key(self.images_key, rel), path=str(self.images_dir / rel))

    def _sample(self, sample_id: str, record: dict, where: str, answer: str | None = None,
                question: str | None = None) -> Sample:
        source = self.query_path if self.dataset == "open_mi" else self.support_path
        images = [self._image(p) for p in image_paths(record, source, where)]
        text = answer if answer is not None else answer_texts(record, source, where)[0]
        q = question if question is not None else str(record.get("question", ""))
        return Sample(id=sample_id, image=images[0], question=q, answers=(text,), more_images=tuple(images[1:]))

    def _draw(self, rng: random.Random, qi: int, query: dict, n: int) -> list[Sample]:
        where = f"record {qi}"
        if self.dataset == "open_mi":
            per_class = class_support(query, self.query_path, where)
            own = str(query["answer"])
            classes = [str(c) for c in query.get("classes", per_class)]
            other = rng.choice([c for c in classes if c != own])
            order = [own, other] if rng.choice([True, False]) else [other, own]
            return [self._sample(f"{qi}/{c}/{i}", {"image": [per_class[c][i]]}, where, answer=c,
                                 question=OPEN_MI_QUESTION)
                    for i in range(n) for c in order]
        picked = rng.sample(range(len(self.support)), n)  # the draws random.sample(support, n) makes
        if self.dataset == "matching_mi":
            return [self._sample(f"{i}/{part}", self.support[i][part], f"record {i}.{part}")
                    for i in picked for part in ("same", "diff")]
        if self.dataset.startswith("operator_induction"):
            op = query.get("operator")
            if op not in OPERATOR_INDEX:
                raise DataError(f"{self.query_path}: {where} has operator {op!r}, not one of +, -, x")
            out = []
            for i in picked:
                answers = self.support[i].get("answer")
                if not isinstance(answers, list) or len(answers) != len(OPERATOR_INDEX):
                    raise DataError(f"{self.support_path}: record {i} needs three answers (+, -, x), "
                                    f"not {answers!r}")
                out.append(self._sample(str(i), self.support[i], f"record {i}", answer=str(answers[OPERATOR_INDEX[op]])))
            return out
        return [self._sample(str(i), self.support[i], f"record {i}") for i in picked]

    def _replay(self) -> dict[tuple[int, str], list[Sample]]:
        rng = random.Random(self.seed)
        out = {}
        for n in self.sequence:
            for qi, query in enumerate(self.queries):
                out[(n, str(qi))] = self._draw(rng, qi, query, n)
        return out

    def select(self, query: Sample, k: int) -> list[Demo]:
        """The demonstrations VL-ICL's ``k``-shot prompt for this query holds, in prompt order."""
        try:
            return [Demo(s) for s in self._demos[(k, query.id)]]
        except KeyError:
            raise DataError(f"{self.task.name}: no query {query.id!r} at {k} shots in {self.query_path}") from None

    def describe(self) -> dict[str, Any]:
        return {"selection": "vlicl", "seed": self.seed, "shot_sequence": self.sequence}


DESCRIPTIONS = ("nothing", "concise", "detailed")


def with_description(names: Sequence[str], level: str) -> list[str]:
    """``--task-description``: each VL-ICL task named without a variant becomes its ``:concise`` or
    ``:detailed`` variant (``nothing`` is the task itself); other tasks are left as named."""
    from flamingo_eval.task import VARIANT_SEP, load_task

    if level not in DESCRIPTIONS:
        raise ConfigError(f"--task-description must be one of {', '.join(DESCRIPTIONS)}, not {level!r}")
    if level == "nothing":
        return list(names)
    out = []
    for name in names:
        task = load_task(name)
        plain = VARIANT_SEP not in task.name
        out.append(f"{name}{VARIANT_SEP}{level}" if plain and is_vlicl(task) else name)
    return out
