"""RICES on what a VQA item asks: ``--rices-by text`` ranks the pool by the CLIP text embedding of its question,
``image+text`` by the sum of the image and the question similarities.

Both are per sample (two questions on one image differ), so this ranks pool samples, not pool images: each
sample's vector is its question's embedding, or its image's and its question's side by side, whose inner product
is the sum of the two similarities. As with image RICES the most similar demonstrates last and samples sharing the
query's image never demonstrate. Ties go to the lower pool index.
Image features come from the same cache as image RICES; text features are cached by the texts' hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flamingo_eval.data.sample import Sample
from flamingo_eval.demos import Demo
from flamingo_eval.demos.features import sample_features, text_features
from flamingo_eval.demos.index import FlatIPIndex
from flamingo_eval.demos.rices import DEFAULT_DEPTH, to_demos
from flamingo_eval.errors import ConfigError, DataError

RICES_BY = ("image", "text", "image+text")


def check_rices_by(by: str, task_name: str, task_kind: str) -> None:
    """One line where a task cannot use a choice: only VQA queries have a question to embed."""
    if by not in RICES_BY:
        raise ConfigError(f"--rices-by must be one of {', '.join(RICES_BY)}, not {by!r}")
    if by != "image" and task_kind != "vqa":
        raise ConfigError(f"--rices-by {by}: task {task_name} ({task_kind}) has no query question to embed; "
                          f"use --rices-by image")


class SampleRicesSelector:
    """Demonstrations by question (and image) similarity; ``prepare`` ranks an evaluation set up front."""

    def __init__(self, pool: Sequence[Sample], pool_fingerprint: str, encoder, by: str, *, device: str = "cpu",
                 depth: int = DEFAULT_DEPTH):
        if by not in ("text", "image+text"):
            raise ConfigError(f"SampleRicesSelector ranks by text or image+text, not {by!r}")
        self.pool, self.pool_fingerprint, self.encoder, self.by = pool, pool_fingerprint, encoder, by
        self.device, self.depth = device, depth
        self._index: FlatIPIndex | None = None
        self._image_of: list[str] = []
        self._per_image: dict[str, int] = {}
        self._widest = 0  # the most pool samples one image has: how much deeper to search than k
        self._ranked: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def name(self) -> str:
        return f"rices-{self.by}"

    def describe(self) -> dict[str, Any]:
        return {"selection": self.name, "by": self.by, "encoder": self.encoder.name,
                "pretrained": self.encoder.pretrained}

    def _vectors(self, samples: Sequence[Sample], fingerprint: str | None) -> np.ndarray:
        feats = text_features([s.question for s in samples], self.encoder)
        if self.by == "image+text":
            feats = np.concatenate([sample_features(samples, fingerprint, self.encoder), feats], axis=1)
        return feats

    def build_index(self) -> None:
        if self._index is not None:
            return
        if len(self.pool) == 0:
            raise DataError("RICES: the demonstration pool is empty")
        self._image_of = [s.image.key for s in self.pool]
        for key in self._image_of:
            self._per_image[key] = self._per_image.get(key, 0) + 1
        self._widest = max(self._per_image.values())
        self._index = FlatIPIndex(self._vectors(self.pool, self.pool_fingerprint), device=self.device)

    def prepare(self, queries: Sequence[Sample], queries_fingerprint: str, *, k: int | None = None) -> None:
        self.build_index()
        self._rank(queries, self._vectors(queries, queries_fingerprint), max(k or 0, self.depth))

    def _rank(self, queries: Sequence[Sample], feats: np.ndarray, k: int) -> None:
        sims, ids = self._index.search(feats, k + self._widest)
        for q, row_sims, row_ids in zip(queries, sims, ids, strict=True):
            order = np.lexsort((row_ids, -row_sims))  # best first, ties to the lower pool index
            row_sims, row_ids = row_sims[order], row_ids[order]
            keep = [j for j, i in enumerate(row_ids) if i >= 0 and self._image_of[i] != q.image.key][:k]
            self._ranked[(q.id, q.image.key)] = (row_ids[keep], row_sims[keep])

    def select(self, query: Sample, k: int) -> list[Demo]:
        if k < 0:
            raise ConfigError(f"number of demonstrations must be >= 0, got {k}")
        if k == 0:
            return []
        self.build_index()
        usable = len(self.pool) - self._per_image.get(query.image.key, 0)
        if k > usable:
            raise DataError(f"RICES: {k} demonstrations requested for {query.id} but the pool has only {usable} "
                            "samples that do not share its image")
        ranked = self._ranked.get((query.id, query.image.key))
        if ranked is None or len(ranked[0]) < k:
            self._rank([query], self._vectors([query], None), max(k, self.depth))
            ranked = self._ranked[(query.id, query.image.key)]
        return to_demos(self.pool, ranked[0][:k], ranked[1][:k])
