"""A tiny ImageNet in the real ImageFolder layout: ``imagenet/{train,val}/<wnid>/*.JPEG``, plus a class-name
file (one name per line, label order) in words the of-toy vocabulary knows."""

from __future__ import annotations

from pathlib import Path

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]
NAMES = ["red cube", "blue ball", "green cylinder", "yellow cube"]
COLORS = [(200, 30, 30), (30, 30, 200), (30, 200, 30), (220, 220, 40)]


def make_imagenet(root: Path, train_per_class: int = 5, val_per_class: int = 3) -> Path:
    """Writes the tree under ``root/imagenet`` and ``root/classnames.txt``; returns the class-name file."""
    from PIL import Image

    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c, (wnid, color) in enumerate(zip(WNIDS, COLORS, strict=True)):
            folder = root / "imagenet" / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                name = f"{wnid}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{c * 100 + i:08d}.JPEG"
                Image.new("RGB", (24 + i, 24), color).save(folder / name, format="JPEG")
    names = root / "classnames.txt"
    names.write_text("# fixture classes\n" + "\n".join(NAMES) + "\n")
    return names
