"""TaskSpec: one task's data files, splits, prompt template, generation settings, postprocessing, metric.

Loaded from ``tasks/<name>.yaml`` (or any YAML path given as ``--task``). Data paths are relative to
``--data-root`` and each can be overridden with ``--data KEY=PATH``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.base import GenerationSettings
from flamingo_eval.registry import unknown

KINDS = ("caption", "vqa", "classification")
TASKS_DIR_ENV = "FLAMINGO_EVAL_TASKS"


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
    """``demo`` and ``query`` are str.format templates over {question}, {answer}, {text}."""

    demo: str
    query: str
    separator: str = ""


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
    source: str = ""
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def data_paths(self, data_root: str | os.PathLike = "data", overrides: dict[str, str] | None = None) -> dict[str, Path]:
        """Every data key -> its path: an override if given, else data_root / the task's default."""
        overrides = dict(overrides or {})
        for key in overrides:
            if key not in self.files:
                raise unknown(f"data key for task {self.name}", key, list(self.files))
        root = Path(data_root)
        return {k: Path(overrides[k]) if k in overrides else root / v for k, v in self.files.items()}

    def image_key(self, images_data_key: str, filename: str) -> str:
        """A stable image key: the images directory's default location + file name.

        Independent of --data-root and overrides, and shared by tasks over the same images
        (COCO captions, VQAv2 and OK-VQA all name ``coco/train2014/...``).
        """
        return f"{self.files[images_data_key].rstrip('/')}/{filename}"

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "kind": self.kind, "metric": self.metric,
                "files": dict(self.files)}


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
    if kind == "classification" and len(options) < 2:
        raise ConfigError(f"{source}: a classification task needs at least two 'options'")
    files = dict(_require(raw, "files", source))
    references = raw.get("references")
    if references is not None and references not in files:
        raise ConfigError(f"{source}: references {references!r} is not a key of 'files'")
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False).encode()
    return TaskSpec(
        name=_require(raw, "name", source),
        title=raw.get("title", raw["name"]),
        kind=kind,
        files=files,
        demo=_split(_require(raw, "demo", source), f"{source}: demo"),
        eval=_split(_require(raw, "eval", source), f"{source}: eval"),
        prompt=PromptSpec(demo=_require(p, "demo", source), query=_require(p, "query", source),
                          separator=p.get("separator", "")),
        metric=_require(raw, "metric", source),
        postprocess=raw.get("postprocess", "none"),
        generation=generation,
        options=options,
        references=references,
        source=source,
        sha256=hashlib.sha256(canonical).hexdigest(),
        raw=raw,
    )


def available_tasks() -> list[str]:
    d = tasks_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_task(name_or_path: str) -> TaskSpec:
    """A shipped task name (``vqav2``) or a path to a task YAML."""
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
    return parse_task(raw, source=str(path))
