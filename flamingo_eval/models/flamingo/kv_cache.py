"""The self-attention KV cache for batched greedy and beam search: the prompt is kept once per query.

transformers' ``DynamicCache`` grows by ``torch.cat`` (a copy of the whole cache per step), its beam
reorder ``index_select``s the whole cache (another copy per step), and ``generate`` prefills the prompt once
per beam. Here the prompt is prefilled once per query and its K/V stay one copy per query (the prefill's own
tensors); each beam owns only its generated suffix, written in place into room reserved up front, and a beam
reorder moves suffixes only. The attention code (mpt_attention.py, shared_attention.py) reads the prompt
part once for all of a query's beams.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


def transformers_version() -> str:
    import transformers

    return transformers.__version__


class SharedPromptLayer(CacheLayerMixin):
    """One layer: the prompt's K/V once per query, and (queries x beams) suffixes with room for new tokens.

    ``update`` serves the prefill only; decode steps go through ``append``, whose caller attends to the
    prompt part once per query."""

    is_sliding = False
    is_compileable = False

    def __init__(self, beams: int, room: int):
        super().__init__()
        self.beams = beams
        self.room = room
        self.length = 0
        self.filled = 0  # suffix positions filled

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """The prefill's K/V, kept as the prompt; at decode steps the new K/V appended and the row's suffix
        returned (shared_attention.py adds the prompt part)."""
        if self.is_initialized:
            return self.append(key_states, value_states)[2:]
        self.lazy_initialization(key_states, value_states)
        b, h, n, d = key_states.shape
        # contiguous once here, or every decode step's matmul would copy these strided projections again
        self.keys, self.values = key_states.contiguous(), value_states.contiguous()
        self.suffix_keys = key_states.new_empty((b * self.beams, h, self.room, d))
        self.suffix_values = value_states.new_empty((b * self.beams, value_states.shape[1], self.room, value_states.shape[3]))
        self.length = n
        return key_states, value_states

    def append(self, key_states: torch.Tensor, value_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Write new (rows, heads, t, dim) K/V; returns prompt keys, values (per query) and suffix keys, values (per row)."""
        start, end = self.filled, self.filled + key_states.shape[2]
        if end > self.room:
            raise RuntimeError(f"KV cache full: {end} new positions needed, room for {self.room}")
        self.suffix_keys[:, :, start:end] = key_states
        self.suffix_values[:, :, start:end] = value_states
        self.filled, self.length = end, self.length + key_states.shape[2]
        return self.keys, self.values, self.suffix_keys[:, :, :end], self.suffix_values[:, :, :end]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return -1 if self.keys is None else self.keys.shape[2] + self.room

    def get_max_cache_shape(self) -> int:  # abstract in transformers 5.0-5.2's CacheLayerMixin
        return self.get_max_length()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.filled:
            self.suffix_keys[:, :, : self.filled] = self.suffix_keys[beam_idx, :, : self.filled]
            self.suffix_values[:, :, : self.filled] = self.suffix_values[beam_idx, :, : self.filled]

    def keep(self, queries: torch.Tensor, rows: torch.Tensor) -> None:
        self.keys, self.values = self.keys[queries], self.values[queries]
        self.suffix_keys, self.suffix_values = self.suffix_keys[rows], self.suffix_values[rows]


class BeamCache(Cache):
    """A transformers ``Cache`` for prefill with one row per query, then decoding ``beams`` rows each, every
    layer keeping one prompt copy per query (mpt_attention and shared_attention read it that way)."""

    def __init__(self, num_layers: int, beams: int, room: int):
        super().__init__(layers=[SharedPromptLayer(beams, room) for _ in range(num_layers)])
        self.beams = beams

    def check_written(self, length: int, component: str) -> None:
        """Every layer's attention must have written this pass's K/V: one that was not handed the cache
        (a renamed argument in a new transformers) would attend to the new tokens alone, silently."""
        stale = [i for i, layer in enumerate(self.layers) if layer.get_seq_length() != length]
        if stale:
            raise RuntimeError(
                f"{component}: the KV cache was not written by layer(s) {stale} during decoding (their attention "
                f"did not receive the cache) with transformers {transformers_version()}; refusing to decode wrongly"
            )

    def keep_queries(self, queries: torch.Tensor) -> None:
        rows = (queries[:, None] * self.beams + torch.arange(self.beams, device=queries.device)).flatten()
        for layer in self.layers:
            layer.keep(queries, rows)
