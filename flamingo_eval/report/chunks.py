"""A cell's items -> the data files the page loads on demand, per trial.

A page opened from disk cannot fetch() JSON, so every data file is a script that registers its payload:
``window.__chunk("data/<cell>/t0/i3.js", {...})``. Per trial of a cell:

- ``summary.js``: ids and scores of all items (what filters, paging and the comparison view need: about
  15 bytes per item, loaded when the cell is opened, never at first view);
- ``search.js``: one lower-case line per item (id, question, output, answer), loaded on the first text search;
- ``demos.js``: random demonstrations come from a fixed query set per seed (2,048 items), so a trial's are
  written once, here, and items name them by number; RICES draws from the whole pool, so its demonstrations are
  written in the chunks that use them (a demonstration shared by items of one chunk once);
- ``i<k>.js``: items ``k*chunk ... (k+1)*chunk - 1`` in full;
- ``p<k>.js``: the same items' rendered prompts, as the text between the chunks' texts (a handful of distinct
  strings such as ``<|endofchunk|>\n<image>``), rebuilt by the page when a prompt is opened.

An image is named by its key; the page finds its thumbnail at ``images.default_url(key)``, so only missing
images (``img: null``), linked originals and the rare other path are written out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flamingo_eval.report.cells import Demo, Item
from flamingo_eval.report.images import ImageResolver, Thumbnails, default_url

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


def prompt_glue(prompt: str, texts: list[str]) -> list[str] | None:
    """The strings around the chunks' texts in the rendered prompt, so that glue[0] + texts[0] + glue[1] + ...
    + texts[-1] + glue[-1] == prompt; None when the texts are not in the prompt in order."""
    pos, glue = 0, []
    for text in texts:
        at = prompt.find(text, pos)
        if at < 0:
            return None
        glue.append(prompt[pos:at])
        pos = at + len(text)
    glue.append(prompt[pos:])
    return glue


SHARED_MAX = 8192  # a trial's shared demonstration table never grows past this; the rest go in the chunks


class TrialWriter:
    """Writes one trial of one cell: ``add`` items in order, then ``close``."""

    def __init__(self, root: Path, base: str, images: Thumbnails, resolver: ImageResolver,
                 chunk_items: int = CHUNK_ITEMS, shared_demos: bool = False):
        self.root = root  # the folder that becomes the report's data/ folder
        self.base = base  # "<cell>/t<k>", the page's names are data/<base>/...
        self.images = images
        self.resolver = resolver
        self.chunk_items = chunk_items
        self.shared_demos = shared_demos
        self.ids: list[str] = []
        self.scores: list[float | None] = []
        self.search: list[str] = []
        self._shared: list[dict] = []
        self._shared_index: dict[tuple, int] = {}
        self._items: list[dict] = []
        self._prompts: list = []
        self._glue: dict[str, int] = {}
        self._demos: list[dict] = []
        self._demo_index: dict[tuple, int] = {}
        self.chunks = 0
        self.bytes = 0
        self.wrong = 0
        self.skipped = 0

    def _name(self, file: str) -> str:
        return f"data/{self.base}/{file}"

    def _image(self, entry: dict, key: str | None) -> None:
        """Sets ``img`` where the page cannot derive it from the key: missing (null), linked, or elsewhere."""
        if key is None:
            return
        url = self.images.ref(key, self.resolver)
        if url is None or url != default_url(key):
            entry["img"] = url

    def _more(self, entry: dict, keys: list[str]) -> None:
        """A chunk's second and later images (VL-ICL's pairs): ``more`` = [{key, img?}], only when there are any."""
        if keys:
            more = []
            for key in keys:
                m = {"key": key}
                self._image(m, key)
                more.append(m)
            entry["more"] = more

    def _demo(self, d: Demo, known: bool) -> int:
        """The demonstration's number: >= 0 in the trial's table, -1 - i for entry i of the chunk's."""
        k = (d.id, d.image, d.text, tuple(d.more_images))
        if k in self._shared_index:
            return self._shared_index[k]
        if k in self._demo_index:
            return -1 - self._demo_index[k]
        entry = {"id": d.id, "key": d.image, "text": d.text}
        self._image(entry, d.image)
        self._more(entry, d.more_images)
        if not known:
            entry["unknown"] = True
        if self.shared_demos and len(self._shared) < SHARED_MAX:
            self._shared_index[k] = len(self._shared)
            self._shared.append(entry)
            return self._shared_index[k]
        self._demo_index[k] = len(self._demos)
        self._demos.append(entry)
        return -1 - self._demo_index[k]

    def add(self, item: Item) -> None:
        refs = [self._demo(d, item.chunks_known) for d in item.demos]
        sims = [d.similarity for d in item.demos]
        score = _finite(item.score)
        row = {"id": item.id, "d": refs, "sim": sims if any(s is not None for s in sims) else None,
               "key": item.query_image, "q": item.query_text, "out": item.output, "ans": _finite(item.answer),
               "refs": item.references, "score": score}
        self._image(row, item.query_image)
        self._more(row, item.query_more_images)
        if not item.chunks_known:
            row["unknown"] = True
        if item.skipped:
            row["skip"] = item.skipped
            self.skipped += 1
        if item.extra:
            row["extra"] = item.extra
        self._items.append(row)
        glue = prompt_glue(item.prompt, [d.text for d in item.demos] + [item.query_text]) if item.chunks_known \
            else None
        self._prompts.append(item.prompt if glue is None else [self._glue.setdefault(g, len(self._glue)) for g in glue])
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
                                   {"glue": list(self._glue), "prompts": self._prompts})
        self.chunks += 1
        self._items, self._prompts, self._glue, self._demos, self._demo_index = [], [], {}, [], {}

    def close(self) -> dict[str, Any]:
        """Write the last chunk, the summary, the shared demonstrations and the search lines; returns what the
        index says of the trial."""
        self._flush()
        self.bytes += write_script(self.root / self.base / "summary.js", self._name("summary.js"),
                                   {"ids": self.ids, "scores": self.scores, "chunk": self.chunk_items})
        self.bytes += write_script(self.root / self.base / "search.js", self._name("search.js"),
                                   {"lines": self.search})
        demos = None
        if self._shared:
            demos = self._name("demos.js")
            self.bytes += write_script(self.root / self.base / "demos.js", demos, {"demos": self._shared})
        return {"dir": f"data/{self.base}", "items": len(self.ids), "chunks": self.chunks, "wrong": self.wrong,
                "skipped": self.skipped, "bytes": self.bytes, "demos": demos}
