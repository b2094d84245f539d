"""HatefulMemes JSON-lines files (``train.jsonl``, ``dev_seen.jsonl``, ...).

Each line is ``{"id": 42953, "img": "img/42953.png", "label": 0, "text": "..."}``; the image is
<images dir>/<img>. Options: ``annotations`` (data key of the jsonl), ``images`` (data key of the folder
that holds ``img/``). Note ids lose leading zeros ("id": 1235 with "img/01235.png"), so the file name
comes from ``img``, never from ``id``.
"""

from __future__ import annotations

from flamingo_eval.data.jsonio import field, iter_jsonl
from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import DataError

OPTIONS = ("annotations", "images")


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    return [ctx.data_key("annotations")]


def read(ctx: ReadContext) -> Rows:
    path = ctx.path("annotations")
    image_dir = ctx.data_key("images")
    rows = Rows(path)
    for lineno, rec in iter_jsonl(path):
        where = f"line {lineno}"
        label = field(rec, "label", path, where)
        if label not in (0, 1) or isinstance(label, bool):
            raise DataError(f"{path}: {where} has label {label!r}; expected 0 or 1")
        rows.add(str(field(rec, "id", path, where)), image_dir, str(field(rec, "img", path, where)),
                 text=str(field(rec, "text", path, where)), label=int(label))
    if not rows:
        raise DataError(f"{path}: no memes")
    return rows
