"""Runs -> cells: one per leaderboard row (model, task, shots, selection), each with its samples per trial.

The leaderboard rows come from ``leaderboard.collect`` and ``with_published`` (the newest result per key,
the published numbers beside it), so the report and ``flamingo-eval leaderboard`` never disagree. A cell's
items are read from its ``.samples.jsonl`` as one normalised dict per line: the demonstrations in prompt
order (id, image key, text, similarity), the query, the raw output, the answer, the references, the score.
Samples written before runs recorded their prompt chunks are rebuilt from the task's data with the same
prompt builder the run used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flamingo_eval.leaderboard import collect, published, with_published
from flamingo_eval.prompt import chunk_records
from flamingo_eval.results import load_result


@dataclass
class Cell:
    """One (model, task, shots, selection): its leaderboard row, result file and samples file (if any)."""

    id: str
    row: dict[str, Any]
    result: dict[str, Any]
    result_path: Path
    samples_path: Path | None

    @property
    def task(self) -> str:
        return self.row["task"]

    @property
    def shots(self) -> int:
        return int(self.row["shots"])

    def seeds(self) -> list[int]:
        return [int(t["seed"]) for t in self.result.get("trials", [])]


def cell_id(row: dict[str, Any]) -> str:
    """A file-name-safe, readable id: model, task, shots and selection."""
    raw = f"{row['model']}__{row['task']}_{row['shots']}shot_{row['selection']}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def samples_path_of(result: dict[str, Any], result_path: Path) -> Path | None:
    """The samples file a result names (beside it), or None when it is not there."""
    name = result.get("samples_file") or f"{result_path.name.removesuffix('.json')}.samples.jsonl"
    path = result_path.parent / name
    return path if path.is_file() else None


def collect_cells(paths: list[str]) -> list[Cell]:
    """The leaderboard of the given runs (with published numbers) as cells, in leaderboard order."""
    rows = with_published(collect(paths), published())
    cells, seen = [], set()
    for row in rows:
        cid = base = cell_id(row)
        k = 1
        while cid in seen:  # two spec files with one stem
            k += 1
            cid = f"{base}-{k}"
        seen.add(cid)
        path = Path(row["file"])
        result = load_result(path)
        cells.append(Cell(cid, {k: v for k, v in row.items() if not k.startswith("_")}, result, path,
                          samples_path_of(result, path)))
    return cells


@dataclass
class Demo:
    id: str
    image: str | None  # image key; None for a text-only demonstration (0 shots)
    text: str
    similarity: float | None = None
    more_images: list[str] = field(default_factory=list)  # keys of a chunk's second and later images


@dataclass
class Item:
    """One sample line, normalised: what the report shows for an item of one trial."""

    seed: int
    id: str
    demos: list[Demo]
    query_image: str | None
    query_text: str
    output: Any
    answer: Any
    references: Any
    score: float | None
    prompt: str
    skipped: str | None = None
    chunks_known: bool = True  # False: neither recorded nor rebuilt, so images and texts are unknown
    extra: dict[str, Any] = field(default_factory=dict)
    query_more_images: list[str] = field(default_factory=list)


class PromptRebuilder:
    """Chunks for samples that did not record them: the task's splits re-read from a data root and the run's
    prompt builder applied to the recorded demonstration ids (so the text is what the model was given)."""

    def __init__(self, task_name: str, data_root: str | Path):
        from flamingo_eval.data import load_split
        from flamingo_eval.task import load_task

        self.task = load_task(task_name)
        self.pool = load_split(self.task, "demo", data_root)
        self.eval = load_split(self.task, "eval", data_root)
        self._cache: dict[tuple[str, str], Any] = {}

    def _sample(self, which: str, sample_id: str):
        key = (which, sample_id)
        if key not in self._cache:
            split = self.pool if which == "demo" else self.eval
            self._cache[key] = split[split.index_of(sample_id)]
            if len(self._cache) > 200_000:
                self._cache.clear()
        return self._cache[key]

    def chunks(self, item_id: str, demo_ids: list[str], shots: int) -> list[dict[str, Any]]:
        from flamingo_eval.prompt_builder import build_prompt

        prompt = build_prompt(self.task, [self._sample("demo", d) for d in demo_ids], self._sample("eval", item_id),
                              demo_images=shots > 0)
        return chunk_records(prompt)


def normalise(line: dict[str, Any], chunks: list[dict[str, Any]] | None) -> Item:
    """A sample line (and its prompt chunks, recorded or rebuilt) -> Item."""
    demo_ids = [str(d) for d in line.get("demos") or []]
    sims = list(line.get("similarities") or [])
    sims = (sims + [None] * len(demo_ids))[:len(demo_ids)]
    if chunks and len(chunks) == len(demo_ids) + 1:
        demos = [Demo(d, c.get("image"), c.get("text", ""), s, _more_images(c))
                 for d, c, s in zip(demo_ids, chunks[:-1], sims, strict=True)]
        query_image, query_text, known = chunks[-1].get("image"), chunks[-1].get("text", ""), True
        query_more = _more_images(chunks[-1])
    else:
        demos = [Demo(d, None, "", s) for d, s in zip(demo_ids, sims, strict=True)]
        query_image, query_text, known = None, "", False
        query_more = []
    fields = {"seed", "id", "demos", "similarities", "chunks", "prompt", "output", "answer", "references", "score",
              "skipped"}
    return Item(seed=int(line.get("seed", 0)), id=str(line["id"]), demos=demos, query_image=query_image,
                query_text=query_text, output=line.get("output"), answer=line.get("answer"),
                references=line.get("references"), score=line.get("score"), prompt=line.get("prompt", ""),
                skipped=line.get("skipped"), chunks_known=known,
                extra={k: v for k, v in line.items() if k not in fields}, query_more_images=query_more)


def _more_images(chunk: dict[str, Any]) -> list[str]:
    """A recorded chunk's images after its first (``images`` is written only for chunks with several)."""
    return [str(k) for k in (chunk.get("images") or [])[1:]]


