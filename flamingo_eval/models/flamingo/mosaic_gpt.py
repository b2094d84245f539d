"""MosaicGPT (``anas-awadalla/mpt-1b-redpajama-200b``, the LM of OpenFlamingo-3B) without remote code.

MosaicGPT is MPT's predecessor: ALiBi, no biases, exact GELU MLP, output tied to ``wte``, plus
LayerNorm on queries and keys over the full width (``attn_qk_ln``). We build transformers'
``MptForCausalLM`` from its config, add the q/k LayerNorms, and rename its weights:

    ln_1 -> norm_1, ln_2 -> norm_2, ln_f -> norm_f, mlp.mlp_up -> ffn.up_proj, mlp.mlp_down -> ffn.down_proj

Options this mapping cannot express (biases, learned positions, logit scaling, another MLP ratio
or ALiBi maximum) are refused with a ConfigError rather than approximated.
"""

from __future__ import annotations

import json
import os
import re

import torch
from torch import nn

from flamingo_eval.errors import ConfigError, WeightsError

RENAMES = [
    (r"\.ln_1\.", ".norm_1."),
    (r"\.ln_2\.", ".norm_2."),
    (r"^transformer\.ln_f\.", "transformer.norm_f."),
    (r"\.mlp\.mlp_up\.", ".ffn.up_proj."),
    (r"\.mlp\.mlp_down\.", ".ffn.down_proj."),
]
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def mpt_config(cfg: dict, where: str):
    """The equivalent MptConfig; anything MPT cannot express is a ConfigError."""
    from transformers import MptConfig

    def need(key, expected, default):
        if cfg.get(key, default) != expected:
            raise ConfigError(f"lang_encoder {where}: MosaicGPT with {key}={cfg.get(key)!r} is not supported (need {expected!r})")

    need("alibi", True, False)
    need("no_bias", True, False)
    need("mlp_ratio", 4, 4)
    need("alibi_bias_max", 8, 8)
    need("logit_scale", None, None)
    need("prefix_lm", False, False)
    return MptConfig(
        d_model=cfg["d_model"],
        n_heads=cfg["n_heads"],
        n_layers=cfg["n_layers"],
        expansion_ratio=4,
        max_seq_len=cfg["max_seq_len"],
        vocab_size=cfg["vocab_size"],
        layer_norm_epsilon=1e-5,
        attn_config={"softmax_scale": cfg.get("softmax_scale"), "clip_qkv": None, "alibi": True},
        tie_word_embeddings=True,
    )


class QKNormedWqkv(nn.Linear):
    """The fused qkv projection followed by MosaicGPT's clip and q/k LayerNorms.

    The norms are registered on the attention module (``attn.q_ln``, ``attn.k_ln``) and only
    referenced here, so the parameter names stay MosaicGPT's.
    """

    def __init__(self, linear: nn.Linear, q_ln: nn.LayerNorm, k_ln: nn.LayerNorm, clip: float | None):
        super().__init__(linear.in_features, linear.out_features, bias=False)
        self.weight = linear.weight
        self.clip = clip
        self._norms = (q_ln, k_ln)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = super().forward(x)
        if self.clip:
            qkv = qkv.clamp(min=-self.clip, max=self.clip)
        q, k, v = qkv.chunk(3, dim=-1)
        q_ln, k_ln = self._norms
        return torch.cat([q_ln(q), k_ln(k), v], dim=-1)


def add_qk_norms(model: nn.Module, clip: float | None) -> None:
    d = model.config.d_model
    for block in model.transformer.blocks:
        attn = block.attn
        attn.q_ln = nn.LayerNorm(d, eps=1e-5, bias=False)
        attn.k_ln = nn.LayerNorm(d, eps=1e-5, bias=False)
        attn.Wqkv = QKNormedWqkv(attn.Wqkv, attn.q_ln, attn.k_ln, clip)


def rename(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, repl in RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def _file(path: str, name: str) -> str | None:
    if os.path.isdir(path):
        candidate = os.path.join(path, name)
        return candidate if os.path.isfile(candidate) else None
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(repo_id=path, filename=name)
    except Exception:
        return None


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """All tensors of a local directory or hub repo (single file or sharded, safetensors or plain pickle)."""
    from flamingo_eval.models.flamingo.checkpoint import read_state_dict

    for name in WEIGHT_FILES:
        found = _file(path, name)
        if found is None:
            continue
        if not name.endswith(".index.json"):
            return read_state_dict(found)
        with open(found) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            shard_file = _file(path, shard)
            if shard_file is None:
                raise WeightsError(f"lang_encoder {path}: shard {shard} is missing")
            state.update(read_state_dict(shard_file))
        return state
    raise WeightsError(
        f"lang_encoder {path}: no weights found ({', '.join(WEIGHT_FILES)}); "
        "download them into the HF cache or point lang_encoder at a local directory"
    )


def load_mosaic_gpt(path: str, cfg: dict) -> nn.Module:
    """An MptForCausalLM computing what MosaicGPT computes, with MosaicGPT's weights."""
    from transformers import MptForCausalLM

    model = MptForCausalLM(mpt_config(cfg, path))
    if cfg.get("attn_qk_ln"):
        add_qk_norms(model, cfg.get("attn_clip_qkv"))
    elif cfg.get("attn_clip_qkv"):
        raise ConfigError(f"lang_encoder {path}: MosaicGPT with attn_clip_qkv but no attn_qk_ln is not supported")
    state = rename(read_weights(path))
    state.setdefault("lm_head.weight", state.get("transformer.wte.weight"))  # tied
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(f"lang_encoder {path}: MosaicGPT weights do not match (missing {missing[:6]}, unexpected {unexpected[:6]})")
    model.load_state_dict(state)
    model.tie_weights()
    return model.eval()
