"""The model's own forward behind the harness's search loops: each prompt prefilled once, its beams
continuing the prompt's cache (a transformers ``DynamicCache``, through its public methods).

What ``generate`` passes besides the ids is kept per row and extended as ``generate`` extends it: the
attention mask (ones), the position ids (the last one + 1 in each of their rows; Qwen's 3D rope positions
are ``[text; t; h; w]`` from the model's ``get_rope_index``), ``token_type_ids`` (the last value),
``mm_token_type_ids`` (zeros) and Llama 3.2 Vision's ``cross_attention_mask`` (its last row). Each step's
model inputs come from the model's own ``prepare_inputs_for_generation``, which drops or slices what the
model reads only at the prefill.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch

from flamingo_eval.errors import ConfigError

MROPE = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")  # 3D rope positions, as their generate computes them
FIXED_CROSS_ATTENTION = ("mllama",)
GROWING = ("attention_mask", "position_ids", "token_type_ids", "mm_token_type_ids", "cross_attention_mask")


def _batch_dim(key: str, t: torch.Tensor) -> int:
    return 1 if key == "position_ids" and t.dim() == 3 else 0


def positions(model, model_type: str, ids: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor | None:
    """The prompt's position ids as ``generate`` computes them: counted over the attention mask (0 at left
    padding); for Qwen, the text row on top of the 3D rope rows."""
    if "position_ids" not in inspect.signature(model.forward).parameters:
        return None
    mask = inputs["attention_mask"]
    text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    inner = getattr(model, "model", None)
    if model_type not in MROPE:
        if hasattr(inner, "get_rope_index"):
            raise ConfigError(f"{model_type} computes its own rope positions in a way the transformers family has not "
                              "been checked against; it supports the 3D positions of " + ", ".join(MROPE))
        return text
    if inputs.get("mm_token_type_ids") is not None and inputs.get("image_grid_thw") is not None:
        rest = {k: v for k, v in inputs.items() if k != "input_ids"}
        vision, _ = inner.get_rope_index(ids, **rest)
    else:
        vision = text[None].expand(3, -1, -1)
    return torch.cat([text[None], vision], dim=0)


def fixed_layers(model) -> frozenset[int]:
    """Cache layers whose rows are the same for every beam of a query: Llama 3.2 Vision's cross-attention
    layers hold the prompt's image states, never a generated token's."""
    if model.config.model_type not in FIXED_CROSS_ATTENTION:
        return frozenset()
    return frozenset(model.config.get_text_config(decoder=True).cross_attention_layers)


class DecodeState:
    """The cache and the growing per-row inputs of every row (``beams`` rows per live query)."""

    def __init__(self, cache, kwargs: dict[str, torch.Tensor], beams: int, fixed: frozenset[int] = frozenset()):
        self.cache, self.kwargs, self.beams, self.fixed = cache, kwargs, beams, fixed

    def _select(self, rows: torch.Tensor) -> None:
        for key, t in self.kwargs.items():
            self.kwargs[key] = t.index_select(_batch_dim(key, t), rows.to(t.device))

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues row ``rows[i]``, a row of the same query (search.py), so the ``fixed`` layers, equal
        across a query's rows, stay as they are (at 8 shots most of Llama 3.2 Vision's cache)."""
        for i, layer in enumerate(self.cache.layers):
            if i not in self.fixed:
                layer.reorder_cache(rows)
        self._select(rows)

    def branch(self, rows_per_query: int, room: int) -> DecodeState:
        """The same prompts continued afresh by ``rows_per_query`` rows each (rank's options, a chunk at a
        time). A transformers cache grows in place, so each branch continues its own copy of the prompt's
        cache and this state stays the prompt alone (``room`` is for caches with a fixed size; none here)."""
        cache = copy.deepcopy(self.cache)
        kwargs = dict(self.kwargs)
        if rows_per_query > 1:
            cache.batch_repeat_interleave(rows_per_query)
            kwargs = {k: v.repeat_interleave(rows_per_query, dim=_batch_dim(k, v)) for k, v in kwargs.items()}
        return DecodeState(cache, kwargs, self.beams * rows_per_query, self.fixed)

    def keep_queries(self, queries: torch.Tensor) -> None:
        rows = (queries[:, None] * self.beams + torch.arange(self.beams, device=queries.device)).flatten()
        self.cache.batch_select_indices(rows)
        self._select(rows)

    def grow(self, t: int) -> None:
        """The per-row inputs of ``t`` new text tokens, as ``generate`` extends them."""
        kw = self.kwargs
        for key, x in list(kw.items()):
            if key == "attention_mask":
                kw[key] = torch.cat([x, x.new_ones((x.shape[0], t))], dim=-1)
            elif key == "position_ids":
                step = torch.arange(1, t + 1, dtype=x.dtype, device=x.device).view(*([1] * (x.dim() - 1)), -1)
                kw[key] = torch.cat([x, x[..., -1:] + step], dim=-1)
            elif key == "token_type_ids":
                kw[key] = torch.cat([x, x[:, -1:].expand(-1, t)], dim=-1)
            elif key == "mm_token_type_ids":
                kw[key] = torch.cat([x, x.new_zeros((x.shape[0], t))], dim=-1)
            elif key == "cross_attention_mask":
                kw[key] = torch.cat([x, x[:, -1:].expand(-1, t, -1, -1)], dim=1)


def _forward(model, ids: torch.Tensor, cache, kwargs: dict[str, Any], first: bool, keep: int) -> torch.Tensor:
    inputs = model.prepare_inputs_for_generation(ids, cache=cache, use_cache=True, is_first_iteration=first,
                                                 logits_to_keep=keep, **kwargs)
    return model(**inputs).logits.float()


@torch.inference_mode()
def prefill(model, model_type: str, batch: dict[str, Any], rows: int) -> tuple[torch.Tensor, DecodeState]:
    """Every (left-padded) prompt once -> its last logits (B, V) in float32 and ``rows`` rows per prompt."""
    from transformers import DynamicCache

    device = model.device
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    ids = batch.pop("input_ids")
    pos = positions(model, model_type, ids, {"input_ids": ids, **batch})
    if pos is not None:
        batch["position_ids"] = pos
    cache = DynamicCache(config=model.config)
    logits = _forward(model, ids, cache, batch, True, 1)[:, -1]
    kwargs = {k: v for k, v in batch.items() if k in GROWING}
    if rows > 1:
        cache.batch_repeat_interleave(rows)
        kwargs = {k: v.repeat_interleave(rows, dim=_batch_dim(k, v)) for k, v in kwargs.items()}
    return logits, DecodeState(cache, kwargs, rows, fixed_layers(model))


@torch.inference_mode()
def extend(model, state: DecodeState, tokens: torch.Tensor, all_logits: bool) -> torch.Tensor:
    """Feed (R, t) new tokens; the last position's logits (R, V), or every position's (R, t, V), float32."""
    state.grow(tokens.shape[1])
    logits = _forward(model, tokens.to(model.device), state.cache, state.kwargs, False, 0 if all_logits else 1)
    return logits if all_logits else logits[:, -1]
