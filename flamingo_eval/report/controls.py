"""The report's "controls" panel: a plain run beside each control run of the same cell (model, task, shots,
selection), from their result and samples files: score, change, and how many items changed.

An item changed when its answer did (for classification, its predicted option, P >= 0.5), or its score did.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flamingo_eval.report.cells import Cell


def base_selection(cell: Cell) -> str:
    """The plain run's selection (``random``, ``rices``) of a cell, a control run's or the plain run's own."""
    selection = cell.result.get("selection", {})
    return selection.get("base", selection.get("selection", cell.row["selection"]))


def _decided(answer: Any) -> Any:
    return answer >= 0.5 if isinstance(answer, float) else answer


def _outcomes(path: Path | None) -> dict[tuple, tuple]:
    """(seed, id) -> (answer as decided, score), from a samples file (empty if none or unreadable lines)."""
    out: dict[tuple, tuple] = {}
    if path is None:
        return out
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        out[(row.get("seed"), row.get("id"))] = (_decided(row.get("answer")), row.get("score"))
    return out


def control_panels(cells: Iterable[Cell]) -> dict[str, list[dict[str, Any]]]:
    """For each cell of a group that holds a plain run and at least one control run, the group's panel: the
    plain run first, then each control with its score, change and changed items."""
    groups: dict[tuple, list[tuple[str, Cell]]] = {}
    for cell in cells:
        groups.setdefault((cell.row["model"], cell.task, cell.shots, base_selection(cell)), []).append((cell.id, cell))
    panels: dict[str, list[dict[str, Any]]] = {}
    for members in groups.values():
        plain = [(cid, c) for cid, c in members if "control" not in c.result.get("selection", {})]
        controls = [(cid, c) for cid, c in members if "control" in c.result.get("selection", {})]
        if len(plain) != 1 or not controls:
            continue
        pid, pcell = plain[0]
        before = _outcomes(pcell.samples_path)
        rows = [{"cell": pid, "selection": pcell.row["selection"], "score": pcell.row["mean"], "change": 0.0,
                 "changed_answers": 0, "changed_scores": 0, "compared": len(before)}]
        for cid, cell in sorted(controls, key=lambda m: m[1].row["selection"]):
            after = _outcomes(cell.samples_path)
            shared = before.keys() & after.keys()
            rows.append({"cell": cid, "selection": cell.row["selection"], "score": cell.row["mean"],
                         "change": cell.row["mean"] - pcell.row["mean"],
                         "changed_answers": sum(before[k][0] != after[k][0] for k in shared),
                         "changed_scores": sum(before[k][1] != after[k][1] for k in shared),
                         "compared": len(shared)})
        for cid, _ in members:
            panels[cid] = rows
    return panels
