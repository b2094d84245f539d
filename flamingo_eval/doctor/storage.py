"""Whether the cache's disk holds what the named tasks' RICES features and parsed splits will add.

RICES keeps each image's features twice (demos/features.py: one matrix per split, and one store shared by
splits whose images coincide), fp32 at the encoder's width. Image counts come from the splits where their
annotations are readable, else from the published item counts, an upper bound (several questions share an
image). Parsed splits (Arrow) are taken to be as large as the annotation files they come from.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from flamingo_eval.cache import cache_dir
from flamingo_eval.doctor.record import Check, size
from flamingo_eval.errors import DataError
from flamingo_eval.task import TaskSpec

FEATURE_DIM = 768  # ViT-L/14, the default RICES encoder
FEATURE_BYTES = 4  # fp32


def cache_needs(tasks: Sequence[TaskSpec], data_root: str | Path) -> tuple[int, bool]:
    """Bytes the tasks' features and parsed splits take in the cache, and whether it is an upper bound."""
    from flamingo_eval.data import load_split
    from flamingo_eval.data_setup.catalogue import expected_items
    from flamingo_eval.data_setup.needs import task_needs

    root = Path(data_root)
    per_split, shared, bound, arrow = 0, set(), False, 0
    for task in tasks:
        arrow += sum(p.stat().st_size for n in task_needs(task) if not n.folder and (p := n.present(root)))
        for which in ("demo", "eval"):
            try:
                files = load_split(task, which, root).image_files()
            except DataError:
                n = expected_items(task.name, which) or 0
                per_split, bound = per_split + 2 * n, True  # no image names to share: both layers count in full
                continue
            keys = {(task.candidates(key)[0], f) for key, names in files.items() for f in names}
            per_split += len(keys)
            shared |= keys
    return (per_split + len(shared)) * FEATURE_DIM * FEATURE_BYTES + arrow, bound


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(tasks: Sequence[TaskSpec], data_root: str | Path) -> Check:
    need, bound = cache_needs(tasks, data_root)
    root = cache_dir()
    free = shutil.disk_usage(_existing(root)).free
    what = (f"{root}: {size(free)} free; RICES features ({FEATURE_DIM}-d) and parsed splits of "
            f"{', '.join(t.name for t in tasks)} need {'up to ' if bound else ''}{size(need)}")
    if free < need:
        return Check("cache", "fail", what, "free space there, or point FLAMINGO_EVAL_CACHE at a larger disk")
    return Check("cache", "ok", what)
