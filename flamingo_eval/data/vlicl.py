"""VL-ICL Bench's image-to-text files (``<data-root>/vlicl/<task>/{query,support}.json``).

Each file is a JSON list of records; a record's ``image`` is a list of paths relative to ``vlicl/`` (two
for the interleaved and matching tasks), with its ``question`` and ``answer``. Options: ``annotations`` (data
key of the JSON), ``images`` (data key of the ``vlicl/`` folder) and ``items``, which says what an item is:

- ``records``: each record (ids ``0, 1, ...`` in file order). Operator induction's support answers are
  lists of three results (for ``+``, ``-``, ``x``) and stay three answers; a query's ``operator`` picks one
  where its answer is such a list.
- ``pairs``: matching MiniImageNet's support, whose records hold a ``same`` and a ``diff`` example
  (ids ``<i>/same``, ``<i>/diff``).
- ``class_support``: fast open MiniImageNet's demonstrations, which its ``query.json`` holds per query and
  class (``support[<class>]["images"]``; ids ``<query>/<class>/<k>``, question ``This is a``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flamingo_eval.data.jsonio import field, load_json
from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import ConfigError, DataError

OPTIONS = ("annotations", "images", "items")
ITEMS = ("records", "pairs", "class_support")
OPERATOR_INDEX = {"+": 0, "-": 1, "x": 2}  # VL-ICL's order of the three results
OPEN_MI_QUESTION = "This is a"


def load_records(path: Path) -> list[dict[str, Any]]:
    """The file's records; anything but a list of objects is a DataError naming the file."""
    doc = load_json(path)
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise DataError(f"{path}: expected a JSON list of objects (VL-ICL's query.json / support.json)")
    if not doc:
        raise DataError(f"{path}: no records")
    return doc


def image_paths(record: dict, path: Path, where: str) -> list[str]:
    """A record's image paths (a list, or one path as a string), at least one."""
    images = field(record, "image", path, where)
    images = [images] if isinstance(images, str) else images
    if not isinstance(images, list) or not images or not all(isinstance(i, str) and i for i in images):
        raise DataError(f"{path}: {where} has no image paths in 'image'")
    return images


def answer_texts(record: dict, path: Path, where: str) -> list[str]:
    """The record's answer(s) as strings (VL-ICL's ``format_answer`` writes numbers with ``str``)."""
    answer = field(record, "answer", path, where)
    if isinstance(answer, list):
        if not answer:
            raise DataError(f"{path}: {where} has an empty 'answer' list")
        op = record.get("operator")
        if op is not None:
            if op not in OPERATOR_INDEX or len(answer) != len(OPERATOR_INDEX):
                raise DataError(f"{path}: {where} has operator {op!r} and answers {answer!r}")
            return [str(answer[OPERATOR_INDEX[op]])]
        return [str(a) for a in answer]
    return [str(answer)]


def _add(rows: Rows, sample_id: str, image_dir: str, record: dict, path: Path, where: str,
         question: str | None = None) -> None:
    images = image_paths(record, path, where)
    q = question if question is not None else str(field(record, "question", path, where))
    rows.add(sample_id, image_dir, images[0], question=q, answers=answer_texts(record, path, where),
             more_files=images[1:])


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    return [ctx.data_key("annotations")]


def read(ctx: ReadContext) -> Rows:
    path = ctx.path("annotations")
    image_dir = ctx.data_key("images")
    items = ctx.option("items", "records")
    if items not in ITEMS:
        raise ConfigError(f"{ctx.where()}: reader option 'items' must be one of {', '.join(ITEMS)}, not {items!r}")
    rows = Rows(path)
    for i, record in enumerate(load_records(path)):
        where = f"record {i}"
        if items == "records":
            _add(rows, str(i), image_dir, record, path, where)
        elif items == "pairs":
            for part in ("same", "diff"):
                _add(rows, f"{i}/{part}", image_dir, field(record, part, path, where), path, f"{where}.{part}")
        else:
            for cls, entry in class_support(record, path, where).items():
                for k, image in enumerate(entry):
                    rows.add(f"{i}/{cls}/{k}", image_dir, image, question=OPEN_MI_QUESTION, answers=[cls])
    return rows


def class_support(record: dict, path: Path, where: str) -> dict[str, list[str]]:
    """Fast open MiniImageNet: a query's demonstration images per (nonsense) class name."""
    support = field(record, "support", path, where)
    if not isinstance(support, dict) or not support:
        raise DataError(f"{path}: {where} has no 'support' mapping of classes")
    out = {}
    for cls, entry in support.items():
        images = field(entry, "images", path, f"{where}.support[{cls!r}]")
        if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
            raise DataError(f"{path}: {where}.support[{cls!r}] has no list of image paths in 'images'")
        out[str(cls)] = images
    return out
