"""RICES (retrieval-based in-context example selection), as OpenFlamingo evaluates it.

Every pool sample is ranked by the inner product of its image's CLIP embedding with the query image's; the
top k demonstrate, the most similar LAST (next to the query). The whole train split is the pool. Samples
sharing the query's image never demonstrate (that includes the query itself). Ties go to the lower pool index.

Search runs once per unique image on both sides: a pool image stands for all its samples (they have the same
similarity), and all questions about one query image get the same demonstrations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flamingo_eval.data.sample import Sample
from flamingo_eval.demos import Demo
from flamingo_eval.demos.encoder import ImageEncoder
from flamingo_eval.demos.features import ImageTable, image_features, image_table
from flamingo_eval.demos.index import FlatIPIndex
from flamingo_eval.errors import ConfigError, DataError

DEFAULT_DEPTH = 32  # the protocol's largest shot count: prepare() ranks this deep
_EXPAND_ROWS = 8192  # query images expanded at once: bounds memory


@dataclass(frozen=True)
class ImageMembers:
    """For each pool image row, its sample indices in pool order (CSR: ``order[ptr[r]:ptr[r + 1]]``)."""

    ptr: np.ndarray
    order: np.ndarray
    counts: np.ndarray  # samples per image

    @classmethod
    def of(cls, rows: np.ndarray, n_images: int) -> ImageMembers:
        counts = np.bincount(rows, minlength=n_images).astype(np.int64)
        ptr = np.zeros(n_images + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return cls(ptr=ptr, order=np.argsort(rows, kind="stable").astype(np.int64), counts=counts)


def rank_pool(
    index: FlatIPIndex, members: ImageMembers, query_feats: np.ndarray, exclude: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best pool samples per query image, best first: (pool indices, similarities), each (n, k).

    ``exclude[i]`` is the pool image row that query image i must not use (its own image), or -1.
    Rows with fewer than k usable samples are padded with index -1 and similarity NaN.
    k + 1 images always suffice: each image has at least one sample and at most one image is excluded.
    """
    sims, imgs = index.search(query_feats, k + 1)
    return expand_neighbours(imgs, sims, exclude, members, k)


