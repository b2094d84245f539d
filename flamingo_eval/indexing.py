"""``flamingo-eval index``: compute a task's RICES features ahead of the evaluation.

An exact flat index is rebuilt from the cached features in seconds, so only the features are stored; the
evaluation then never runs the CLIP encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from flamingo_eval.demos.encoder import DEFAULT_ENCODER, DEFAULT_PRETRAINED, ClipEncoder
from flamingo_eval.demos.features import image_features, image_table, split_cache_path
from flamingo_eval.task import TaskSpec, load_task

SPLITS = ("demo", "eval")


def build_index(
    task: str | TaskSpec,
    data_root: str | os.PathLike = "data",
    overrides: dict[str, str] | None = None,
    encoder_name: str = DEFAULT_ENCODER,
    pretrained: str | None = DEFAULT_PRETRAINED,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    num_workers: int = 4,
    splits: Sequence[str] = SPLITS,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Compute and cache the features of the demo pool (and the eval set); returns a summary per split."""
    from flamingo_eval.data import load_split

    spec = load_task(task) if isinstance(task, str) else task
    encoder = ClipEncoder(
        encoder_name,
        pretrained,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    summary: dict[str, dict[str, Any]] = {}
    for which in splits:
        split = load_split(spec, which, data_root, overrides)
        table = image_table(split)
        feats = image_features(table, split.fingerprint, encoder)
        summary[which] = {
            "split": split.name,
            "samples": len(split),
            "images": len(table),
            "dim": int(feats.shape[1]) if feats.ndim == 2 else 0,
            "cache": str(split_cache_path(encoder, split.fingerprint)),
        }
    return summary
