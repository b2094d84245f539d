"""Random demonstrations, OpenFlamingo style, made order-free.

Per seed, a fixed query set of min(query_set_size, len(pool)) pool items is drawn once; each evaluation
item then gets k distinct demonstrations drawn from it by a generator seeded from a hash of (seed, item id).
So an item's demonstrations never depend on batch size, batch order or the number of processes (unlike
OpenFlamingo, which seeds one stream per rank). The item itself (same id and same image) never demonstrates.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from flamingo_eval.data.sample import Sample
from flamingo_eval.data.split import Split
from flamingo_eval.demos import Demo
from flamingo_eval.errors import ConfigError, DataError

DEFAULT_QUERY_SET_SIZE = 2048


def _rng(*parts: object) -> random.Random:
    """A generator seeded by a hash of the parts: stable across processes and Python runs."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class RandomSelector:
    """Uniform demonstrations without replacement from a per-seed random subset of the pool."""

    name = "random"

    def __init__(self, pool: Split | Sequence[Sample], seed: int, query_set_size: int = DEFAULT_QUERY_SET_SIZE):
        if query_set_size < 1:
            raise ConfigError(f"query set size must be at least 1, not {query_set_size}")
        if len(pool) == 0:
            raise DataError(f"{getattr(pool, 'name', 'demo pool')}: the demonstration pool is empty")
        self.pool = pool
        self.seed = seed
        self._ids: list[str] = list(pool.ids) if hasattr(pool, "ids") else [s.id for s in pool]
        self.query_set_size = min(query_set_size, len(pool))
        picked = _rng("query-set", seed).sample(range(len(pool)), self.query_set_size)
        self._query_set: list[int] = sorted(picked)
        self._samples: dict[int, Sample] = {}
        self._by_id: dict[str, list[int]] = {}  # query-set items by id: the only ones that can be the query
        for i in self._query_set:
            self._by_id.setdefault(self._ids[i], []).append(i)

    @property
    def query_set(self) -> list[int]:
        """Pool indices of the query set, in pool order."""
        return list(self._query_set)

    def _sample(self, i: int) -> Sample:
        if i not in self._samples:
            self._samples[i] = self.pool[i]
        return self._samples[i]

    def select(self, query: Sample, k: int) -> list[Demo]:
        """k distinct demonstrations for ``query``, a pure function of (seed, query.id)."""
        if k < 0:
            raise ConfigError(f"cannot select {k} demonstrations")
        itself = [i for i in self._by_id.get(query.id, ()) if self._is_query(i, query)]
        candidates = [i for i in self._query_set if i not in itself] if itself else self._query_set
        if k > len(candidates):
            excluded = " (the query itself excluded)" if len(candidates) < len(self._query_set) else ""
            raise DataError(f"{getattr(self.pool, 'name', 'demo pool')}: {k} random demonstrations requested "
                            f"but the query set holds only {len(candidates)} items{excluded}")
        chosen = _rng("demos", self.seed, query.id).sample(candidates, k)
        return [Demo(self._sample(i)) for i in chosen]

    def _is_query(self, i: int, query: Sample) -> bool:
        # ids repeat across splits (VizWiz question ids restart at 0), so identity is id + image
        return self._ids[i] == query.id and self._sample(i).image.key == query.image.key

    def describe(self) -> dict[str, Any]:
        return {"selection": "random", "seed": self.seed, "query_set_size": self.query_set_size}
