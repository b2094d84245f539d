"""ImageNet's ImageFolder trees: ``<split folder>/<class folder>/<image>``, an image's class its folder.

Options: ``images`` (data key of the split's folder); ``classes`` (data key of the folder whose sub-folders are
the classes: the train folder for both splits, so a validation tree that lacks a class does not shift a label);
``synsets`` (data key of ImageNet-1k's 1000 WordNet ids in label order) and ``names`` (data key of the class-name
list the task ranks); ``per_class`` (keep that many images per class, the first by a hash of their file name:
the 10-per-class subset Flamingo reports, the same whichever way the class folders are named). Ids are
``<class folder>/<file name>``.

Labels (``folder_labels``): where the class-name list spans ImageNet-1k's 1000 classes and every class folder
is one of them, by its WordNet id (ILSVRC2012's folders) or as its label in four digits (``0000``-``0999``, the
folders ``flamingo-eval data unpack imagenet`` makes from the Hugging Face parquet shards), a folder's label is
that class's: a tree holding some of the classes keeps their labels and is ranked over all 1000 names. Any other
tree is labelled in sorted folder order, and its class-name list must then name exactly its classes.

A tree has no annotation file to hash, so the split's cache fingerprint covers the listing and the labels
(``digest``): the table holds names and labels only, which they determine.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import DataError

OPTIONS = ("images", "classes", "per_class", "synsets", "names")
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
GATED = ("ImageNet is gated: download ILSVRC2012 from https://image-net.org and arrange it as "
         "<data-root>/imagenet/{train,val}/<wnid>/*.JPEG, or download the parquet shards of the Hugging Face dataset "
         "ILSVRC/imagenet-1k and run `flamingo-eval data unpack imagenet --from DIR --data-root <data-root>` "
         "(class folders 0000-0999, the label as 4 digits)")


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    for key in ("images", "classes", "synsets", "names"):
        ctx.data_key(key)
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


def _lines(ctx: ReadContext, option: str) -> list[str]:
    path = ctx.require(option)
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]


def folder_labels(ctx: ReadContext) -> dict[str, int]:
    """Each class folder's label (see the module's docstring); a class-name list that cannot name a tree's
    classes is one DataError, so 5 folders are never scored against the wrong 5 of 1000 names."""
    root = _folder(ctx, "classes")
    folders = class_folders(root)
    synsets, names = _lines(ctx, "synsets"), _lines(ctx, "names")
    place = {w: i for i, w in enumerate(synsets)} | {f"{i:04d}": i for i in range(len(synsets))}
    if len(names) == len(synsets) and folders and all(f in place for f in folders):
        return {f: place[f] for f in folders}
    if len(names) != len(folders):
        odd = next((f for f in folders if f not in place), None)
        why = (f"class folder {odd!r} is neither an ImageNet-1k WordNet id nor a label 0000-0999" if odd is not None
               else f"{ctx.path('names')} names {len(names)} classes, not ImageNet-1k's {len(synsets)}")
        raise DataError(f"task {ctx.task_name}: {root} has {len(folders)} class folders and {why}; give the data's "
                        f"class names, one per line in sorted folder order, with --data {ctx.data_key('names')}=PATH")
    return {f: i for i, f in enumerate(folders)}


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
    """What the split's table depends on: each class's label and every kept image's name."""
    labels = folder_labels(ctx)
    text = "\n".join(["labels", *(f"{c}={i}" for c, i in labels.items()),
                       *(f"{c}/{f}" for c, files in _listing(ctx).items() for f in files)])
    return hashlib.sha256(text.encode()).hexdigest()


def read(ctx: ReadContext) -> Rows:
    label = folder_labels(ctx)
    root = ctx.path("images")
    rows = Rows(root)
    for c, files in _listing(ctx).items():
        if c not in label:
            raise DataError(f"{root / c}: class folder not among the {len(label)} classes of {ctx.path('classes')}")
        for f in files:
            rows.add(f"{c}/{f}", ctx.data_key("images"), f"{c}/{f}", label=label[c])
    if not rows:
        raise DataError(f"{root}: no images in any class folder (<class>/*.JPEG). {GATED}")
    return rows
