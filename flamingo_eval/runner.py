"""Trials x shots x batches: builds prompts, calls the model, logs finished items, scores, writes results.

Everything that decides an item's output (model, checkpoint, task spec, shots, selection, seed, generation
settings) goes into the run key of its item log, so a rerun of the same command resumes and a changed one
starts afresh. Demonstrations are a pure function of (selection, seed, item id), and items are dealt to
processes round-robin, so scores do not depend on batch size, order or world size.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flamingo_eval.controls import Control, selection_record
from flamingo_eval.data.sample import Sample
from flamingo_eval.demos import Demo
from flamingo_eval.distributed import World, init_world, local_device
from flamingo_eval.errors import BadImageError, DataError
from flamingo_eval.models.base import ModelAdapter
from flamingo_eval.results import (
    SCHEMA,
    SUBMISSIONS_DIR,
    ItemLog,
    ensure_writable_dir,
    git_commit,
    now_iso,
    result_stem,
    write_json_atomic,
    write_jsonl_atomic,
)
from flamingo_eval.scoring import check_environment, groups_for, references_for, score_answers
from flamingo_eval.stack import stack_record
from flamingo_eval.task import TaskSpec, load_task, with_options


@dataclass
class RunConfig:
    model: str
    tasks: list[str]
    shots: list[int] = field(default_factory=lambda: [0, 4, 8, 16, 32])
    seeds: list[int] = field(default_factory=lambda: [42])
    rices: bool = False
    rices_encoder: str = "ViT-L-14"
    rices_pretrained: str | None = "openai"
    rices_by: str = "image"  # image | text | image+text (flamingo_eval.demos.rices_text)
    num_samples: int | None = None
    batch_size: int = 8
    device: str = "cpu"
    precision: str = "fp32"
    device_map: str | None = None  # "auto": accelerate spreads the model over the visible GPUs
    data_root: str = "data"
    overrides: dict[str, str] = field(default_factory=dict)
    output_dir: str = "results/runs"
    skip_bad_images: bool = False
    vqa_scorer: str = "official"
    query_set_size: int = 2048
    progress: bool = True
    control: Control = field(default_factory=Control)  # demonstration controls (flamingo_eval.controls)
    prompt_ensemble: int = 1  # classification: orderings of the demonstrations averaged (flamingo_eval/classify.py)
    wait: bool = True  # for another run computing the same cell (False: stop with CellBusy)


def subsample(items: Sequence[Sample], n: int | None) -> list[Sample]:
    """The first n items by a hash of their id: deterministic, and stable when the split grows."""
    if n is None or n >= len(items):
        return list(items)
    ranked = sorted(items, key=lambda s: hashlib.sha256(f"subsample:{s.id}".encode()).hexdigest())
    return ranked[:n]


def prompt_record(prompt: list) -> list[dict]:
    """The prompt as the model-agnostic chunks it was built from (image key or null, text), demonstrations
    in prompt order then the query: what the report shows, without the data files or the model's format."""
    from flamingo_eval.prompt import chunk_records

    return chunk_records(prompt)


def data_paths_record(td: TaskData) -> dict[str, str]:
    """Each data key's default location (the prefix of its image keys) -> the absolute path this run read,
    so image keys in the samples resolve to files without the run's --data-root or --data overrides."""
    return {td.task.files[k].rstrip("/"): str(Path(p).resolve()) for k, p in sorted(td.paths.items())}


