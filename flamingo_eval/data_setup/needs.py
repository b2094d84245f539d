"""What a task reads under a data root: the files and image folders its splits, references and submission name.

A task's ``files`` may list keys that none of its splits use (a variant's, say); only the data keys that
reader options, ``references`` or ``submission`` name are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flamingo_eval.task import TaskSpec, available_tasks, load_task

DATA_KEY_OPTIONS = ("questions", "annotations", "images")  # the reader options whose values are data keys


@dataclass(frozen=True)
class Need:
    """A data key the task reads: its default locations under the data root, and what reads it."""

    key: str
    candidates: tuple[str, ...]
    folder: bool  # an image folder rather than an annotation file
    used_by: tuple[str, ...]  # "demo", "eval", "references", "submission"

    @property
    def default(self) -> str:
        return self.candidates[0]

    def present(self, data_root: Path) -> Path | None:
        """The first candidate that exists under ``data_root``."""
        for c in self.candidates:
            p = Path(data_root) / c
            if p.is_dir() if self.folder else p.is_file():
                return p
        return None


def _option_keys(options: dict) -> list[tuple[str, bool]]:
    out = []
    for name in DATA_KEY_OPTIONS:
        value = options.get(name)
        values = list(value.values()) if isinstance(value, dict) else [value] if isinstance(value, str) else []
        out.extend((v, name == "images") for v in values)
    return out


def task_needs(task: TaskSpec) -> list[Need]:
    """Every data key the task reads, in the order its YAML first names them."""
    users: dict[str, list[str]] = {}
    folder: dict[str, bool] = {}
    named = [(k, f, which) for which, spec in (("demo", task.demo), ("eval", task.eval))
             for k, f in _option_keys(spec.options)]
    if task.references:
        named.append((task.references, False, "references"))
    if task.submission and "questions" in task.submission:
        named.append((task.submission["questions"], False, "submission"))
    for key, is_folder, which in named:
        if key not in task.files:
            continue  # the reader reports a key that is not one of the task's files
        folder[key] = is_folder
        if which not in users.setdefault(key, []):
            users[key].append(which)
    return [Need(k, task.candidates(k), folder[k], tuple(w)) for k, w in users.items()]


def resolve_tasks(names: list[str]) -> list[TaskSpec]:
    """Task names (variants included) to specs; ``all`` stands for every shipped task."""
    expanded = [n for name in names for n in (available_tasks() if name == "all" else [name])]
    return [load_task(n) for n in dict.fromkeys(expanded)]
