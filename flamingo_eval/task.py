"""TaskSpec: one task's data files, splits, prompt template, generation settings, postprocessing, metric.

Loaded from ``tasks/<name>.yaml`` (or any YAML path given as ``--task``). Data paths are relative to
``--data-root`` and each can be overridden with ``--data KEY=PATH``. A file may be given as a list of
candidate paths (the official archive's name beside OpenFlamingo's converted one): the first that exists is
used. A YAML's ``variants`` are the task on another published split (``hateful_memes:dev_seen``,
``vqav2:test-dev``): each overrides top-level keys of the task and adds to its ``files``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.base import GenerationSettings
from flamingo_eval.registry import unknown

KINDS = ("caption", "vqa", "classification")
PACKAGE_PREFIX = "package:"  # a default data path that names a file shipped in flamingo_eval/data/
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
TASKS_DIR_ENV = "FLAMINGO_EVAL_TASKS"
VARIANT_SEP = ":"


def tasks_dir() -> Path:
    """Where the shipped task YAMLs live: $FLAMINGO_EVAL_TASKS, else ``tasks/`` beside the package."""
    env = os.environ.get(TASKS_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "tasks"


@dataclass(frozen=True)
class SplitSpec:
    """Which reader parses a split and its options; option values naming a data key become paths."""

    reader: str
    options: dict[str, Any]


@dataclass(frozen=True)
class PromptSpec:
    """``demo`` and ``query`` are str.format templates over {question}, {answer}, {text}; ``instruction`` is
    text before the whole prompt (VL-ICL's task description and its newline)."""

    demo: str
    query: str
    separator: str = ""
    instruction: str = ""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    kind: str
    files: dict[str, str]
    demo: SplitSpec
    eval: SplitSpec
    prompt: PromptSpec
    metric: str
    postprocess: str
    generation: GenerationSettings | None = None
    options: tuple[str, ...] = ()
    references: str | None = None
    submission: dict[str, Any] | None = None
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    variants: tuple[str, ...] = ()
    options_file: str | None = None  # a data key naming the options, one per line (ImageNet's 1000 classes)
    source: str = ""
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def candidates(self, key: str) -> tuple[str, ...]:
        """The default paths (relative to --data-root) a data key may have, in order of preference."""
        return self.alternatives.get(key, (self.files[key],))

    def data_paths(self, data_root: str | os.PathLike = "data", overrides: dict[str, str] | None = None) -> dict[str, Path]:
        """Every data key -> its path: an override if given, else the first of its candidates that exists
        under data_root (the first one when none does)."""
        overrides = dict(overrides or {})
        for key in overrides:
            if key not in self.files:
                raise unknown(f"data key for task {self.name}", key, list(self.files))
        root = Path(data_root)
        return {k: Path(overrides[k]) if k in overrides else _first_existing(root, self.candidates(k))
                for k in self.files}

    def image_key(self, images_data_key: str, filename: str) -> str:
        """A stable image key: the images directory's default location + file name.

        Independent of --data-root and overrides, and shared by tasks over the same images
        (COCO captions, VQAv2 and OK-VQA all name ``coco/train2014/...``).
        """
        return f"{self.files[images_data_key].rstrip('/')}/{filename}"

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "kind": self.kind, "metric": self.metric,
                "files": dict(self.files)}


def shown_path(candidate: str) -> str:
    """A default data path as ``ls tasks`` prints it: under the data root, or shipped in the package."""
    if candidate.startswith(PACKAGE_PREFIX):
        return f"{PACKAGE_DATA / candidate.removeprefix(PACKAGE_PREFIX)} (shipped)"
    return f"<data-root>/{candidate}"


def _first_existing(root: Path, candidates: tuple[str, ...]) -> Path:
    paths = [PACKAGE_DATA / c.removeprefix(PACKAGE_PREFIX) if c.startswith(PACKAGE_PREFIX) else root / c
             for c in candidates]
    return next((p for p in paths if p.exists()), paths[0])


