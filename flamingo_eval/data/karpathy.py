"""Karpathy caption splits (``dataset_coco.json``, ``dataset_flickr30k.json``).

Options: ``annotations`` (data key), ``split`` (e.g. "train"; a list selects several; "restval" is its own
split, not part of "train"), ``id`` ("cocoid" or "filename_stem"), ``images`` (a data key, or a mapping from
the entry's ``filepath`` such as "train2014" to a data key). ``answers`` = every sentence's ``raw`` string.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from flamingo_eval.data.jsonio import field, list_field, load_json
from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import ConfigError, DataError

OPTIONS = ("annotations", "split", "id", "images")
ID_KINDS = ("cocoid", "filename_stem")


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    return [ctx.data_key("annotations")]


def _image_dirs(ctx: ReadContext) -> str | dict[str, str]:
    images = ctx.option("images", kinds=(str, dict))
    if isinstance(images, str):
        return ctx.data_key("images")
    return {str(fp): ctx.data_key("images", key) for fp, key in images.items()}


def read(ctx: ReadContext) -> Rows:
    path = ctx.path("annotations")
    split = ctx.option("split", kinds=(str, list))
    wanted = {split} if isinstance(split, str) else {str(s) for s in split}
    id_kind = ctx.option("id", "cocoid")
    if id_kind not in ID_KINDS:
        raise ConfigError(f"{ctx.where()}: reader option 'id' must be one of {', '.join(ID_KINDS)}, not {id_kind!r}")
    dirs = _image_dirs(ctx)

    rows = Rows(path)
    present: set[str] = set()
    for i, entry in enumerate(list_field(load_json(path), "images", path)):
        where = f"images[{i}]"
        entry_split = field(entry, "split", path, where)
        present.add(str(entry_split))
        if entry_split not in wanted:
            continue
        filename = field(entry, "filename", path, where)
        if id_kind == "cocoid":
            sample_id = str(field(entry, "cocoid", path, where))
        else:
            sample_id = PurePosixPath(filename).stem
        if isinstance(dirs, str):
            image_dir = dirs
        else:
            filepath = field(entry, "filepath", path, where)
            if filepath not in dirs:
                raise DataError(f"{path}: {where} has filepath {filepath!r}, which the task's 'images' mapping "
                                f"does not cover (known: {', '.join(sorted(dirs))})")
            image_dir = dirs[filepath]
        sentences = field(entry, "sentences", path, where)
        if not isinstance(sentences, list) or not sentences:
            raise DataError(f"{path}: {where} has no sentences")
        answers = [str(field(s, "raw", path, f"{where}.sentences[{j}]")) for j, s in enumerate(sentences)]
        rows.add(sample_id, image_dir, filename, answers=answers)
    if not rows:
        raise DataError(f"{path}: no images with split {split!r} (splits present: {', '.join(sorted(present)) or 'none'})")
    return rows
