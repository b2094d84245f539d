"""Caption references in COCO format (``captions_val2014.json``, ``dataset_flickr30k_coco_style.json``).

Keys are ``str(image_id)``: COCO's are ints (391895 -> "391895"), the Flickr COCO-style file's are the
image file stems as strings ("1000092795"), so both match the caption samples' ids (cocoid / file stem).
"""

from __future__ import annotations

import os
from pathlib import Path

from flamingo_eval.data.jsonio import field, list_field, load_json
from flamingo_eval.errors import DataError


def load_caption_references(path: str | os.PathLike) -> dict[str, list[str]]:
    """Every image's reference captions, in file order, keyed by str(image_id)."""
    path = Path(path)
    refs: dict[str, list[str]] = {}
    for i, ann in enumerate(list_field(load_json(path), "annotations", path)):
        where = f"annotations[{i}]"
        image_id = field(ann, "image_id", path, where)
        refs.setdefault(str(image_id), []).append(str(field(ann, "caption", path, where)))
    if not refs:
        raise DataError(f"{path}: no caption annotations")
    return refs


def load_image_groups(path: str | os.PathLike, name: str) -> dict[str, str]:
    """Each image's value of one field of ``images[]`` (NoCaps' ``domain``), keyed by str(id)."""
    path = Path(path)
    out: dict[str, str] = {}
    for i, image in enumerate(list_field(load_json(path), "images", path)):
        where = f"images[{i}]"
        out[str(field(image, "id", path, where))] = str(field(image, name, path, where))
    return out
