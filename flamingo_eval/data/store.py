"""Parsed splits on disk: one ``datasets`` (Arrow) table per fingerprint under cache_dir("splits").

A table is written to a temporary folder and renamed into place, so concurrent processes (distributed
ranks) never read a half-written split; whoever renames second simply uses the first one's table.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from flamingo_eval.cache import cache_dir


def _features():
    import datasets

    list_of = getattr(datasets, "List", None) or datasets.Sequence
    s = datasets.Value("string")
    return datasets.Features({"id": s, "image_dir": s, "image_file": s, "question": s,
                              "answers": list_of(s), "text": s, "label": datasets.Value("int64"),
                              "more_files": list_of(s)})


def split_dir(fingerprint: str) -> Path:
    return cache_dir("splits", fingerprint)


def load_table(path: Path):
    """A stored split's Arrow table, memory-mapped."""
    import datasets

    return datasets.load_from_disk(str(path)).data.table


def _save(columns: dict[str, list], path: Path):
    import datasets

    ds = datasets.Dataset.from_dict(columns, features=_features())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        ds.save_to_disk(str(tmp))
    finally:
        if bars:
            datasets.enable_progress_bars()
    if path.exists() and not (path / "state.json").is_file():
        shutil.rmtree(path, ignore_errors=True)  # a damaged entry
    try:
        os.replace(tmp, path)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)


def cached_table(fingerprint: str, parse: Callable[[], dict[str, list]]):
    """The split's Arrow table (memory-mapped), parsing and storing it only if no valid copy is cached.

    Returns (table, folder, parsed) where ``parsed`` says whether ``parse`` ran.
    """
    path = split_dir(fingerprint)
    if (path / "state.json").is_file():
        try:
            return load_table(path), path, False
        except Exception:  # a damaged cache entry is rebuilt, never fatal
            shutil.rmtree(path, ignore_errors=True)
    columns = parse()
    _save(columns, path)
    return load_table(path), path, True
