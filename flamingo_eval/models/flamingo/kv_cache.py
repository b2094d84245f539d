"""The self-attention KV cache for batched greedy and beam search: the prompt is copied once, never per step.

transformers' ``DynamicCache`` grows by ``torch.cat`` (a copy of the whole cache per step) and its beam
reorder ``index_select``s the whole cache (another copy per step), and ``generate`` prefills the prompt once
per beam. Here the prompt is prefilled once per query; each layer then holds a buffer with room for the
prompt plus the new tokens, the prompt written into every beam's row once (a broadcast from its query's
row), new tokens written in place. Beams of one query share the same prompt, so a beam reorder only moves
the generated suffix: rows never leave their query during beam search.

``SharedPromptLayer`` goes further for attention code that knows it (mpt_attention.py): the prompt K/V
stay one copy per query (the prefill's own tensors), and each beam owns only its generated suffix.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class BeamLayer(CacheLayerMixin):
    """One layer: (queries x beams, heads, prompt + room, head_dim) keys and values, filled up to ``length``."""

    is_sliding = False
    is_compileable = False

    def __init__(self, beams: int, room: int):
        super().__init__()
        self.beams = beams
        self.room = room
        self.length = 0  # positions filled
        self.prompt_length = 0  # positions shared by the beams of a query

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        b, h, n, d = key_states.shape
        self.dtype, self.device = key_states.dtype, key_states.device
        self.keys = key_states.new_empty((b * self.beams, h, n + self.room, d))
        self.values = value_states.new_empty((b * self.beams, value_states.shape[1], n + self.room, value_states.shape[3]))
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:  # the prompt: one row per query, copied once into each of its beams
            self.lazy_initialization(key_states, value_states)
            b, _, n, _ = key_states.shape
            self._per_query(self.keys)[:, :, :, :n] = key_states[:, None]
            self._per_query(self.values)[:, :, :, :n] = value_states[:, None]
            self.length = self.prompt_length = n
            return key_states, value_states
        start, end = self.length, self.length + key_states.shape[2]
        if end > self.keys.shape[2]:
            raise RuntimeError(f"KV cache full: {end} positions needed, room for {self.keys.shape[2]}")
        self.keys[:, :, start:end] = key_states
        self.values[:, :, start:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def _per_query(self, buf: torch.Tensor) -> torch.Tensor:
        return buf.view(buf.shape[0] // self.beams, self.beams, *buf.shape[1:])

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return -1 if self.keys is None else self.keys.shape[2]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Rows move only within their query, whose beams share the prompt: move the generated part only."""
        start, end = self.prompt_length, self.length
        if end > start:
            self.keys[:, :, start:end] = self.keys[beam_idx, :, start:end]
            self.values[:, :, start:end] = self.values[beam_idx, :, start:end]

    def keep(self, queries: torch.Tensor, rows: torch.Tensor) -> None:
        """Drop the other queries (finished), prompt included: a copy of what is kept."""
        self.keys = self.keys[rows]
        self.values = self.values[rows]


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
        if self.is_initialized:
            raise RuntimeError("SharedPromptLayer: decode steps must use append() (mpt_attention)")
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

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.filled:
            self.suffix_keys[:, :, : self.filled] = self.suffix_keys[beam_idx, :, : self.filled]
            self.suffix_values[:, :, : self.filled] = self.suffix_values[beam_idx, :, : self.filled]

    def keep(self, queries: torch.Tensor, rows: torch.Tensor) -> None:
        self.keys, self.values = self.keys[queries], self.values[queries]
        self.suffix_keys, self.suffix_values = self.suffix_keys[rows], self.suffix_values[rows]


class BeamCache(Cache):
    """A transformers ``Cache`` for prefill with one row per query, then decoding ``beams`` rows each.

    ``shared_prompt``: layers keep one prompt copy per query (for attention that reads it that way)."""

    def __init__(self, num_layers: int, beams: int, room: int, shared_prompt: bool = False):
        layer = SharedPromptLayer if shared_prompt else BeamLayer
        super().__init__(layers=[layer(beams, room) for _ in range(num_layers)])
        self.beams = beams

    def keep_queries(self, queries: torch.Tensor) -> None:
        rows = (queries[:, None] * self.beams + torch.arange(self.beams, device=queries.device)).flatten()
        for layer in self.layers:
            layer.keep(queries, rows)
