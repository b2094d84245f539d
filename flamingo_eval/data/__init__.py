"""Loading a task's splits: ``load_split(task, "demo" | "eval")`` -> Split, and caption references.

Each split is parsed once by the reader its YAML names, stored as an Arrow table under
cache_dir("splits", <fingerprint>) and memory-mapped on later loads; the fingerprint covers the source
files' contents and the reader options, so an edited annotation file is parsed again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flamingo_eval.data.reader import READERS, ReadContext, missing_file_error
from flamingo_eval.data.references import load_caption_references
from flamingo_eval.data.sample import Sample
from flamingo_eval.data.split import Split
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.fingerprint import combined_sha256, file_sha256
from flamingo_eval.task import TaskSpec

__all__ = ["Sample", "Split", "load_split", "load_references", "load_caption_references", "READERS",
           "SPLIT_FORMAT"]

SPLIT_FORMAT = "split-v2"  # bump when readers change what they store, to invalidate cached tables
WHICH = ("demo", "eval")


def _require_file(task: TaskSpec, key: str, path: Path) -> None:
    if not path.is_file():
        raise missing_file_error(task.name, key, path, task.candidates(key))


def _context(task: TaskSpec, which: str, data_root, overrides) -> ReadContext:
    if which not in WHICH:
        raise ConfigError(f"split must be one of {', '.join(WHICH)}, not {which!r}")
    spec = task.demo if which == "demo" else task.eval
    return ReadContext(task_name=task.name, source=task.source or task.name, which=which,
                       options=dict(spec.options), paths=task.data_paths(data_root, overrides),
                       defaults={k: task.candidates(k) for k in task.files})


def split_fingerprint(reader_name: str, ctx: ReadContext, source_keys: list[str], listing: str = "") -> str:
    """Hash of the reader, its options and the source files' bytes (not their paths); a reader of a folder
    tree (imagefolder) adds its listing's digest."""
    options = json.dumps(ctx.options, sort_keys=True, ensure_ascii=False)
    return combined_sha256([SPLIT_FORMAT, reader_name, options,
                            *(f"{k}:{file_sha256(ctx.paths[k])}" for k in source_keys),
                            *([f"listing:{listing}"] if listing else [])])


def load_split(task: TaskSpec, which: str, data_root: str | os.PathLike = "data",
               overrides: dict[str, str] | None = None) -> Split:
    """The task's demonstration pool ("demo") or evaluation set ("eval") as a lazily materialised Split."""
    from flamingo_eval.data.store import cached_table

    ctx = _context(task, which, data_root, overrides)
    reader_name = (task.demo if which == "demo" else task.eval).reader
    reader = READERS.get(reader_name)
    keys = reader.sources(ctx)
    for key in keys:
        _require_file(task, key, ctx.paths[key])
    fingerprint = split_fingerprint(reader_name, ctx, keys, reader.digest(ctx) if hasattr(reader, "digest") else "")

    def parse() -> dict[str, list]:
        return reader.read(ctx).columns

    table, table_dir, _ = cached_table(fingerprint, parse)
    split = Split(f"{task.name}/{which}", fingerprint, table, ctx.paths, task.image_key, table_dir)
    if len(split) == 0:
        raise DataError(f"task {task.name}: the {which} split is empty ({', '.join(str(ctx.paths[k]) for k in keys)})")
    return split


def load_references(task: TaskSpec, data_root: str | os.PathLike = "data",
                    overrides: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The caption references named by the task's ``references`` key, keyed like its sample ids."""
    if task.references is None:
        raise ConfigError(f"{task.source or task.name}: task {task.name} has no 'references' file")
    path = task.data_paths(data_root, overrides)[task.references]
    _require_file(task, task.references, path)
    return load_caption_references(path)
