"""``flamingo-eval data unpack imagenet --from DIR``: the Hugging Face dataset ``ILSVRC/imagenet-1k`` (parquet
shards) unpacked into the ImageFolder trees the ``imagenet`` task reads.

The dataset's shards are ``data/train-NNNNN-of-00294.parquet`` and ``data/validation-NNNNN-of-00014.parquet``
(``test`` shards are unlabelled, label -1, and not used); each row holds ``image``, a struct {``bytes``: the
encoded JPEG, ``path``: its original file name, may be null}, and ``label``, the standard ImageNet class index
0..999 (sorted WordNet-id order, the order of OpenFlamingo's class names in ``data/imagenet_classnames.txt``).
Nothing else about the shards is relied on (row-group sizes, other columns).

Each row becomes ``<data-root>/imagenet/{train,val}/<label as 4 digits>/<file>``: folders named by the label
zero-padded to four digits (``0000`` ... ``0999``), so their sorted order, which the reader takes as the label
order, is the label order itself. All 1000 folders are made in every unpacked split, so a partly unpacked train
tree never shifts a label. The file is the row's ``image.path`` base name where that is present and usable
(not empty, not hidden, an image extension the reader lists), else ``<split>-<shard>-<row>.JPEG`` (shard as
in the shard's name, row within the shard); where that name is already taken in the class folder by an image
of another size (two rows with the same name), the row gets that fallback name too. The bytes are written as
they are, never re-encoded.

Shards are read one row group at a time with only ``image`` and ``label``, decoded a batch of rows at a time,
so memory stays bounded by a row group's columns, whatever the shard's size. Every file is written under a
temporary name and renamed, and a file already there with the same size is left alone: an interrupted unpack
continues where it stopped, and a second one writes nothing.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from flamingo_eval.data.imagefolder import EXTENSIONS
from flamingo_eval.errors import ConfigError, DataError

HUB_DATASET = "ILSVRC/imagenet-1k"
NUM_CLASSES = 1000
SPLITS = {"train": "train", "val": "validation"}  # the layout's split -> the shards' split name
LAYOUT = "imagenet"  # <data-root>/imagenet/<split>/<label>/<file>, as tasks/imagenet.yaml reads
_SHARD = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d+)-of-(?P<total>\d+)\.parquet$")
_LABEL_FOLDER = re.compile(r"^\d{4}$")
# Rows decoded at a time: memory is a row group's column chunks plus one batch. A 100 MB shard of 10,000
# 10-kB blobs in one row group: 276 MB peak resident for the whole unpack in batches of 64, 659 MB converting
# the row group at once; in row groups of 500: 159-184 MB either way (75 MB is the imports).
BATCH_ROWS = 64


@dataclass(frozen=True)
class Shard:
    path: Path
    index: str  # as in the file name: 00012
    total: str  # the shard count the name announces: 00294


def class_folder(label: int) -> str:
    """A label's folder name: zero-padded to four digits, so sorted folders are in label order."""
    return f"{label:04d}"


def find_shards(source: Path, split: str) -> list[Shard]:
    """The split's shards under ``source/data`` or ``source`` itself, in shard order; none is a DataError."""
    name = SPLITS[split]
    for folder in (source / "data", source):
        if not folder.is_dir():
            continue
        shards = [Shard(folder / e.name, m["index"], m["total"]) for e in os.scandir(folder)
                  if e.is_file() and (m := _SHARD.match(e.name)) and m["split"] == name]
        if shards:
            return sorted(shards, key=lambda s: int(s.index))
    raise DataError(f"{source}: no parquet shards of the {split} split ({name}-NNNNN-of-NNNNN.parquet) in "
                    f"{source / 'data'} or {source}; download them from the Hugging Face dataset {HUB_DATASET}")


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{e.__class__.__name__}: {text.splitlines()[0]}" if text else e.__class__.__name__


def _open(shard: Shard):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(shard.path)
    except (OSError, pa.ArrowException) as e:
        raise _unreadable(shard, e) from None


def _rows(shard: Shard, pf):
    """(image struct as a dict or None, label) per row: one row group at a time, only those two columns, in
    batches; a read error is one line (the loop's own errors, raised outside this generator, are not caught)."""
    import pyarrow as pa

    try:
        for group in range(pf.num_row_groups):
            for batch in pf.iter_batches(BATCH_ROWS, row_groups=[group], columns=["image", "label"]):
                yield from zip(batch.column("image").to_pylist(), batch.column("label").to_pylist(), strict=True)
    except (OSError, pa.ArrowException) as e:
        raise _unreadable(shard, e) from None


def check_schema(shard: Shard) -> None:
    """Refuses a shard without ``image`` (a struct with ``bytes``) and an integer ``label``, in one line."""
    import pyarrow as pa

    with _open(shard) as pf:
        schema = pf.schema_arrow
    missing = [c for c in ("image", "label") if c not in schema.names]
    if missing:
        raise DataError(f"{shard.path}: no {' and no '.join(repr(c) for c in missing)} column (columns: "
                        f"{', '.join(schema.names) or 'none'}); not a shard of {HUB_DATASET}")
    image = schema.field("image").type
    if not pa.types.is_struct(image) or image.get_field_index("bytes") < 0:
        raise DataError(f"{shard.path}: column 'image' is {image}, not the struct {{bytes, path}} of {HUB_DATASET}")
    label = schema.field("label").type
    if not pa.types.is_integer(label):
        raise DataError(f"{shard.path}: column 'label' is {label}, not integer class indices")


def _unreadable(shard: Shard, e: Exception) -> DataError:
    return DataError(f"{shard.path}: not a readable parquet file ({_one_line(e)}); download it again")