def expand_neighbours(
    imgs: np.ndarray, sims: np.ndarray, exclude: np.ndarray, members: ImageMembers, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour pool images (best first, -1 for none) -> the k best pool samples, as from ``rank_pool``."""
    n = len(imgs)
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_sim = np.full((n, k), np.nan, dtype=np.float32)
    if k == 0 or n == 0:
        return out_idx, out_sim
    for start in range(0, n, _EXPAND_ROWS):
        stop = min(start + _EXPAND_ROWS, n)
        _expand(
            imgs[start:stop],
            sims[start:stop],
            exclude[start:stop],
            members,
            k,
            out_idx[start:stop],
            out_sim[start:stop],
        )
    return out_idx, out_sim


def to_demos(pool: Sequence[Sample], idx: np.ndarray, sims: np.ndarray) -> list[Demo]:
    """Best-first ranks -> demonstrations in prompt order: the most similar LAST, next to the query."""
    return [Demo(pool[int(i)], float(s)) for i, s in zip(idx[::-1], sims[::-1], strict=True)]


def _expand(
    imgs: np.ndarray,
    sims: np.ndarray,
    exclude: np.ndarray,
    members: ImageMembers,
    k: int,
    out_idx: np.ndarray,
    out_sim: np.ndarray,
) -> None:
    """Neighbour images -> their samples, sorted by (similarity desc, pool index), the first k kept."""
    rows, depth = imgs.shape
    usable = (imgs >= 0) & (imgs != exclude[:, None])
    safe = np.where(usable, imgs, 0)
    counts = np.where(usable, np.minimum(members.counts[safe], k), 0).ravel()
    total = int(counts.sum())
    row_of = np.repeat(np.repeat(np.arange(rows), depth), counts)
    first = np.repeat(members.ptr[safe].ravel(), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    pool_idx = members.order[first + offset]
    sim = np.repeat(sims.ravel(), counts)
    order = np.lexsort((pool_idx, -sim, row_of))
    row_of, pool_idx, sim = row_of[order], pool_idx[order], sim[order]
    per_row = np.bincount(row_of, minlength=rows)
    rank = np.arange(total) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    keep = rank < k
    out_idx[row_of[keep], rank[keep]] = pool_idx[keep]
    out_sim[row_of[keep], rank[keep]] = sim[keep]


class RicesSelector:
    """Selects demonstrations from ``pool`` by CLIP image similarity (see the module docstring).

    ``pool_fingerprint`` is the content hash of the pool's source files: it keys the feature cache.
    Pool features are computed (or loaded) on first use. ``prepare`` ranks a whole evaluation set up front;
    ``select`` for an unprepared query ranks it alone, with the same result. ``features`` maps an image table
    to its features (default: the on-disk cache in front of ``encoder``).
    """

    name = "rices"

    def __init__(
        self,
        pool: Sequence[Sample],
        pool_fingerprint: str,
        encoder: ImageEncoder,
        *,
        device: str = "cpu",
        backend: str | None = None,
        depth: int = DEFAULT_DEPTH,
        features: Callable[[ImageTable, str | None, ImageEncoder], np.ndarray] = image_features,
    ):
        self.pool = pool
        self.pool_fingerprint = pool_fingerprint
        self.encoder = encoder
        self.device = device
        self.backend = backend
        self.depth = depth
        self._features = features
        self._index: FlatIPIndex | None = None
        self._members: ImageMembers | None = None
        self._pool_row: dict[str, int] = {}
        self._ranked: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def describe(self) -> dict[str, Any]:
        return {"selection": "rices", "encoder": self.encoder.name, "pretrained": self.encoder.pretrained}

    def build_index(self) -> None:
        """Load (or compute) the pool features and build the index; otherwise done on first use."""
        if self._index is not None:
            return
        if len(self.pool) == 0:
            raise DataError("RICES: the demonstration pool is empty")
        table = image_table(self.pool)
        feats = self._features(table, self.pool_fingerprint, self.encoder)
        self._members = ImageMembers.of(table.rows, len(table))
        self._pool_row = {key: i for i, key in enumerate(table.keys)}
        self._index = FlatIPIndex(feats, backend=self.backend, device=self.device)

    def prepare(self, queries: Sequence[Sample], queries_fingerprint: str, *, k: int | None = None) -> None:
        """Compute all query features and neighbours in batches (k defaults to ``depth``).

        ``queries_fingerprint`` keys the query feature cache: for a shard of a split (one rank of a
        distributed run), pass a fingerprint of that shard, or the ranks overwrite each other's cache file.
        """
        self.build_index()
        table = image_table(queries)
        feats = self._features(table, queries_fingerprint, self.encoder)
        self._rank(table.keys, feats, max(k or 0, self.depth))

    def _rank(self, keys: list[str], feats: np.ndarray, k: int) -> None:
        exclude = np.array([self._pool_row.get(key, -1) for key in keys], dtype=np.int64)
        idx, sims = rank_pool(self._index, self._members, feats, exclude, k)
        for i, key in enumerate(keys):
            self._ranked[key] = (idx[i], sims[i])

    def usable(self, query: Sample) -> int:
        """How many pool samples may demonstrate for ``query`` (those not sharing its image)."""
        self.build_index()
        row = self._pool_row.get(query.image.key)
        return len(self.pool) - (int(self._members.counts[row]) if row is not None else 0)

    def select(self, query: Sample, k: int) -> list[Demo]:
        if k < 0:
            raise ConfigError(f"number of demonstrations must be >= 0, got {k}")
        if k == 0:
            return []
        usable = self.usable(query)
        if k > usable:
            raise DataError(
                f"RICES: {k} demonstrations requested for {query.id} but the pool has only {usable} "
                "samples that do not share its image"
            )
        ranked = self._ranked.get(query.image.key)
        if ranked is None or len(ranked[0]) < k:
            feats = self._features(image_table([query]), None, self.encoder)
            self._rank([query.image.key], feats, max(k, self.depth))
            ranked = self._ranked[query.image.key]
        return to_demos(self.pool, ranked[0][:k], ranked[1][:k])
