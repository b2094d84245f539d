"""Reading OpenFlamingo checkpoint files safely and applying them with every key accounted for.

A released ``checkpoint.pt`` is a plain state dict holding the Perceiver, the cross-attention
blocks and the LM embeddings, under OpenFlamingo's names (mapped here onto the model's); the LM body comes
from the LM directory and the vision tower from open_clip. Only plain tensors are accepted (``torch.load(weights_only=True)`` or safetensors).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from flamingo_eval.errors import WeightsError, listing
from flamingo_eval.models.lm.weights import NOT_WEIGHTS, some_to_project, to_published

# OpenFlamingo's name for the LM's list of decoder layers, which its cross-attention blocks were attached to
LAYER_LISTS = {"mpt": "transformer.blocks", "mosaic_gpt": "transformer.blocks", "gpt_neox": "gpt_neox.layers",
               "llama": "model.layers", "mistral": "model.layers"}


def to_project_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """OpenFlamingo's checkpoint names -> the model's, and the keys that name nothing in it.

    ``lang_encoder.<layers>.{i}.gated_cross_attn_layer.*`` is cross-attention block i; other ``lang_encoder.*``
    keys are the LM's published names (OpenFlamingo wraps each layer as ``.decoder_layer.``), mapped by the
    LM's key map; ``perceiver.*`` and ``vision_encoder.*`` keep their names."""
    config = model.lm.config
    block = re.compile(rf"^lang_encoder\.{re.escape(LAYER_LISTS[config.family])}\.(\d+)\.gated_cross_attn_layer\.(.+)$")
    ours: dict[str, torch.Tensor] = {}
    lm_part: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = block.match(key)
        if m:
            ours[f"xattn.{m[1]}.{m[2]}"] = value
        elif key.startswith("lang_encoder."):
            lm_part[key.removeprefix("lang_encoder.").replace(".decoder_layer.", ".", 1)] = value
        else:
            ours[key] = value
    mapped, unknown = some_to_project(config, lm_part)
    ours.update({f"lm.{k}": v for k, v in mapped.items()})
    return ours, [f"lang_encoder.{k}" for k in unknown]


def to_openflamingo_keys(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a released checkpoint.pt holds, under OpenFlamingo's names: Perceiver, cross-attention blocks,
    input embedding (and an untied output embedding)."""
    config = model.lm.config
    layers = LAYER_LISTS[config.family]
    out = {k: v for k, v in model.state_dict().items() if k.startswith("perceiver.")}
    for i, block in model.xattn.items():
        out.update({f"lang_encoder.{layers}.{i}.gated_cross_attn_layer.{k}": v for k, v in block.state_dict().items()})
    lm = {"embed.weight": model.lm.embed.weight} | ({} if model.lm.head is None else {"head.weight": model.lm.head.weight})
    out.update({f"lang_encoder.{k}": v for k, v in to_published(config, lm, partial=True).items()})
    return out


def required_keys(model: nn.Module) -> set[str]:
    """What a Flamingo checkpoint must provide: Perceiver, cross-attention blocks, input embeddings."""
    return {k for k in model.state_dict() if k.startswith(("perceiver.", "xattn."))} | {"lm.embed.weight"}


def apply_checkpoint(model: nn.Module, state: dict[str, torch.Tensor], path: str, must_have: set[str] = frozenset()) -> None:
    """Load ``state`` into ``model`` (assigned, in the model's dtype); missing, unexpected or mis-shaped keys are
    one WeightsError. The Perceiver and cross-attention may be on the meta device until then."""
    own = model.state_dict()
    ours, unknown = to_project_keys(model, {k: v for k, v in state.items() if not NOT_WEIGHTS.search(k)})
    missing = sorted((required_keys(model) | set(must_have)) - set(ours))
    unexpected = sorted(unknown + [k for k in ours if k not in own])
    problems = []
    if missing:
        problems.append(f"missing keys: {listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {listing(unexpected)}")
    bad_shape = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in ours.items() if k in own and v.shape != own[k].shape]
    if bad_shape:
        problems.append(f"shape mismatch: {listing(bad_shape)}")
    if problems:
        raise WeightsError(f"checkpoint {path} does not match the model: " + "; ".join(problems))
    dtype = model.lm.embed.weight.dtype
    model.load_state_dict({k: v.to(dtype) for k, v in ours.items()}, strict=False, assign=True)
