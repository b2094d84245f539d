"""A cell's items -> the data files the page loads on demand, per trial.

A page opened from disk cannot fetch() JSON, so every data file is a script that registers its payload:
``window.__chunk("data/<cell>/t0/i3.js", {...})``. Per trial of a cell:

- ``summary.js``: ids and scores of all items (what filters, paging and the comparison view need: about
  15 bytes per item, loaded when the cell is opened, never at first view);
- ``search.js``: one lower-case line per item (id, question, output, answer), loaded on the first text search;
- ``i<k>.js``: items ``k*chunk ... (k+1)*chunk - 1`` in full, with a table of the demonstrations they use
  (a demonstration shared by several items in the chunk is written once);
- ``p<k>.js``: the same items' rendered prompts, loaded when a prompt is opened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flamingo_eval.report.cells import Item
from flamingo_eval.report.images import ImageResolver, Thumbnails

CHUNK_ITEMS = 100


def write_script(path: Path, name: str, payload: Any) -> int:
    """``window.__chunk(name, payload);`` -> path; returns the bytes written."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = f"window.__chunk({json.dumps(name)},{body});\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(data)
    return len(data)


def is_wrong(score: float | None) -> bool:
    """No credit at all: VQA accuracy 0, a misclassified meme, a caption with CIDEr 0."""
    return score is not None and score <= 0.0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such values become null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


class TrialWriter:
    """Writes one trial of one cell: ``add`` items in order, then ``close``."""

    def __init__(self, root: Path, base: str, images: Thumbnails, resolver: ImageResolver,
                 chunk_items: int = CHUNK_ITEMS):
        self.root = root  # the folder that becomes the report's data/ folder
        self.base = base  # "<cell>/t<k>", the page's names are data/<base>/...
        self.images = images
        self.resolver = resolver
        self.chunk_items = chunk_items
        self.ids: list[str] = []
        self.scores: list[float | None] = []
        self.search: list[str] = []
        self._items: list[dict] = []
        self._prompts: list[str] = []
        self._demos: list[dict] = []
        self._demo_index: dict[tuple, int] = {}
        self.chunks = 0
        self.bytes = 0
        self.wrong = 0
        self.skipped = 0

    def _name(self, file: str) -> str:
        return f"data/{self.base}/{file}"

    def _image(self, key: str | None) -> str | None:
        return None if key is None else self.images.ref(key, self.resolver)

    def add(self, item: Item) -> None:
        refs = []
        for d in item.demos:
            k = (d.id, d.image, d.text)
            if k not in self._demo_index:
                self._demo_index[k] = len(self._demos)
                demo = {"id": d.id, "key": d.image, "img": self._image(d.image), "text": d.text}
                if not item.chunks_known:
                    demo["unknown"] = True
                self._demos.append(demo)
            refs.append(self._demo_index[k])
        sims = [d.similarity for d in item.demos]
        score = _finite(item.score)
        row = {"id": item.id, "d": refs, "sim": sims if any(s is not None for s in sims) else None,
               "key": item.query_image, "img": self._image(item.query_image), "q": item.query_text,
               "out": item.output, "ans": _finite(item.answer), "refs": item.references, "score": score}
        if not item.chunks_known:
            row["unknown"] = True
        if item.skipped:
            row["skip"] = item.skipped
            self.skipped += 1
        if item.extra:
            row["extra"] = item.extra
        self._items.append(row)
        self._prompts.append(item.prompt)
        self.ids.append(item.id)
        self.scores.append(None if score is None else round(float(score), 4))
        self.wrong += is_wrong(score)
        self.search.append("\t".join([item.id, item.query_text, _text(item.output), _text(item.answer)]).lower())
        if len(self._items) == self.chunk_items:
            self._flush()

    def _flush(self) -> None:
        if not self._items:
            return
        k = self.chunks
        self.bytes += write_script(self.root / self.base / f"i{k}.js", self._name(f"i{k}.js"),
                                   {"demos": self._demos, "items": self._items})
        self.bytes += write_script(self.root / self.base / f"p{k}.js", self._name(f"p{k}.js"),
                                   {"prompts": self._prompts})
        self.chunks += 1
        self._items, self._prompts, self._demos, self._demo_index = [], [], [], {}

    def close(self) -> dict[str, Any]:
        """Write the last chunk, the summary and the search lines; returns what the index says of the trial."""
        self._flush()
        self.bytes += write_script(self.root / self.base / "summary.js", self._name("summary.js"),
                                   {"ids": self.ids, "scores": self.scores, "chunk": self.chunk_items})
        self.bytes += write_script(self.root / self.base / "search.js", self._name("search.js"),
                                   {"lines": self.search})
        return {"dir": f"data/{self.base}", "items": len(self.ids), "chunks": self.chunks, "wrong": self.wrong,
                "skipped": self.skipped, "bytes": self.bytes}
