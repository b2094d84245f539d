"""Perceiver latents by image key, kept across calls for a whole run, least recently used evicted first.

A demonstration pool image serves many queries (OpenFlamingo's protocol draws 32 shots per query from
2048 items, so at 5000 queries each pool image appears ~78 times). The Perceiver has no position or time
embeddings, so an image's latents do not depend on the prompt it appears in: encode it once.
"""

from __future__ import annotations

from collections import OrderedDict

import torch


class LatentCache:
    """A byte-bounded LRU map ``Image.key -> (n, D) latents``; the budget counts tensor bytes only."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> torch.Tensor | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: torch.Tensor) -> None:
        """Store a private copy (a view would pin its whole batch); evict the oldest past the budget."""
        size = value.numel() * value.element_size()
        if size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.numel() * old.element_size()
        self._items[key] = value.detach().clone()
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.nbytes -= dropped.numel() * dropped.element_size()

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0
