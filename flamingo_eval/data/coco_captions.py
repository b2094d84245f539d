"""Captions in COCO's format, read as a split (NoCaps' ``nocaps_val_4500_captions.json``).

``images[]`` (``id``, ``file_name``; NoCaps adds ``domain``) and ``annotations[]`` (``image_id``,
``caption``): one item per image, id ``str(id)``, its captions in file order as answers. Options:
``annotations`` (data key of the JSON), ``images`` (data key of the folder holding ``file_name``).
"""

from __future__ import annotations

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
    doc = load_json(path)
    captions: dict[str, list[str]] = {}
    for i, ann in enumerate(list_field(doc, "annotations", path)):
        where = f"annotations[{i}]"
        captions.setdefault(str(field(ann, "image_id", path, where)), []).append(
            str(field(ann, "caption", path, where)))
    rows = Rows(path)
    for i, image in enumerate(list_field(doc, "images", path)):
        where = f"images[{i}]"
        image_id = str(field(image, "id", path, where))
        if image_id not in captions:
            raise DataError(f"{path}: {where} (id {image_id}) has no captions in 'annotations'")
        rows.add(image_id, image_dir, str(field(image, "file_name", path, where)), answers=captions[image_id])
    if not rows:
        raise DataError(f"{path}: no images")
    return rows