def run_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def safe_name(name: str) -> str:
    """A folder name for a model: the preset name, or a spec file's name (its folder's, for ``spec.yaml``)."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        name = path.parent.name if path.stem == "spec" and path.parent.name else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


@dataclass
class TaskData:
    task: TaskSpec
    paths: dict[str, Path]
    pool: Sequence[Sample]
    eval_split: Sequence[Sample]
    items: list[Sample]
    references: dict[str, Any]
    groups: dict[str, str] | None = None  # item id -> group scored apart (NoCaps' domains)


def load_task_data(config: RunConfig, name: str) -> TaskData:
    """Everything about a task that can be wrong is checked here, before any model is loaded."""
    from flamingo_eval.data import load_split

    task = load_task(name)
    check_environment(task)
    paths = task.data_paths(config.data_root, config.overrides)
    task = with_options(task, paths)
    eval_split = load_split(task, "eval", config.data_root, config.overrides)
    pool = load_split(task, "demo", config.data_root, config.overrides)
    items = subsample(eval_split, config.num_samples)
    if not items:
        raise DataError(f"{task.name}: the evaluation split is empty")
    from flamingo_eval.demos.vlicl import is_vlicl
    from flamingo_eval.prompt_builder import effective_shots

    if is_vlicl(task):
        if config.rices:
            raise DataError(f"{task.name}: VL-ICL tasks draw demonstrations as VL-ICL does; --rices does not apply")
    else:
        limit = len(pool) if config.rices else min(len(pool), config.query_set_size)
        for shots in config.shots:
            if effective_shots(shots) > limit:
                raise DataError(f"{task.name}: {shots} shots need {effective_shots(shots)} demonstrations but the "
                                f"demonstration pool holds {limit}")
    return TaskData(task, paths, pool, eval_split, items, references_for(task, items, paths),
                    groups_for(task, items, paths))


RECORDS_PER_GATHER = 1024  # records sent to rank 0 at a time while the samples file is written


def _outcome(record: dict) -> tuple[bool, Any]:
    """(skipped, answer) of a record: what scoring needs of it."""
    return ("skipped" in record, record.get("answer"))


@dataclass
class TrialLog:
    """One rank's items of one trial: where each record lies in the item logs, and the answers to score
    (in the order the items were found then computed, which fixes the scorer's summation order)."""

    where: dict[str, tuple[Path, int]] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0

    def add(self, item_id: str, path: Path, offset: int, outcome: tuple[bool, Any]) -> None:
        self.where[item_id] = (path, offset)
        skipped, answer = outcome
        if skipped:
            self.skipped += 1
        else:
            self.answers[item_id] = answer


class Runner:
    def __init__(self, config: RunConfig, model: ModelAdapter | None = None, world: World | None = None):
        self.config = config
        if model is None:
            from flamingo_eval.models import resolve_model

            resolve_model(config.model)
        self.world = world or init_world(config.device)
        self.out_dir = ensure_writable_dir(Path(config.output_dir) / safe_name(config.model))
        self.tasks = [load_task_data(config, t) for t in config.tasks]
        _check_rices_by(config, self.tasks)
        config.control.check("rices" if config.rices else "random", config.shots, [td.task for td in self.tasks])
        if model is None:
            from flamingo_eval.models import load_model

            model = load_model(config.model, device=local_device(config.device), precision=config.precision,
                               device_map=config.device_map)
        self.model = model

    # -- selection ---------------------------------------------------------------------------------------

    def selectors(self, td: TaskData) -> list[tuple[int, Any]]:
        """(seed, selector) per trial. RICES is deterministic, so it runs one trial whatever the seeds. A VL-ICL
        task's trial k replays VL-ICL's demonstration stream from seed k (its own seed 0 first)."""
        from flamingo_eval.demos.vlicl import VliclSelector, is_vlicl

        if is_vlicl(td.task):
            return [(k, VliclSelector(td.task, td.paths, k, self.config.shots)) for k in range(len(self.config.seeds))]
        if self.config.rices:
            from flamingo_eval.demos.encoder import ClipEncoder
            from flamingo_eval.demos.rices import RicesSelector
            from flamingo_eval.fingerprint import combined_sha256

            encoder = ClipEncoder(self.config.rices_encoder, self.config.rices_pretrained,
                                  device=local_device(self.config.device), progress=self.config.progress)
            if self.config.rices_by != "image":
                from flamingo_eval.demos.rices_text import SampleRicesSelector

                selector = SampleRicesSelector(td.pool, td.pool.fingerprint, encoder, self.config.rices_by,
                                               device=local_device(self.config.device))
                selector.prepare(td.items, combined_sha256([td.eval_split.fingerprint, str(self.config.num_samples)]))
                return [(self.config.seeds[0], selector)]
            selector = RicesSelector(td.pool, td.pool.fingerprint, encoder, device=local_device(self.config.device))
            selector.prepare(td.items, combined_sha256([td.eval_split.fingerprint, str(self.config.num_samples)]))
            return [(self.config.seeds[0], selector)]
        from flamingo_eval.demos.random import RandomSelector

        return [(seed, RandomSelector(td.pool, seed, self.config.query_set_size)) for seed in self.config.seeds]

    def _selection(self, selector) -> dict[str, Any]:
        """What the run records as its selection: the selector's, with the control (if any) added."""
        return selection_record(selector.describe(), self.config.control)

    # -- one batch -------------------------------------------------------------------------------------

    def _prompts(self, td: TaskData, selector, shots: int, batch: list[Sample], seed: int):
        from flamingo_eval.prompt_builder import build_prompt, effective_shots

        k = shots if _is_vlicl(td.task) else effective_shots(shots)  # VL-ICL: no demonstrations at 0 shots
        out = []
        for item in batch:
            demos: list[Demo] = selector.select(item, k)
            prompt = build_prompt(td.task, [d.sample for d in demos], item, demo_images=shots > 0)
            if not self.config.control.plain:
                prompt = self.config.control.apply(prompt, seed, item.id)
            out.append((item, demos, prompt))
        return out

    def _infer(self, td: TaskData, prompts: list) -> list[dict]:
        task = td.task
        plain = [p for _, _, p in prompts]
        if task.kind == "classification" and (task.metric == "topk_accuracy" or self.config.prompt_ensemble > 1):
            return self._classify(task, prompts)
        if task.kind == "classification":
            from flamingo_eval.metrics.roc_auc import option_probability

            sums = self.model.rank(plain, list(task.options))
            lengths = self.model.option_lengths(list(task.options))
            return [{"output": {"logprobs": s, "lengths": lengths},
                     "answer": option_probability(s, lengths, positive=1)} for s in sums]
        from flamingo_eval.postprocess import postprocess

        texts = self.model.generate(plain, task.generation)
        return [{"output": t, "answer": postprocess(task.postprocess, t)} for t in texts]

    def _classify(self, task: TaskSpec, prompts: list) -> list[dict]:
        """Options by mean log-probability, averaged over the prompt ensemble: the top 5 (ImageNet), or
        P(positive) for ROC-AUC."""
        from flamingo_eval.classify import mean_logprobs
        from flamingo_eval.metrics.roc_auc import option_probability
        from flamingo_eval.metrics.topk import top_classes

        means = mean_logprobs(self.model, [p for _, _, p in prompts], task.options, [i.id for i, _, _ in prompts],
                              self.config.prompt_ensemble)
        if task.metric != "topk_accuracy":
            return [{"output": {"mean_logprobs": m}, "answer": option_probability(m, [1] * len(m), positive=1)}
                    for m in means]
        return [{"output": {"top5": top, "mean_logprobs": [m[j] for j in top]}, "answer": top}
                for m in means for top in [top_classes(m)]]

    def _records(self, td: TaskData, seed: int, prompts: list) -> list[dict]:
        """Run a batch; a bad image is isolated to its item, then skipped (if asked) or raised."""
        from flamingo_eval.prompt_builder import demo_answer

        try:
            outs = self._infer(td, prompts)
        except BadImageError as e:
            if len(prompts) > 1:
                return [r for p in prompts for r in self._records(td, seed, [p])]
            if not self.config.skip_bad_images:
                raise
            outs = [{"skipped": str(e)}]
        rows = []
        for (item, demos, prompt), out in zip(prompts, outs, strict=True):
            rows.append({"seed": seed, "id": item.id, "demos": [d.sample.id for d in demos],
                         "demo_answers": [demo_answer(td.task, d.sample) for d in demos],
                         "similarities": [d.similarity for d in demos] if demos and demos[0].similarity is not None
                         else None,
                         "chunks": prompt_record(prompt), "prompt": self.model.render(prompt), **out})
        return rows

    # -- one (task, shots) cell --------------------------------------------------------------------------

    def _trial(self, td: TaskData, shots: int, seed: int, selector) -> TrialLog:
        """Compute this rank's items of one trial that its item logs lack; records stay on disk, not in memory."""
        cfg = self.config
        key = run_key({"model": self.model.describe(), "task": td.task.sha256, "shots": shots,
                       "selection": self._selection(selector), "seed": seed,
                       "generation": asdict(td.task.generation) if td.task.generation else None,
                       **self._ensemble()})
        log_dir = self.out_dir / "items"
        mine = self.world.shard(td.items)
        mine_ids = {s.id for s in mine}
        found: dict[str, tuple[Path, int, tuple[bool, Any]]] = {}  # the last logged record of an item wins
        for path, offset, row in ItemLog.scan(sorted(log_dir.glob(f"{key}.r*.jsonl"))):
            if row["id"] in mine_ids:
                found[row["id"]] = (path, offset, _outcome(row))
        trial = TrialLog()
        for s in mine:
            if s.id in found:
                path, offset, outcome = found.pop(s.id)
                trial.add(s.id, path, offset, outcome)
        todo = [s for s in mine if s.id not in trial.where]
        log = ItemLog(log_dir / f"{key}.r{self.world.rank}.jsonl")
        bar = _progress(f"{td.task.name} {shots}-shot {self._selection(selector)['selection']} seed {seed}",
                        total=len(mine), initial=len(trial.where), enabled=cfg.progress and self.world.is_main)
        # Sorting by prompt size keeps padding low; results do not depend on the order.
        order = sorted(todo, key=lambda s: (len(s.question) + len(s.text), s.id))
        for start in range(0, len(order), cfg.batch_size):
            prompts = self._prompts(td, selector, shots, order[start:start + cfg.batch_size], seed)
            rows = self._records(td, seed, prompts)
            for r, offset in zip(rows, log.append(rows), strict=True):
                trial.add(r["id"], log.path, offset, _outcome(r))
            bar.update(len(rows))
        bar.close()
        return trial

    def _gather_outcomes(self, trial: TrialLog) -> tuple[dict[str, Any], int] | None:
        """On rank 0, every item's answer (rank order, each rank's in its own order) and the count of
        skipped items; None elsewhere. Answers are small: no rank sends its prompts."""
        parts = self.world.gather_to_main((trial.answers, trial.skipped))
        if parts is None:
            return None
        answers: dict[str, Any] = {}
        for part, _ in parts:
            answers.update(part)
        return answers, sum(n for _, n in parts)

    def _ordered_records(self, td: TaskData, trial: TrialLog) -> Iterator[dict]:
        """Every item's record in the split's order, read back from the item logs a chunk of items at a time
        and sent to rank 0, which alone yields them (every rank must run this to its end)."""
        for start in range(0, len(td.items), RECORDS_PER_GATHER):
            ids = [s.id for s in td.items[start:start + RECORDS_PER_GATHER]]
            part = {i: ItemLog.read_at(*trial.where[i]) for i in ids if i in trial.where}
            parts = self.world.gather_to_main(part)
            if parts is not None:
                merged: dict[str, dict] = {}
                for p in parts:
                    merged.update(p)
                yield from (merged[i] for i in ids)

    def _score_trial(self, td: TaskData, answers: dict[str, Any], skipped: int) -> tuple[dict, dict[str, Any]]:
        refs = {i: td.references[i] for i in answers}
        result = score_answers(td.task, answers, refs, self.config.vqa_scorer, td.groups)
        trial = {"score": result.score, "n": result.n, "skipped": skipped}
        if "groups" in result.details:
            trial["groups"] = result.details["groups"]
        if "top5" in result.details and td.task.metric == "topk_accuracy":
            trial["top5"] = result.details["top5"]
        return trial, result.per_item

    def _sample_rows(self, td: TaskData, trial: TrialLog, per_item: dict[str, Any] | None) -> Iterator[dict]:
        for r in self._ordered_records(td, trial):
            r["references"] = td.references[r["id"]]
            r["score"] = per_item.get(r["id"]) if per_item is not None else None
            yield r

    def submit_cell(self, td: TaskData, shots: int, trials: list[tuple[int, Any]]) -> None:
        """A test split scored by a server: each trial's answers become its submission file."""
        from flamingo_eval.submission import submission_rows, upload_line

        stem = result_stem(td.task.name, shots, self._selection(trials[0][1])["selection"])
        for seed, selector in trials:
            outcomes = self._gather_outcomes(self._trial(td, shots, seed, selector))
            if outcomes is None:
                continue
            answers = outcomes[0]
            rows = submission_rows(td.task.submission, td.eval_split, answers, td.paths)
            path = self.out_dir / SUBMISSIONS_DIR / f"{stem}_seed{seed}.json"
            write_json_atomic(path, rows)
            print(f"{td.task.name} {shots}-shot seed {seed}: "
                  f"{upload_line(td.task.submission['format'], path, len(answers), len(rows))}", flush=True)

    def run_cell(self, td: TaskData, shots: int, trials: list[tuple[int, Any]]) -> dict | None:
        started = time.time()
        from flamingo_eval.baselines import BaselineTally, mean_baselines

        selection = self._selection(trials[0][1])
        stem = result_stem(td.task.name, shots, selection["selection"])
        per_trial: list[dict] = []

        def samples() -> Iterator[dict]:
            """Trial after trial: score it on rank 0, then stream its records (their baselines and copies
            tallied as they pass); one trial's answers in memory."""
            for seed, selector in trials:
                trial = self._trial(td, shots, seed, selector)
                outcomes = self._gather_outcomes(trial)
                per_item, tally = None, None
                if outcomes is not None:
                    scores, per_item = self._score_trial(td, *outcomes)
                    per_trial.append({"seed": seed, **scores})
                    tally = BaselineTally(td.task, td.references, self.config.vqa_scorer)
                for row in self._sample_rows(td, trial, per_item):
                    if tally is not None:
                        tally.add(row)
                    yield row
                if tally is not None:
                    per_trial[-1]["baselines"] = tally.result()

        if not self.world.is_main:
            for _ in samples():  # the same collectives as rank 0, which alone writes
                pass
            return None
        write_jsonl_atomic(self.out_dir / f"{stem}.samples.jsonl", samples())
        scores = [t["score"] for t in per_trial]
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
        result = {
            "schema": SCHEMA,
            "model": {"name": self.config.model, **self.model.describe()},
            "task": {"name": td.task.name, "sha256": td.task.sha256, "metric": td.task.metric,
                     "kind": td.task.kind, "eval_split_size": len(td.eval_split), "pool_size": len(td.pool)},
            "shots": shots,
            "demonstrations_per_prompt": _demonstrations_per_prompt(td.task, shots),
            "zero_shot_text_only_demos": shots == 0 and not _is_vlicl(td.task),
            "selection": selection,
            "seeds": [s for s, _ in trials],
            "trials": per_trial,
            "mean": mean,
            "std": std,
            "baselines": mean_baselines([t["baselines"] for t in per_trial]),
            "n": per_trial[0]["n"],
            "num_samples": self.config.num_samples,
            "generation": asdict(td.task.generation) if td.task.generation else None,
            "vqa_scorer": self.config.vqa_scorer if td.task.metric == "vqa_accuracy" else None,
            "batch_size": self.config.batch_size,
            "world_size": self.world.size,
            "device": self.config.device,
            "precision": self.config.precision,
            **stack_record(),  # "versions" and "lock"
            "git_commit": git_commit(),
            "wall_time_s": round(time.time() - started, 3),
            "created": now_iso(),
            "samples_file": f"{stem}.samples.jsonl",
            "data_paths": data_paths_record(td),
            **self._ensemble(),
        }
        if "groups" in per_trial[0]:  # each group's mean over the trials (NoCaps' domains)
            result["groups"] = {g: sum(t["groups"][g] for t in per_trial) / len(per_trial) for g in per_trial[0]["groups"]}
        if td.task.metric == "topk_accuracy":
            result["top5_mean"] = sum(t["top5"] for t in per_trial) / len(per_trial)
        write_json_atomic(self.out_dir / f"{stem}.json", result)
        return result

    def _ensemble(self) -> dict[str, int]:
        """The prompt ensemble, where there is one (a record without the key ranked the built order only)."""
        return {"prompt_ensemble": self.config.prompt_ensemble} if self.config.prompt_ensemble > 1 else {}

    def _cell_lock(self, td: TaskData, shots: int, trials: list[tuple[int, Any]]):
        """Another run writing the same result file computes it first; this one then finds its items logged."""
        from flamingo_eval.cell_lock import cell_lock

        stem = result_stem(td.task.name, shots, self._selection(trials[0][1])["selection"])
        return cell_lock(self.out_dir / "items" / f"{stem}.lock", f"{safe_name(self.config.model)}/{stem}",
                         self.world, wait=self.config.wait)

    def run(self) -> list[dict]:
        results = []
        for td in self.tasks:
            trials = self.selectors(td)
            for shots in self.config.shots:
                with self._cell_lock(td, shots, trials):
                    if td.task.submission is not None:
                        self.submit_cell(td, shots, trials)
                        continue
                    result = self.run_cell(td, shots, trials)
                if result is not None:
                    results.append(result)
                    _report(result, self.out_dir)
        self.world.barrier()
        return results


def _is_vlicl(task: TaskSpec) -> bool:
    from flamingo_eval.demos.vlicl import is_vlicl

    return is_vlicl(task)


def _demonstrations_per_prompt(task: TaskSpec, shots: int) -> int:
    """OpenFlamingo's protocol shows two text-only demonstrations at 0 shots; VL-ICL's none (its 2-way and
    pair tasks two per shot)."""
    if _is_vlicl(task):
        from flamingo_eval.demos.vlicl import demonstrations_per_prompt

        return demonstrations_per_prompt(task, shots)
    return 2 if shots == 0 else shots


def _check_rices_by(config: RunConfig, tasks: list[TaskData]) -> None:
    from flamingo_eval.demos.rices_text import check_rices_by
    from flamingo_eval.errors import ConfigError

    if config.rices_by != "image" and not config.rices:
        raise ConfigError(f"--rices-by {config.rices_by} needs --rices")
    for td in tasks:
        check_rices_by(config.rices_by, td.task.name, td.task.kind)


def _report(result: dict, out_dir: Path) -> None:
    sel = result["selection"]["selection"]
    spread = f" ± {result['std']:.2f}" if len(result["trials"]) > 1 else ""
    print(f"{result['task']['name']:<14} {result['shots']:>2}-shot {sel:<6} {result['task']['metric']:<13} "
          f"{result['mean']:7.2f}{spread}  (n={result['n']}, trials={len(result['trials'])})  "
          f"-> {out_dir / result_stem(result['task']['name'], result['shots'], sel)}.json", flush=True)


def _progress(desc: str, total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="item", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, mininterval=1.0)


def run(config: RunConfig, model: ModelAdapter | None = None) -> list[dict]:
    return Runner(config, model=model).run()
