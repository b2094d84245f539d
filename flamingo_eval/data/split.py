"""A split: a read-only Sequence of Samples over a memory-mapped Arrow table, materialised per item.

Materialising lazily keeps loading a 443k-question pool to a memory map plus an id list; only the items
a run touches become Python objects.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import overload

from flamingo_eval.data.sample import Sample
from flamingo_eval.prompt import Image

_BATCH = 4096


class Split(Sequence[Sample]):
    """``name`` ("vqav2/eval"), ``fingerprint`` (source contents + reader options), ``ids`` in file order."""

    def __init__(self, name: str, fingerprint: str, table, image_dirs: dict[str, Path],
                 image_key: Callable[[str, str], str], table_dir: Path | None = None):
        self.name = name
        self.fingerprint = fingerprint
        self._table = table
        self._table_dir = table_dir  # where the table is cached, so a pickled Split re-maps it
        self._image_dirs = image_dirs
        self._image_key = image_key  # (images data key, file name) -> stable Image.key
        self.ids: list[str] = table.column("id").to_pylist()
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} items, fingerprint {self.fingerprint[:12]})"

    def _sample(self, row: dict) -> Sample:
        d, f = row["image_dir"], row["image_file"]
        image = Image(key=self._image_key(d, f), path=str(self._image_dirs[d] / f))
        more = tuple(Image(key=self._image_key(d, m), path=str(self._image_dirs[d] / m))
                     for m in row.get("more_files") or ())
        return Sample(id=row["id"], image=image, question=row["question"], answers=tuple(row["answers"]),
                      text=row["text"], label=row["label"], more_images=more)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n, i = len(self), operator.index(i)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"{self.name}: index {i} out of range for {n} items")
        return self._sample(self._table.slice(j, 1).to_pylist()[0])

    def __iter__(self) -> Iterator[Sample]:
        for start in range(0, len(self), _BATCH):
            for row in self._table.slice(start, _BATCH).to_pylist():
                yield self._sample(row)

    def __getstate__(self) -> dict:
        """Pickles (for worker processes) carry the cache location, not the table's bytes."""
        if self._table_dir is None:
            return dict(self.__dict__)
        return {k: v for k, v in self.__dict__.items() if k not in ("_table", "_index")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._index = None
        if "_table" not in state:
            from flamingo_eval.data.store import load_table

            self._table = load_table(self._table_dir)

    @property
    def image_dirs(self) -> dict[str, Path]:
        """Image-folder data key -> the folder it resolved to."""
        return dict(self._image_dirs)

    def image_files(self) -> dict[str, set[str]]:
        """The image files the split names (relative to their folder), by image-folder data key; read from
        the table's columns, so a 443k-question split is listed without materialising Samples."""
        out: dict[str, set[str]] = {}
        more = (self._table.column("more_files").to_pylist() if "more_files" in self._table.column_names
                else [()] * len(self))
        for d, f, m in zip(self._table.column("image_dir").to_pylist(), self._table.column("image_file").to_pylist(),
                           more, strict=True):
            out.setdefault(d, set()).update([f, *(m or ())])
        return out

    def labels(self) -> list:
        """Every item's label, read from the table's column (1.28M ImageNet items without materialising)."""
        return self._table.column("label").to_pylist()

    def index_of(self, sample_id: str) -> int:
        """Position of an id; a KeyError names the split if it is not there."""
        if self._index is None:
            self._index = {s: i for i, s in enumerate(self.ids)}
        try:
            return self._index[sample_id]
        except KeyError:
            raise KeyError(f"id {sample_id!r} is not in {self.name}") from None
