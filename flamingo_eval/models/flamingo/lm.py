"""The language model: a transformers causal LM whose decoder layers gain gated cross-attention.

Supported families (no remote code): MPT (``MptForCausalLM``), GPT-NeoX and Llama. Each decoder
layer is wrapped in a ``FlamingoLayer`` that runs its cross-attention block (if any) BEFORE the
original layer, so the state-dict keys are OpenFlamingo's
(``<layers>.{i}.gated_cross_attn_layer.*`` and ``<layers>.{i}.decoder_layer.*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models.flamingo.sizes import OPENFLAMINGO, FlamingoSizes
from flamingo_eval.models.flamingo.xattn import GatedCrossAttentionBlock

END_OF_CHUNK = "<|endofchunk|>"
IMAGE = "<image>"
PAD = "<PAD>"


@dataclass(frozen=True)
class Family:
    """What differs between LM families: the class, where the decoder layers live, rotary positions."""

    name: str
    model_class: str
    layers_attr: str
    uses_position_ids: bool
    # OpenFlamingo checkpoint key prefix -> this transformers version's name for it
    renames: tuple[tuple[str, str], ...] = ()


FAMILIES = {
    "mpt": Family("mpt", "MptForCausalLM", "transformer.blocks", uses_position_ids=False),
    "gpt_neox": Family(
        "gpt_neox", "GPTNeoXForCausalLM", "gpt_neox.layers", uses_position_ids=True,
        renames=(("lang_encoder.embed_out.", "lang_encoder.lm_head."),),
    ),
    "llama": Family("llama", "LlamaForCausalLM", "model.layers", uses_position_ids=True),
}


@dataclass
class CrossAttnState:
    """What the cross-attention layers see during one LM forward: media K/V per layer and token times."""

    media_kv: list[tuple[torch.Tensor, torch.Tensor] | None] = field(default_factory=list)
    times: torch.Tensor | None = None
    n_latents: int = 64
    cache: Any = None  # the self-attention KV cache of this pass (shared_attention reads its prompt part)


class FlamingoLayer(nn.Module):
    """Optional gated cross-attention, then the LM's own decoder layer (called unchanged)."""

    def __init__(self, index: int, gated_cross_attn_layer: GatedCrossAttentionBlock | None, decoder_layer: nn.Module, state: CrossAttnState):
        super().__init__()
        self.index = index
        self.gated_cross_attn_layer = gated_cross_attn_layer
        self.decoder_layer = decoder_layer
        self._state = state

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        if self.gated_cross_attn_layer is not None:
            st = self._state
            if st.times is None:
                raise RuntimeError("FlamingoLayer called outside Flamingo.forward (no media conditioning)")
            hidden_states = self.gated_cross_attn_layer(hidden_states, st.media_kv[self.index], st.times, st.n_latents)
        return self.decoder_layer(hidden_states, *args, **kwargs)


def get_attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def set_attr(obj, dotted: str, value) -> None:
    head, _, last = dotted.rpartition(".")
    setattr(get_attr(obj, head) if head else obj, last, value)


MOSAIC_GPT = "mosaic_gpt"  # OpenFlamingo-3B's LM, mapped onto MPT (mosaic_gpt.py)


def detect_family(config_dict: dict, where: str) -> Family:
    model_type = config_dict.get("model_type", "")
    if model_type == MOSAIC_GPT:
        return FAMILIES["mpt"]
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    raise ConfigError(
        f"lang_encoder {where}: model_type {model_type!r} is not supported (supported: {', '.join(sorted(FAMILIES))})"
    )


def load_config_dict(path: str) -> dict:
    from transformers import PretrainedConfig

    try:
        config_dict, _ = PretrainedConfig.get_config_dict(path)
    except OSError as e:
        raise WeightsError(
            f"lang_encoder {path}: cannot read config.json ({str(e).splitlines()[0]}); "
            "download it into the HF cache or point lang_encoder at a local directory"
        ) from None
    return config_dict


def load_language_model(path: str, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, Family]:
    """The causal LM with its native transformers class (never remote code)."""
    import transformers

    config_dict = load_config_dict(path)
    family = detect_family(config_dict, path)
    if config_dict.get("model_type") == MOSAIC_GPT:
        from flamingo_eval.models.flamingo.mosaic_gpt import load_mosaic_gpt

        return load_mosaic_gpt(path, config_dict).to(dtype), family
    if family.name == "mpt":
        check_mpt_config(config_dict, path)
    cls = getattr(transformers, family.model_class)
    try:
        model = cls.from_pretrained(path, dtype=dtype)
    except OSError as e:
        raise WeightsError(
            f"lang_encoder {path}: cannot load weights ({str(e).splitlines()[0]}); "
            "download them into the HF cache or point lang_encoder at a local directory"
        ) from None
    model.eval()
    return model, family


