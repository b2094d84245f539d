"""An LM directory's published tensors onto the decoder's parameters, and back.

Each family's key map names, for every parameter of ``DecoderLM``, the tensors of the published layout it
is made of (a fused q/k/v projection from three, or from GPT-NeoX's per-head interleaving); every key of
the files must be used or be a known non-weight (stale buffers), every parameter filled. Anything else is
one error that lists the keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from flamingo_eval.errors import WeightsError, listing
from flamingo_eval.models.lm.config import LMConfig

# buffers some transformers versions saved beside the weights: causal masks, rotary tables
NOT_WEIGHTS = re.compile(r"\.(attention\.bias|attention\.masked_bias|attention\.rotary_emb\.inv_freq|"
                         r"self_attn\.rotary_emb\.inv_freq)$")


@dataclass(frozen=True)
class Entry:
    """One parameter of ours: made from ``sources`` (published names) by ``join``, and back by ``split``."""

    ours: str
    sources: tuple[str, ...]
    join: Callable[..., torch.Tensor] = lambda t: t
    split: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] = lambda t: (t,)


def _cat(*parts: torch.Tensor) -> torch.Tensor:
    return torch.cat(parts, dim=0)


def _splitter(sizes: list[int]) -> Callable[[torch.Tensor], tuple[torch.Tensor, ...]]:
    return lambda t: tuple(t.split(sizes, dim=0))


def _neox_qkv(heads: int, head_dim: int) -> tuple[Callable, Callable]:
    """GPT-NeoX stores rows as (heads, [q, k, v], head_dim); ours are ([q, k, v], heads, head_dim)."""

    def join(t: torch.Tensor) -> torch.Tensor:
        return t.view(heads, 3, head_dim, *t.shape[1:]).transpose(0, 1).reshape(t.shape)

    def split(t: torch.Tensor) -> tuple[torch.Tensor]:
        return (t.view(3, heads, head_dim, *t.shape[1:]).transpose(0, 1).reshape(t.shape),)

    return join, split


def key_map(config: LMConfig) -> list[Entry]:
    """Every parameter of ``DecoderLM(config)`` with its published source keys."""
    entries: list[Entry] = []

    def add(ours: str, *sources: str, join=None, split=None) -> None:
        entries.append(Entry(ours, sources, *(f for f in (join, split) if f is not None)))

    def biased(ours: str, source: str, bias: bool) -> None:
        add(f"{ours}.weight", f"{source}.weight")
        if bias:
            add(f"{ours}.bias", f"{source}.bias")

    f = config.family
    if f in ("mpt", "mosaic_gpt"):
        mosaic = f == "mosaic_gpt"
        add("embed.weight", "transformer.wte.weight")
        add("norm.weight", "transformer.ln_f.weight" if mosaic else "transformer.norm_f.weight")
        for i in range(config.layers):
            src, us = f"transformer.blocks.{i}.", f"layers.{i}."
            add(us + "norm_1.weight", src + ("ln_1.weight" if mosaic else "norm_1.weight"))
            add(us + "attn.qkv.weight", src + "attn.Wqkv.weight")
            add(us + "attn.out.weight", src + "attn.out_proj.weight")
            if config.qk_norm:
                add(us + "attn.q_norm.weight", src + "attn.q_ln.weight")
                add(us + "attn.k_norm.weight", src + "attn.k_ln.weight")
            add(us + "norm_2.weight", src + ("ln_2.weight" if mosaic else "norm_2.weight"))
            add(us + "mlp.up.weight", src + ("mlp.mlp_up.weight" if mosaic else "ffn.up_proj.weight"))
            add(us + "mlp.down.weight", src + ("mlp.mlp_down.weight" if mosaic else "ffn.down_proj.weight"))
    elif f == "gpt_neox":
        join, split = _neox_qkv(config.heads, config.head_dim)
        add("embed.weight", "gpt_neox.embed_in.weight")
        biased("norm", "gpt_neox.final_layer_norm", True)
        for i in range(config.layers):
            src, us = f"gpt_neox.layers.{i}.", f"layers.{i}."
            biased(us + "norm_1", src + "input_layernorm", True)
            add(us + "attn.qkv.weight", src + "attention.query_key_value.weight", join=join, split=split)
            if config.attn_bias:
                add(us + "attn.qkv.bias", src + "attention.query_key_value.bias", join=join, split=split)
            biased(us + "attn.out", src + "attention.dense", config.attn_bias)
            biased(us + "norm_2", src + "post_attention_layernorm", True)
            biased(us + "mlp.up", src + "mlp.dense_h_to_4h", config.mlp_bias)
            biased(us + "mlp.down", src + "mlp.dense_4h_to_h", config.mlp_bias)
    else:  # llama, mistral
        sizes = [config.heads * config.head_dim, config.kv_heads * config.head_dim, config.kv_heads * config.head_dim]
        add("embed.weight", "model.embed_tokens.weight")
        add("norm.weight", "model.norm.weight")
        for i in range(config.layers):
            src, us = f"model.layers.{i}.", f"layers.{i}."
            add(us + "norm_1.weight", src + "input_layernorm.weight")
            for kind in ("weight", "bias") if config.attn_bias else ("weight",):
                add(f"{us}attn.qkv.{kind}", *(f"{src}self_attn.{p}_proj.{kind}" for p in "qkv"), join=_cat,
                    split=_splitter(sizes))
            biased(us + "attn.out", src + "self_attn.o_proj", config.attn_bias)
            add(us + "norm_2.weight", src + "post_attention_layernorm.weight")
            biased(us + "mlp.gate", src + "mlp.gate_proj", config.mlp_bias)
            biased(us + "mlp.up", src + "mlp.up_proj", config.mlp_bias)
            biased(us + "mlp.down", src + "mlp.down_proj", config.mlp_bias)
    if not config.tied_head:
        add("head.weight", "embed_out.weight" if f == "gpt_neox" else "lm_head.weight")
    return entries


# GPT-NeoX's output matrix is ``embed_out`` on the hub, ``lm_head`` as transformers 5 saves it
ALIASES = {"gpt_neox": {"lm_head.weight": "embed_out.weight"}}


def _published_names(config: LMConfig, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {ALIASES.get(config.family, {}).get(k, k): v for k, v in state.items() if not NOT_WEIGHTS.search(k)}
    if config.tied_head:
        state.pop("lm_head.weight", None)  # tied: transformers saves it or not, the embedding is what counts
    return state


def to_project(config: LMConfig, state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Published tensors -> ours. Unused keys (known non-weights aside), missing keys and wrong shapes fail."""
    state = _published_names(config, state)
    entries = key_map(config)
    wanted = {s for e in entries for s in e.sources}
    missing = sorted(wanted - set(state))
    unexpected = sorted(set(state) - wanted)
    if missing or unexpected:
        raise WeightsError(f"lang_encoder {where}: weights do not match the {config.family} layout "
                           f"(missing {listing(missing)}; unexpected {listing(unexpected)})")
    return {e.ours: e.join(*(state[s] for s in e.sources)) for e in entries}


def some_to_project(config: LMConfig, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Part of an LM's published tensors (what a Flamingo checkpoint carries: its embeddings) -> ours, and the
    keys that are not the family's (or that lack the rest of a fused group)."""
    state = _published_names(config, state)
    out, used = {}, set()
    for e in key_map(config):
        if all(s in state for s in e.sources):
            out[e.ours] = e.join(*(state[s] for s in e.sources))
            used.update(e.sources)
    return out, sorted(set(state) - used)


def to_published(config: LMConfig, ours: dict[str, torch.Tensor], partial: bool = False) -> dict[str, torch.Tensor]:
    """Ours -> the published layout (what an LM directory holds), for exporting a model the project trained;
    ``partial``: only the parameters given."""
    out: dict[str, torch.Tensor] = {}
    for e in key_map(config):
        if e.ours in ours or not partial:
            out.update(zip(e.sources, e.split(ours[e.ours]), strict=True))
    return out
