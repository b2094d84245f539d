"""``flamingo-eval report``: a static site over result files, opened from disk, no server and no network.

Modules, one job each: ``cells`` reads runs into cells (one per leaderboard row) and their items, ``images``
resolves image keys and makes thumbnails, ``chunks`` writes a cell's items as data scripts the page loads on
demand, ``site`` writes the folder (page, assets, first-view index, PNG), ``headless`` drives Chromium for the
tests and the bench. ``assets/`` holds the page itself (index.html, app.js, style.css: vanilla JS, no build).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flamingo_eval.errors import UserError
from flamingo_eval.report.cells import Cell, ReadStats, collect_cells, iter_items
from flamingo_eval.report.chunks import CHUNK_ITEMS, TrialWriter
from flamingo_eval.report.controls import base_selection, control_panels
from flamingo_eval.report.images import ImageResolver, ImageStats, Thumbnails
from flamingo_eval.report.site import (
    PLOT,
    copy_assets,
    first_view_bytes,
    folder_size,
    prepare_out_dir,
    publish_data,
    write_index,
)
from flamingo_eval.results import now_iso

__all__ = ["ReportSummary", "build_report"]


@dataclass
class ReportSummary:
    out: Path
    cells: int
    items: int
    images: ImageStats
    bytes: int
    files: int
    first_view_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def index_html(self) -> Path:
        return self.out / "index.html"


def _num(value: Any) -> float | None:
    """Published numbers come from a CSV: '' means none."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _row(cell: Cell) -> dict[str, Any]:
    r = cell.row
    return {"cell": cell.id, "model": r["model"], "task": r["task"], "shots": int(r["shots"]),
            "selection": r["selection"], "metric": r["metric"], "mean": r["mean"], "std": r["std"],
            "trials": r["trials"], "n": r["n"], "published": _num(r.get("published")),
            "published_std": _num(r.get("published_std")), "flamingo_9b": _num(r.get("flamingo_9b")),
            "published_source": r.get("published_source", ""), "published_other": r.get("published_other", ""),
            "file": str(r["file"])}


def _expected_items(cell: Cell) -> int:
    return sum(int(t.get("n", 0)) + int(t.get("skipped", 0)) for t in cell.result.get("trials", [])) \
        if cell.samples_path else 0


def _write_cell(cell: Cell, scratch: Path, thumbs: Thumbnails, resolver: ImageResolver, data_root: str | None,
                stats: ReadStats, chunk_items: int, bar: Any) -> list[dict[str, Any]]:
    """All trials of a cell; trials in the result's seed order (a seed only the samples name comes last)."""
    order = {s: i for i, s in enumerate(cell.seeds())}
    shared = base_selection(cell) == "random"  # a fixed query set per seed: few distinct demonstrations
    writers: dict[int, TrialWriter] = {}
    for item in iter_items(cell, data_root, stats):
        if item.seed not in writers:
            index = order.setdefault(item.seed, len(order))
            writers[item.seed] = TrialWriter(scratch, f"{cell.id}/t{index}", thumbs, resolver, chunk_items,
                                             shared_demos=shared)
        writers[item.seed].add(item)
        bar.update(1)
    scores = {int(t["seed"]): t for t in cell.result.get("trials", [])}
    trials = []
    for seed, writer in sorted(writers.items(), key=lambda kv: order[kv[0]]):
        t = scores.get(seed, {})
        trials.append({"seed": seed, "score": t.get("score"), "n": t.get("n"), **writer.close()})
    return trials


def _options(task: str) -> list[str] | None:
    """A classification task's options (HatefulMemes: no, yes), so the page can name what was ranked."""
    from flamingo_eval.task import load_task

    try:
        options = load_task(task).options
    except UserError:
        return None
    return list(options) if options else None


def _cell_entry(cell: Cell, trials: list[dict[str, Any]]) -> dict[str, Any]:
    kind = cell.result.get("task", {}).get("kind")
    return {"model": cell.row["model"], "task": cell.task, "shots": cell.shots, "selection": cell.row["selection"],
            "metric": cell.row["metric"], "kind": kind,
            "options": _options(cell.task) if kind == "classification" else None,
            "mean": cell.row["mean"], "std": cell.row["std"], "n": cell.row["n"], "trials": trials,
            "samples": str(cell.samples_path) if cell.samples_path else None,
            "selection_info": cell.result.get("selection", {}),
            "baselines": cell.result.get("baselines")}


def build_report(paths: list[str], out: str | Path, data_root: str | None = None, link_images: bool = False,
                 progress: bool = True, chunk_items: int = CHUNK_ITEMS) -> ReportSummary:
    """Write the report of the runs under ``paths`` to ``out``: index.html plus assets, data scripts, thumbnails."""
    from flamingo_eval.leaderboard import plot

    started = time.time()
    out = Path(out)
    cells = collect_cells(paths)
    if not cells:
        raise UserError(f"no result files under {', '.join(paths)}")
    scratch = prepare_out_dir(out)
    thumbs = Thumbnails(out, link=link_images)
    resolvers: dict[str, ImageResolver] = {}
    stats = ReadStats()
    index_cells: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    from tqdm import tqdm

    bar = tqdm(total=sum(map(_expected_items, cells)), desc="report items", unit="item", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, mininterval=1.0)
    try:
        for cell in cells:
            recorded = cell.result.get("data_paths")
            rkey = json.dumps(recorded, sort_keys=True)
            resolver = resolvers.setdefault(rkey, ImageResolver(recorded, data_root))
            trials = _write_cell(cell, scratch, thumbs, resolver, data_root, stats, chunk_items, bar)
            index_cells[cell.id] = _cell_entry(cell, trials)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        bar.close()
    for cid, panel in control_panels(cells).items():
        index_cells[cid]["controls"] = panel
    for cell in cells:
        if cell.samples_path is None:
            notes.append(f"{cell.result_path}: no samples file beside it; the leaderboard shows it, the sample "
                         f"browser cannot")
    image_stats = thumbs.make(progress=progress)
    if image_stats.missing:
        notes.append(f"{image_stats.missing} of {image_stats.images} images not found (e.g. "
                     f"{image_stats.missing_examples[0]}); pass --data-root where the data now lives")
    if image_stats.failed:
        notes.append(f"{image_stats.failed} images could not be decoded (e.g. {image_stats.failed_examples[0]})")
    if stats.rebuilt:
        notes.append(f"{stats.rebuilt} items' prompts were rebuilt from the task data (their samples predate "
                     f"recorded prompt chunks)")
    if stats.bad_lines:
        notes.append(f"{stats.bad_lines} unreadable sample lines were skipped")
    notes.extend(stats.notes[:20])
    rows = [_row(c) for c in cells]
    plot_rows = [c.row for c in cells]
    plot(plot_rows, out / PLOT)
    write_index(scratch, {
        "generated": now_iso(), "runs": [str(p) for p in paths], "rows": rows, "cells": index_cells,
        "images": asdict(image_stats), "notes": notes, "plot": PLOT, "chunk": chunk_items,
    })
    publish_data(out, scratch)
    copy_assets(out)
    size, files = folder_size(out)
    items = sum(t["items"] for c in index_cells.values() for t in c["trials"])
    return ReportSummary(out, len(cells), items, image_stats, size, files, first_view_bytes(out),
                         time.time() - started, notes)
