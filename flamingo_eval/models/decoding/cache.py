"""The self-attention KV cache for batched greedy and beam search: the prompt is kept once per query.

The prompt is prefilled once per query whatever the beam count, and its K/V stay one copy per query (the
prefill's own tensors). Each row (a beam) owns only its generated suffix, written in place into room
reserved up front, so a step never grows or copies the cache and a beam reorder moves suffixes only.
The two attention strategies over it are what a model's layers are handed: ``PrefillAttention`` (the plain
causal attention, storing the prompt) and ``DecodeAttention`` (the cascade kernel).
"""

from __future__ import annotations

import torch

from flamingo_eval.models.decoding.attention import SuffixTree, cascade_attention
from flamingo_eval.models.lm.decoder import causal_attention


class KVCache:
    """Per layer: prompt K/V (Q, kv_heads, P, d) once per query, suffix K/V (Q x beams, kv_heads, room, d)."""

    def __init__(self, layers: int, beams: int, room: int, prompt_real: torch.Tensor):
        self.beams, self.room = beams, room
        self.prompt_real = prompt_real.bool()  # (Q, P): False at left padding
        self.prompt_keys: list[torch.Tensor | None] = [None] * layers
        self.prompt_values: list[torch.Tensor | None] = [None] * layers
        self.suffix_keys: list[torch.Tensor | None] = [None] * layers
        self.suffix_values: list[torch.Tensor | None] = [None] * layers
        self.filled = 0  # suffix positions written, the same for every row and layer
        self.tree: SuffixTree | None = None  # rank's options packed as token trees (see ``branch``)

    @property
    def length(self) -> int:
        return self.prompt_real.shape[1] + self.filled

    def store_prompt(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        # contiguous once here, or every decode step's matmul would copy these strided projections again
        self.prompt_keys[layer], self.prompt_values[layer] = keys.contiguous(), values.contiguous()
        rows = keys.shape[0] * self.beams
        self.suffix_keys[layer] = keys.new_empty((rows, keys.shape[1], self.room, keys.shape[3]))
        self.suffix_values[layer] = values.new_empty((rows, values.shape[1], self.room, values.shape[3]))

    def branch(self, beams: int, room: int, tree: SuffixTree | None = None) -> KVCache:
        """A fresh cache over the same prompts (their K/V shared, not copied) with ``beams`` empty rows per
        query: each chunk of rank's options continues the prompt as if it had just been prefilled. ``tree``
        (``beams`` rows, the same for every query): the rows hold token trees, fed in one pass."""
        out = KVCache(len(self.prompt_keys), beams, room, self.prompt_real)
        if tree is not None:
            queries = self.prompt_real.shape[0]
            out.tree = SuffixTree(tree.offset.repeat(queries, 1), tree.visible.repeat(queries, 1, 1))
        out.prompt_keys, out.prompt_values = list(self.prompt_keys), list(self.prompt_values)
        for layer, (keys, values) in enumerate(zip(self.prompt_keys, self.prompt_values, strict=True)):
            rows = keys.shape[0] * beams
            out.suffix_keys[layer] = keys.new_empty((rows, keys.shape[1], room, keys.shape[3]))
            out.suffix_values[layer] = values.new_empty((rows, values.shape[1], room, values.shape[3]))
        return out

    def append(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write (rows, kv_heads, t, d) new K/V after the filled part; returns each row's suffix so far."""
        end = self.filled + keys.shape[2]
        if end > self.room:
            raise RuntimeError(f"KV cache full: {end} new positions needed, room for {self.room}")
        self.suffix_keys[layer][:, :, self.filled : end] = keys
        self.suffix_values[layer][:, :, self.filled : end] = values
        return self.suffix_keys[layer][:, :, :end], self.suffix_values[layer][:, :, :end]

    def offsets(self, tokens: int, device) -> torch.Tensor:
        """(1 or R, tokens): how many places after the next position each of the next ``tokens`` new ones sits:
        one after another, or, for a tree (fed whole in one pass), its depth in the tree."""
        if self.tree is None:
            return torch.arange(tokens, device=device)[None, :]
        if self.filled or tokens != self.tree.offset.shape[1]:
            raise RuntimeError("a token tree is fed whole, in one pass")
        return self.tree.offset.to(device)

    def advance(self, tokens: int) -> None:
        """After a pass through every layer: its ``tokens`` new positions are part of the suffix."""
        self.filled += tokens

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues row ``rows[i]`` (of the same query): only the suffixes move."""
        if self.filled:
            for cache in (self.suffix_keys, self.suffix_values):
                for layer, t in enumerate(cache):
                    cache[layer][:, :, : self.filled] = t[rows.to(t.device), :, : self.filled]

    def keep_queries(self, queries: torch.Tensor) -> None:
        """Drop every query not in ``queries`` (finished), with its rows."""
        rows = (queries[:, None] * self.beams + torch.arange(self.beams, device=queries.device)).flatten()
        self.prompt_real = self.prompt_real[queries]
        for cache, index in ((self.prompt_keys, queries), (self.prompt_values, queries),
                             (self.suffix_keys, rows), (self.suffix_values, rows)):
            for layer, t in enumerate(cache):
                cache[layer] = t[index.to(t.device)]  # layers may sit on several devices (--device-map)


class PrefillAttention:
    """Each query's prompt once: plain causal attention over it, its K/V stored for the decode steps."""

    def __init__(self, cache: KVCache):
        self.cache = cache

    def __call__(self, layer, q, k, v, slopes, scale, window=None):
        self.cache.store_prompt(layer, k, v)
        return causal_attention(q, k, v, self.cache.prompt_real.to(q.device), slopes, scale, window)


class DecodeAttention:
    """New tokens of every row: written into the row's suffix, attending to prompt + suffix by cascade."""

    def __init__(self, cache: KVCache):
        self.cache = cache

    def __call__(self, layer, q, k, v, slopes, scale, window=None):
        c = self.cache
        suffix_keys, suffix_values = c.append(layer, k, v)
        return cascade_attention(q, c.prompt_keys[layer], c.prompt_values[layer], c.prompt_real.to(q.device), suffix_keys,
                                 suffix_values, slopes, scale, window, c.tree)
