"""Published numbers from ``results/reference/``: one CSV per source, read in a fixed precedence.

Several sources can report the same (model, task, shots, selection): the Idefics2 paper quotes OpenFlamingo-9B,
Flamingo-9B and Idefics-9B at 8 shots, which their own publications also report. Nothing is dropped: a key's rows
are kept in ``SOURCES`` order, the first is the one a comparison shows, the others ride along with it. The order is
each model's own publication first (OpenFlamingo paper, then the Idefics model card, then the Idefics2 paper that
quotes both), so a figure is always shown as its authors published it. This module is the one reader of these
files: the leaderboard and any report call ``published()``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "results" / "reference"
# Precedence, first wins; each name is a CSV in REFERENCE_DIR and the short label shown for its figures.
SOURCES: tuple[str, ...] = ("openflamingo-paper", "idefics-model-card", "idefics2-paper")
COLUMNS = ("model", "task", "shots", "selection", "score", "std", "trials", "source")

Key = tuple[str, str, int, str]


def key_of(row: dict) -> Key:
    return (row["model"], row["task"], int(row["shots"]), row["selection"])


def read_source(path: Path) -> list[dict]:
    """One source's rows, checked: the expected columns, integer shots, a score, one row per key.

    Values stay as written (strings) apart from ``shots``; each row gains ``label``, the file's stem, so a figure
    can always be traced to its file.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        rows, seen = [], set()
        for line, row in enumerate(reader, start=2):
            if not row["score"]:
                raise ValueError(f"{path}:{line}: no score")
            row = {**row, "shots": int(row["shots"]), "label": path.stem}
            if key_of(row) in seen:
                raise ValueError(f"{path}:{line}: {key_of(row)} appears twice")
            seen.add(key_of(row))
            rows.append(row)
    return rows


def published_all(directory: Path = REFERENCE_DIR, sources: Sequence[str] = SOURCES) -> dict[Key, list[dict]]:
    """Every published row per key, in precedence order."""
    table: dict[Key, list[dict]] = {}
    for name in sources:
        for row in read_source(directory / f"{name}.csv"):
            table.setdefault(key_of(row), []).append(row)
    return table


def published(directory: Path = REFERENCE_DIR, sources: Sequence[str] = SOURCES) -> dict[Key, dict]:
    """(model, task, shots, selection) -> the first source's row (``score``, ``std``, ``trials``, ``source``,
    ``label``, all strings but shots), with ``others``: the later sources' rows for the same key, in order."""
    return {key: {**rows[0], "others": rows[1:]} for key, rows in published_all(directory, sources).items()}


def others_text(row: dict) -> str:
    """A row's other published figures as ``"96.3 (idefics2-paper); ..."``, for one CSV cell."""
    return "; ".join(f"{o['score']} ({o['label']})" for o in row.get("others", ()))
