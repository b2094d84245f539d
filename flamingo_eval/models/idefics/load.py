"""A loaded transformers ``IdeficsForVisionText2Text`` -> the project's ``Idefics`` holding the same tensors.

transformers reads the checkpoint (``from_pretrained``, public API); its vision tower and Perceiver are kept
as whole modules, and every other tensor is mapped, by an exhaustive key map, onto the project's LLaMA
(models/lm) and gated cross-attention layers: a key left over or missing is one error listing it. The
decoupled embedding and output layers (the base vocabulary plus the additional tokens) become one matrix each.
"""

from __future__ import annotations

import torch

from flamingo_eval.errors import WeightsError, listing
from flamingo_eval.models.idefics.model import Idefics
from flamingo_eval.models.lm.config import LMConfig, from_hf
from flamingo_eval.models.lm.decoder import DecoderLM
from flamingo_eval.models.lm.weights import to_project

VISION_PREFIXES = ("model.vision_model.", "model.perceiver_resampler.")
CROSS = "model.gated_cross_attn_layers."
# ours <- theirs, within one gated cross-attention layer
CROSS_KEYS = {
    "input_norm.weight": "input_layernorm.weight",
    "q.weight": "cross_attn.q_proj.weight",
    "k.weight": "cross_attn.k_proj.weight",
    "v.weight": "cross_attn.v_proj.weight",
    "out.weight": "cross_attn.o_proj.weight",
    "attn_gate": "alpha_cross_attn",
    "post_norm.weight": "post_attention_layernorm.weight",
    "mlp.gate.weight": "mlp.gate_proj.weight",
    "mlp.up.weight": "mlp.up_proj.weight",
    "mlp.down.weight": "mlp.down_proj.weight",
    "dense_gate": "alpha_dense",
}
QK_NORM_KEYS = {"q_norm.weight": "cross_attn.q_layer_norm.weight", "k_norm.weight": "cross_attn.k_layer_norm.weight"}


def lm_config(config) -> LMConfig:
    """The LLaMA inside an ``IdeficsConfig``; its vocabulary includes the additional tokens."""
    return from_hf({
        "model_type": "llama", "vocab_size": config.vocab_size + config.additional_vocab_size,
        "hidden_size": config.hidden_size, "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_hidden_layers, "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.num_attention_heads, "hidden_act": config.hidden_act,
        "rms_norm_eps": config.rms_norm_eps, "max_position_embeddings": config.max_position_embeddings,
        "rope_parameters": dict(config.rope_parameters or {}), "tie_word_embeddings": False,
    }, "idefics")


def _joined(state: dict[str, torch.Tensor], base: str, extra: str, additional: int) -> torch.Tensor:
    """A decoupled layer as one matrix: the base rows, then the additional tokens' rows."""
    if additional == 0:
        state.pop(extra, None)
        return state.pop(base)
    return torch.cat([state.pop(base), state.pop(extra)], dim=0)


def from_transformers(hf, where: str) -> Idefics:
    """``hf``: a loaded ``IdeficsForVisionText2Text`` (any dtype). The result shares its tensors (the fused
    q/k/v and the joined vocabulary matrices aside); ``hf`` itself can then be dropped."""
    config = hf.config
    lm = lm_config(config)
    state = dict(hf.state_dict())
    missing = [k for k in ("model.embed_tokens.weight", "lm_head.weight") if k not in state]
    if missing:
        raise WeightsError(f"idefics {where}: weights lack {listing(missing)}")
    extra = config.additional_vocab_size
    text = {
        "model.embed_tokens.weight": _joined(state, "model.embed_tokens.weight",
                                             "model.embed_tokens.additional_embedding.weight", extra),
        "lm_head.weight": _joined(state, "lm_head.weight", "lm_head.additional_fc.weight", extra),
    }
    for key in [k for k in state if k.startswith(("model.layers.", "model.norm."))]:
        text[key] = state.pop(key)
    ours = {f"lm.{k}": v for k, v in to_project(lm, text, where).items()}

    interval = config.cross_layer_interval
    keys = dict(CROSS_KEYS, **(QK_NORM_KEYS if config.qk_layer_norms else {}))
    for j in range(config.num_hidden_layers // interval):
        for mine, theirs in keys.items():
            source = f"{CROSS}{j}.{theirs}"
            if source not in state:
                raise WeightsError(f"idefics {where}: weights lack {source}")
            ours[f"xattn.{j * interval}.{mine}"] = state.pop(source)
    left = sorted(k for k in state if not k.startswith(VISION_PREFIXES))
    if left:
        raise WeightsError(f"idefics {where}: weights not used by the Idefics layout: {listing(left)}")

    perceiver = hf.model.perceiver_resampler if config.use_resampler else None
    vision_width = config.vision_config.embed_dim
    latents = (config.perceiver_config.resampler_n_latents if config.use_resampler
               else (config.vision_config.image_size // config.vision_config.patch_size) ** 2 + 1)
    gate_shape = tuple(ours["xattn.0.attn_gate"].shape) if "xattn.0.attn_gate" in ours else (1,)
    with torch.device("meta"):
        model = Idefics(None, None, DecoderLM(lm), interval, vision_width, latents, config.qk_layer_norms, gate_shape)
    unexpected = model.load_state_dict(ours, strict=False, assign=True).unexpected_keys
    if unexpected:
        raise WeightsError(f"idefics {where}: mapped onto no parameter: {listing(unexpected)}")
    model.vision, model.perceiver = hf.model.vision_model, perceiver
    _check_filled(model, where)
    return model.eval()


def _check_filled(model: Idefics, where: str) -> None:
    empty = [name for name, p in model.named_parameters() if p.is_meta]
    if empty:
        raise WeightsError(f"idefics {where}: no weights for {listing(empty)}")