def _check_labels(shard: Shard, pf) -> int:
    """Every label within 0..999 (the test split's are -1), before any of the shard's files is written; returns
    the shard's row count."""
    import pyarrow as pa

    try:
        labels = pf.read(columns=["label"]).column("label")
    except (OSError, pa.ArrowException) as e:
        raise _unreadable(shard, e) from None
    if labels.null_count:
        raise DataError(f"{shard.path}: {labels.null_count} row(s) without a label; unpack the train and "
                        f"validation shards only")
    values = labels.to_numpy()
    bad = ((values < 0) | (values >= NUM_CLASSES)).nonzero()[0]
    if len(bad):
        raise DataError(f"{shard.path}: row {bad[0]} has label {values[bad[0]]}, outside 0..{NUM_CLASSES - 1} "
                        f"(the test split's shards are unlabelled, -1); unpack the train and validation shards only")
    return len(values)


def file_name(path: str | None) -> str | None:
    """The base name of a row's ``image.path`` where it can name the file, else None."""
    if not path:
        return None
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    usable = (name and not name.startswith(".") and "\x00" not in name and len(name.encode()) <= 200
              and name.lower().endswith(EXTENSIONS))
    return name if usable else None


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through a temporary name in the same folder (one the reader does not list)."""
    part = path.with_name(f".{path.name}.part")
    try:
        with open(part, "wb") as f:
            f.write(data)
        os.replace(part, path)
    except BaseException as e:
        part.unlink(missing_ok=True)
        if isinstance(e, OSError):  # a full disk, a folder without write permission: one line too
            raise DataError(f"cannot write {path} ({_one_line(e)}); images written so far are kept") from None
        raise


def place(folder: Path, name: str | None, fallback: str, data: bytes) -> str:
    """Writes one image unless it is there already: "written", "present" or "renamed" (its name was taken by
    an image of another size, so it went under ``fallback``)."""
    renamed = False
    if name is not None and name != fallback:
        size = _size(folder / name)
        if size is None:
            _write(folder / name, data)
            return "written"
        if size == len(data):
            return "present"
        renamed = True
    if _size(folder / fallback) == len(data):
        return "present"
    _write(folder / fallback, data)
    return "renamed" if renamed else "written"


def _refuse_foreign_folders(root: Path) -> None:
    """A tree whose class folders are not label numbers (ILSVRC2012's <wnid>) mixed with label folders would
    give 2000 classes, or label the validation images by another list than the train tree's."""
    for split in SPLITS:
        folder = root / LAYOUT / split
        if not folder.is_dir():
            continue
        foreign = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not _LABEL_FOLDER.match(e.name))
        if foreign:
            raise DataError(f"{folder} holds class folders not named by label ({', '.join(foreign[:3])}"
                            f"{', ...' if len(foreign) > 3 else ''}); unpack into another --data-root, or remove "
                            f"that tree first")


def unpack_split(split: str, shards: list[Shard], root: Path) -> int:
    """Every shard of the split into ``root/imagenet/<split>``, one line per shard; returns the image count."""
    dest = root / LAYOUT / split
    try:
        for label in range(NUM_CLASSES):
            (dest / class_folder(label)).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot make the class folders under {dest} ({_one_line(e)})") from None
    total = 0
    for shard in shards:
        started = time.time()
        counts = {"written": 0, "present": 0, "renamed": 0}
        row = 0
        with _open(shard) as pf:
            rows = _check_labels(shard, pf)
            for image, label in _rows(shard, pf):
                if not image or image.get("bytes") is None:
                    raise DataError(f"{shard.path}: row {row} has no image bytes")
                fallback = f"{split}-{shard.index}-{row:06d}.JPEG"
                name = file_name(image.get("path"))
                counts[place(dest / class_folder(label), name, fallback, image["bytes"])] += 1
                row += 1
        total += rows
        written = counts["written"] + counts["renamed"]
        renamed = f", {counts['renamed']:,} of them under <split>-<shard>-<row> (name taken)" if counts["renamed"] else ""
        print(f"  {split:<5} shard {shard.index} of {shard.total} ({shard.path.name}): {rows:,} images, {written:,} "
              f"written{renamed}, {counts['present']:,} already there ({time.time() - started:.1f} s)", flush=True)
    return total


def unpack_command(task: str, source: str | os.PathLike, data_root: str | os.PathLike,
                   splits: list[str] | None = None) -> int:
    """Unpacks the requested splits (default train and val); every shard is checked (present, its columns)
    before anything is written."""
    if task.split(":", 1)[0] != "imagenet":
        raise ConfigError(f"data unpack knows only imagenet (the parquet shards of the Hugging Face dataset "
                          f"{HUB_DATASET}), not {task!r}")
    source, root = Path(source), Path(data_root)
    if not source.is_dir():
        raise DataError(f"--from {source}: no such folder (the downloaded {HUB_DATASET} dataset, shards in data/)")
    splits = list(dict.fromkeys(splits or SPLITS))
    found = {split: find_shards(source, split) for split in splits}
    for shard in (s for shards in found.values() for s in shards):
        check_schema(shard)
    _refuse_foreign_folders(root)
    for split, shards in found.items():
        announced = int(shards[0].total)
        note = f"; the names announce {announced}, the others are not unpacked" if len(shards) != announced else ""
        print(f"imagenet/{split}: {len(shards)} shard(s) from {shards[0].path.parent}{note}", flush=True)
        n = unpack_split(split, shards, root)
        print(f"imagenet/{split}: {n:,} images in {root / LAYOUT / split}/<label 0000-0999>/", flush=True)
    print(f"next: flamingo-eval data check imagenet --data-root {root}")
    return 0
