"""ImageNet's ImageFolder trees: ``<split folder>/<class folder>/<image>``, an image's class its folder.

Options: ``images`` (data key of the split's folder); ``classes`` (data key of the folder whose sub-folders,
sorted, are the classes: label i is the i-th; the train folder for both splits, so a validation tree that
lacks a class does not shift every later label); ``per_class`` (keep that many images per class, the first
by a hash of their file name: the 10-per-class subset Flamingo reports, the same whichever way the class folders are named). Ids are ``<class folder>/<file name>``.
The class folders are ILSVRC2012's WordNet ids, or, in a tree ``flamingo-eval data unpack imagenet`` made from
the Hugging Face parquet shards, the label as four digits (``0000``-``0999``): sorted, both are the label order.

A tree has no annotation file to hash, so the split's cache fingerprint covers the listing (``digest``):
the table holds names and labels only, which the listing determines.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import DataError

OPTIONS = ("images", "classes", "per_class")
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
GATED = ("ImageNet is gated: download ILSVRC2012 from https://image-net.org and arrange it as "
         "<data-root>/imagenet/{train,val}/<wnid>/*.JPEG, or download the parquet shards of the Hugging Face dataset "
         "ILSVRC/imagenet-1k and run `flamingo-eval data unpack imagenet --from DIR --data-root <data-root>` "
         "(class folders 0000-0999, the label as 4 digits)")


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    ctx.data_key("images")
    ctx.data_key("classes")
    ctx.option("per_class", None, (int,))
    return []


def _folder(ctx: ReadContext, option: str) -> Path:
    path = ctx.path(option)
    if not path.is_dir():
        raise DataError(f"task {ctx.task_name}: folder {ctx.data_key(option)!r} not found at {path} "
                        f"(point to it with --data {ctx.data_key(option)}=PATH). {GATED}")
    return path


def class_folders(path: Path) -> list[str]:
    """The class folders of a split folder, sorted (torchvision ImageFolder's label order)."""
    return sorted(e.name for e in os.scandir(path) if e.is_dir())


def _images(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(EXTENSIONS))


def _listing(ctx: ReadContext) -> dict[str, list[str]]:
    root = _folder(ctx, "images")
    listing = {c: _images(root / c) for c in class_folders(root)}
    per_class = ctx.option("per_class", None, (int,))
    if per_class is not None:
        if per_class < 1:
            raise DataError(f"{ctx.where()}: per_class must be at least 1, not {per_class}")
        # by file name alone: a WordNet-id tree and an unpacked label-folder tree keep the same images
        by_name = lambda name: hashlib.sha256(name.encode()).hexdigest()  # noqa: E731
        listing = {c: sorted(sorted(files, key=by_name)[:per_class]) for c, files in listing.items()}
    return listing


def digest(ctx: ReadContext) -> str:
    """What the split's table depends on: the class order and every kept image's name."""
    classes = class_folders(_folder(ctx, "classes"))
    text = "\n".join(["classes", *classes, *(f"{c}/{f}" for c, files in _listing(ctx).items() for f in files)])
    return hashlib.sha256(text.encode()).hexdigest()


def read(ctx: ReadContext) -> Rows:
    classes = class_folders(_folder(ctx, "classes"))
    label = {c: i for i, c in enumerate(classes)}
    root = ctx.path("images")
    rows = Rows(root)
    for c, files in _listing(ctx).items():
        if c not in label:
            raise DataError(f"{root / c}: class folder not among the {len(classes)} classes of {ctx.path('classes')}")
        for f in files:
            rows.add(f"{c}/{f}", ctx.data_key("images"), f"{c}/{f}", label=label[c])
    if not rows:
        raise DataError(f"{root}: no images in any class folder (<class>/*.JPEG). {GATED}")
    return rows