def check_mpt_config(config_dict: dict, where: str) -> None:
    """transformers' MPT silently ignores some MPT options: refuse checkpoints that use them."""
    attn = config_dict.get("attn_config") or {}
    problems = []
    if attn.get("qk_ln"):
        problems.append("qk_ln")
    if not attn.get("alibi", True):
        problems.append("alibi=false")
    if attn.get("alibi_bias_max", 8) != 8:
        problems.append(f"alibi_bias_max={attn['alibi_bias_max']}")
    if config_dict.get("no_bias", True) is False:
        problems.append("no_bias=false")
    if config_dict.get("logit_scale") is not None:
        problems.append(f"logit_scale={config_dict['logit_scale']}")
    if problems:
        raise ConfigError(f"lang_encoder {where}: MPT options not supported by transformers' MPT: {', '.join(problems)}")


def load_tokenizer(path: str):
    """The LM tokenizer with OpenFlamingo's tokens added exactly as OpenFlamingo adds them."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise WeightsError(
            f"tokenizer {path}: cannot load ({str(e).splitlines()[0]}); "
            "download it into the HF cache or point tokenizer at a local directory"
        ) from None
    add_flamingo_tokens(tok)
    return tok


def add_flamingo_tokens(tok) -> None:
    """``<|endofchunk|>`` and ``<image>`` as additional special tokens, then ``<PAD>`` if there is no pad token."""
    tok.add_special_tokens({"additional_special_tokens": [END_OF_CHUNK, IMAGE]})
    if tok.pad_token is None:
        tok.add_special_tokens({"pad_token": PAD})
    tok.padding_side = "left"


# What transformers < 4.45 did to decoded text unless the tokenizer config said otherwise. OpenFlamingo's
# published numbers were made that way (transformers 4.28-4.33); transformers 5 skips it for BPE.
LEGACY_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                  (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def cleans_up_spaces(tok) -> bool:
    """Whether decoding removes spaces before punctuation: the config's value, else the old default (yes)."""
    value = tok.init_kwargs.get("clean_up_tokenization_spaces")
    return True if value is None else bool(value)


def clean_up_spaces(text: str) -> str:
    for before, after in LEGACY_CLEANUP:
        text = text.replace(before, after)
    return text


def resize_embeddings(model: nn.Module, n_tokens: int) -> None:
    """As OpenFlamingo: resize to len(tokenizer); usually this SHRINKS a padded vocabulary."""
    model.resize_token_embeddings(n_tokens, mean_resizing=False)


def add_cross_attention(
    model: nn.Module, family: Family, dim_visual: int, every_n: int, state: CrossAttnState,
    sizes: FlamingoSizes = OPENFLAMINGO,
) -> list[GatedCrossAttentionBlock | None]:
    """Wrap every decoder layer; layer i gets a cross-attention block when (i + 1) % every_n == 0."""
    if every_n < 1:
        raise ConfigError(f"cross_attn_every_n_layers must be >= 1, got {every_n}")
    layers = get_attr(model, family.layers_attr)
    dim = model.config.hidden_size
    blocks = [
        GatedCrossAttentionBlock(dim, dim_visual, dim_head=sizes.xattn_dim_head, heads=sizes.xattn_heads)
        if (i + 1) % every_n == 0 else None
        for i in range(len(layers))
    ]
    wrapped = nn.ModuleList(FlamingoLayer(i, blocks[i], layer, state) for i, layer in enumerate(layers))
    set_attr(model, family.layers_attr, wrapped)
    return blocks


def cache_argument(model: nn.Module) -> str:
    """The name under which this transformers version's causal LM takes its KV cache (``cache`` from 5.24)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise ConfigError(f"{type(model).__name__}.forward takes no KV cache argument (cache / past_key_values) in this "
                      "transformers version; see the supported range in pyproject.toml")


def position_ids(attention_mask: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift rotary positions."""
    pos = attention_mask.long().cumsum(-1) - 1
    pos = pos.masked_fill(attention_mask == 0, 1)
    return pos[:, -new_tokens:]