def _files(raw: Any, source: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """``files`` -> (key -> preferred path, key -> all candidates for keys that list several)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: 'files' must be a mapping of data keys to paths")
    files, alternatives = {}, {}
    for key, value in raw.items():
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{source}: files.{key} must be a path or a list of paths")
        files[key] = paths[0]
        if len(paths) > 1:
            alternatives[key] = tuple(paths)
    return files, alternatives


def _require(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise ConfigError(f"{where}: missing required key {key!r}")
    return d[key]


def _split(d: Any, where: str) -> SplitSpec:
    if not isinstance(d, dict) or "reader" not in d:
        raise ConfigError(f"{where}: expected a mapping with a 'reader'")
    options = {k: v for k, v in d.items() if k != "reader"}
    return SplitSpec(reader=d["reader"], options=options)


def parse_task(raw: dict[str, Any], source: str = "<memory>") -> TaskSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a task spec is a YAML mapping")
    kind = _require(raw, "kind", source)
    if kind not in KINDS:
        raise ConfigError(f"{source}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    p = _require(raw, "prompt", source)
    gen = raw.get("generation")
    try:
        generation = GenerationSettings(**gen) if gen else None
    except TypeError as e:
        raise ConfigError(f"{source}: bad generation settings: {e}") from None
    if kind != "classification" and generation is None:
        raise ConfigError(f"{source}: a {kind} task needs 'generation' settings")
    options = tuple(raw.get("options", ()))
    files, alternatives = _files(_require(raw, "files", source), source)
    options_file = raw.get("options_file")
    if options_file is not None and (options or options_file not in files):
        raise ConfigError(f"{source}: options_file must name a key of 'files' and replace 'options'")
    if kind == "classification" and len(options) < 2 and options_file is None:
        raise ConfigError(f"{source}: a classification task needs at least two 'options'")
    references = raw.get("references")
    if references is not None and references not in files:
        raise ConfigError(f"{source}: references {references!r} is not a key of 'files'")
    submission = raw.get("submission")
    if submission is not None:
        from flamingo_eval.submission import check_spec

        check_spec(submission, kind, files, source)
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict):
        raise ConfigError(f"{source}: 'variants' must map variant names to overrides")
    # A task's variants do not change what the task itself computes, so they stay out of its hash.
    canonical = json.dumps({k: v for k, v in raw.items() if k != "variants"}, sort_keys=True,
                           ensure_ascii=False).encode()
    return TaskSpec(
        name=_require(raw, "name", source),
        title=raw.get("title", raw["name"]),
        kind=kind,
        files=files,
        demo=_split(_require(raw, "demo", source), f"{source}: demo"),
        eval=_split(_require(raw, "eval", source), f"{source}: eval"),
        prompt=PromptSpec(demo=_require(p, "demo", source), query=_require(p, "query", source),
                          separator=p.get("separator", ""), instruction=p.get("instruction", "")),
        metric=_require(raw, "metric", source),
        postprocess=raw.get("postprocess", "none"),
        generation=generation,
        options=options,
        references=references,
        submission=submission,
        alternatives=alternatives,
        variants=tuple(variants),
        options_file=options_file,
        source=source,
        sha256=hashlib.sha256(canonical).hexdigest(),
        raw=raw,
    )


def with_options(task: TaskSpec, paths: dict[str, Path]) -> TaskSpec:
    """The task with its ``options_file`` read (one option per line, ``#`` lines are comments): the spec a
    run evaluates, its hash covering the names, so another class list (``--data classnames=PATH``) is
    another task to the result cache."""
    if task.options_file is None:
        return task
    path = paths[task.options_file]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"task {task.name}: options file {task.options_file!r} not found at {path} "
                          f"(point to it with --data {task.options_file}=PATH)") from None
    names = [line.strip() for line in lines if not line.startswith("#")]
    if len(names) < 2 or not all(names):
        raise ConfigError(f"{path}: expected at least two options, one per non-empty line")
    digest = hashlib.sha256("\n".join([task.sha256, *names]).encode()).hexdigest()
    return replace(task, options=tuple(names), sha256=digest)


def with_variant(raw: dict[str, Any], variant: str, source: str = "<memory>") -> dict[str, Any]:
    """The task's YAML with one of its variants applied: the variant's keys replace the task's, except
    ``files``, which the variant extends; the name becomes ``<task>:<variant>``."""
    variants = raw.get("variants") or {}
    if variant not in variants:
        raise unknown(f"{raw.get('name')} variant", variant, list(variants))
    overlay = variants[variant]
    if not isinstance(overlay, dict) or {"name", "variants"} & set(overlay):
        raise ConfigError(f"{source}: variant {variant!r} must be a mapping without 'name' or 'variants'")
    merged = {k: v for k, v in raw.items() if k != "variants"}
    if not isinstance(overlay.get("files", {}), dict):
        raise ConfigError(f"{source}: variant {variant!r}: 'files' must be a mapping of data keys to paths")
    for key, value in overlay.items():
        merged[key] = {**raw.get("files", {}), **value} if key == "files" else value
    merged["name"] = f"{raw['name']}{VARIANT_SEP}{variant}"
    return merged


def available_tasks() -> list[str]:
    d = tasks_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _split_variant(name_or_path: str) -> tuple[str, str | None]:
    """``vqav2:test-dev`` -> ("vqav2", "test-dev"); a path's own colons (none on POSIX) are kept."""
    head, sep, tail = name_or_path.rpartition(VARIANT_SEP)
    if sep and head and tail and "/" not in tail and not tail.endswith((".yaml", ".yml")):
        return head, tail
    return name_or_path, None


def load_task(name_or_path: str) -> TaskSpec:
    """A shipped task name (``vqav2``), a path to a task YAML, either with ``:<variant>``."""
    name_or_path, variant = _split_variant(name_or_path)
    path = Path(name_or_path)
    if not (name_or_path.endswith((".yaml", ".yml")) or path.is_file()):
        path = tasks_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise unknown("task", name_or_path, available_tasks())
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"task spec not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
    if variant is None:
        return parse_task(raw, source=str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a task spec is a YAML mapping")
    return parse_task(with_variant(raw, variant, str(path)), source=f"{path}{VARIANT_SEP}{variant}")