@dataclass
class ReadStats:
    lines: int = 0
    rebuilt: int = 0  # items whose chunks came from the data files
    without_chunks: int = 0  # items shown with demonstration ids only
    bad_lines: int = 0
    notes: list[str] = field(default_factory=list)


def iter_items(cell: Cell, data_root: str | Path | None, stats: ReadStats) -> Iterator[Item]:
    """The cell's sample lines as Items, in file order (trial after trial, items in evaluation order)."""
    if cell.samples_path is None:
        return
    rebuilder: PromptRebuilder | None | bool = None  # None: not tried yet; False: unavailable
    with open(cell.samples_path, encoding="utf-8") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                if not isinstance(line, dict) or "id" not in line:
                    raise ValueError("not a sample object")
            except ValueError:
                stats.bad_lines += 1
                continue
            stats.lines += 1
            chunks = line.get("chunks")
            if chunks is None:
                if rebuilder is None:
                    rebuilder = _rebuilder(cell, data_root, stats)
                if rebuilder:
                    try:
                        chunks = rebuilder.chunks(str(line["id"]), [str(d) for d in line.get("demos") or []],
                                                  cell.shots)
                        stats.rebuilt += 1
                    except (KeyError, ValueError, OSError) as e:
                        stats.notes.append(f"{cell.samples_path}: item {line['id']}: prompt not rebuilt ({e})")
                        chunks = None
                if chunks is None:
                    stats.without_chunks += 1
            yield normalise(line, chunks)


def _rebuilder(cell: Cell, data_root: str | Path | None, stats: ReadStats) -> PromptRebuilder | bool:
    from flamingo_eval.errors import UserError

    root = data_root if data_root is not None else "data"
    try:
        return PromptRebuilder(cell.task, root)
    except UserError as e:
        note = (f"{cell.task}: samples written before runs recorded their prompt chunks, and the task's data is "
                f"not readable under {root} ({e}); its demonstrations are shown by id only (pass --data-root)")
        if note not in stats.notes:
            stats.notes.append(note)
        return False
