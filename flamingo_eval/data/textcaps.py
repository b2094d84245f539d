"""TextCaps 0.1 (``TextCaps_0.1_{train,val}.json``): ``{"dataset_type", "dataset_name", "dataset_version",
"data": [...]}`` with one entry per caption.

Entries of one ``image_id`` become one item (id ``image_id``); its answers are the entry's
``reference_strs`` (every caption of the image), or its entries' ``caption_str`` in file order where a file
lacks them. The image is ``<images>/<basename of image_path>`` (the TextVQA ``train_images`` folder holds
TextCaps' train and val images), ``<image_id>.jpg`` without an ``image_path``. Options: ``annotations``,
``images`` (data keys).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from flamingo_eval.data.jsonio import field, list_field, load_json
from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import DataError

OPTIONS = ("annotations", "images")


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    return [ctx.data_key("annotations")]


def read(ctx: ReadContext) -> Rows:
    path = ctx.path("annotations")
    image_dir = ctx.data_key("images")
    files: dict[str, str] = {}
    refs: dict[str, list[str]] = {}
    captions: dict[str, list[str]] = {}
    for i, entry in enumerate(list_field(load_json(path), "data", path)):
        where = f"data[{i}]"
        image_id = str(field(entry, "image_id", path, where))
        if image_id not in files:
            image_path = entry.get("image_path") if isinstance(entry, dict) else None
            files[image_id] = PurePosixPath(image_path).name if image_path else f"{image_id}.jpg"
        if "reference_strs" in entry and image_id not in refs:
            strs = entry["reference_strs"]
            if not isinstance(strs, list) or not strs:
                raise DataError(f"{path}: {where} has an empty or malformed 'reference_strs'")
            refs[image_id] = [str(s) for s in strs]
        if "caption_str" in entry:
            captions.setdefault(image_id, []).append(str(entry["caption_str"]))
    rows = Rows(path)
    for image_id, image_file in files.items():
        answers = refs.get(image_id) or captions.get(image_id)
        if not answers:
            raise DataError(f"{path}: image {image_id} has neither 'reference_strs' nor 'caption_str'")
        rows.add(image_id, image_dir, image_file, answers=answers)
    if not rows:
        raise DataError(f"{path}: no entries in 'data'")
    return rows
