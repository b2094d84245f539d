"""What a reader is: named in a task YAML, it turns one split's annotation files into columns of rows.

A reader module exposes ``sources(ctx) -> list[str]`` (the data keys of the files whose contents define
the split, hashed for the cache) and ``read(ctx) -> Rows``. Images are never opened: a row names its image
by the data key of its directory plus a file name, resolved against --data-root only when materialised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.registry import Registry

READERS = Registry(
    "reader",
    {
        "karpathy": "flamingo_eval.data.karpathy",
        "vqa": "flamingo_eval.data.vqa",
        "memes": "flamingo_eval.data.memes",
        "coco_captions": "flamingo_eval.data.coco_captions",
        "textcaps": "flamingo_eval.data.textcaps",
        "vlicl": "flamingo_eval.data.vlicl",
        "imagefolder": "flamingo_eval.data.imagefolder",
    },
)

COLUMNS = ("id", "image_dir", "image_file", "question", "answers", "text", "label", "more_files")


def missing_file_error(task_name: str, key: str, path: Path, defaults: tuple[str, ...]) -> DataError:
    """The one line for an absent data file: where it was looked for and how to point elsewhere."""
    where = " or ".join(f"<data-root>/{d}" for d in defaults) if defaults else "none"
    return DataError(f"task {task_name}: data file {key!r} not found at {path} "
                     f"(default {where}; point to it with --data {key}=PATH)")


@dataclass(frozen=True)
class ReadContext:
    """One split to read: the task (for messages and data keys), the YAML options, resolved paths, and each
    data key's default locations (for the message when a file is missing)."""

    task_name: str
    source: str
    which: str
    options: dict[str, Any]
    paths: dict[str, Path]
    defaults: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def where(self) -> str:
        return f"{self.source}: {self.which}"

    def option(self, name: str, default: Any = ..., kinds: tuple[type, ...] = (str,)) -> Any:
        """A reader option from the YAML; missing required or mistyped options are a ConfigError."""
        if name not in self.options:
            if default is ...:
                raise ConfigError(f"{self.where()}: reader option {name!r} is required")
            return default
        value = self.options[name]
        if not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.where()}: reader option {name!r} must be a {names}, not {value!r}")
        return value

    def check_options(self, allowed: tuple[str, ...]) -> None:
        extra = sorted(set(self.options) - set(allowed))
        if extra:
            raise ConfigError(f"{self.where()}: unknown reader option(s) {', '.join(extra)}; "
                              f"known: {', '.join(allowed)}")

    def data_key(self, option: str, value: str | None = None) -> str:
        """An option whose value must name one of the task's data files or folders."""
        key = self.option(option) if value is None else value
        if key not in self.paths:
            raise ConfigError(f"{self.where()}: {option} names {key!r}, which is not a key of 'files' "
                              f"(known: {', '.join(sorted(self.paths))})")
        return key

    def path(self, option: str) -> Path:
        return self.paths[self.data_key(option)]

    def require(self, option: str) -> Path:
        """The path an option names, which must exist (a DataError in the standard wording otherwise)."""
        key = self.data_key(option)
        if not self.paths[key].is_file():
            raise missing_file_error(self.task_name, key, self.paths[key], self.defaults.get(key, ()))
        return self.paths[key]


@dataclass
class Rows:
    """Column-wise rows, ready to become an Arrow table; ids must be unique within a split."""

    source: Path
    columns: dict[str, list] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    _seen: set[str] = field(default_factory=set)

    def add(self, sample_id: str, image_dir: str, image_file: str, *, question: str = "",
            answers: list[str] | tuple[str, ...] = (), text: str = "", label: int | None = None,
            more_files: list[str] | tuple[str, ...] = ()) -> None:
        """One item; ``more_files`` are further images of it, in the same folder as ``image_file``."""
        if sample_id in self._seen:
            raise DataError(f"{self.source}: id {sample_id} appears more than once")
        self._seen.add(sample_id)
        c = self.columns
        c["id"].append(sample_id)
        c["image_dir"].append(image_dir)
        c["image_file"].append(image_file)
        c["question"].append(question)
        c["answers"].append(list(answers))
        c["text"].append(text)
        c["label"].append(label)
        c["more_files"].append(list(more_files))

    def __len__(self) -> int:
        return len(self.columns["id"])
