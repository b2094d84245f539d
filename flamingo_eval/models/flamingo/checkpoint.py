"""Reading OpenFlamingo checkpoint files safely and applying them with every key accounted for.

A released ``checkpoint.pt`` is a plain state dict holding the Perceiver, the cross-attention
blocks and the LM embeddings; the LM body comes from the LM directory and the vision tower from
open_clip. Only plain tensors are accepted (``torch.load(weights_only=True)`` or safetensors).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re

import torch
from torch import nn

from flamingo_eval.errors import WeightsError

# GPT-NeoX causal-mask buffers saved by older transformers (OpenFlamingo-4B): not weights.
IGNORED = re.compile(r"^lang_encoder\.gpt_neox\.layers\.\d+\.decoder_layer\.attention\.(bias|masked_bias)$")


def resolve_file(ref: str, what: str, base_dir: str | None = None) -> str:
    """A local path, or ``owner/repo/path/in/repo`` fetched through the Hugging Face cache."""
    candidates = [ref] if os.path.isabs(ref) or base_dir is None else [os.path.join(base_dir, ref), ref]
    for path in candidates:
        if os.path.isfile(path):
            return path
    parts = ref.split("/")
    if len(parts) < 3 or os.path.isabs(ref) or ref.startswith("."):
        raise WeightsError(f"{what}: file not found: {ref}")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(repo_id=repo_id, filename=filename)
    except Exception as e:  # offline, gated, missing: all mean "get the file yourself"
        reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise WeightsError(
            f"{what}: cannot get {filename} from hub repo {repo_id} ({reason}); download it "
            f"(huggingface-cli download {repo_id} {filename}) or set {what} to a local path in a model spec file"
        ) from None


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Plain tensors only; OpenFlamingo's ``{"model_state_dict": ...}`` training wrapper is unwrapped."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:
            raise WeightsError(f"checkpoint {path}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint {path}: file not found") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise WeightsError(f"checkpoint {path}: not a plain tensor state dict ({first})") from None
    if isinstance(obj, dict) and "model_state_dict" in obj and isinstance(obj["model_state_dict"], dict):
        obj = {k.removeprefix("module."): v for k, v in obj["model_state_dict"].items()}
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise WeightsError(f"checkpoint {path}: not a plain tensor state dict (expected a dict of name -> tensor)")
    return obj


def required_keys(model: nn.Module) -> set[str]:
    """What a Flamingo checkpoint must provide: Perceiver, cross-attention blocks, input embeddings."""
    own = model.state_dict()
    emb = model.lang_encoder.get_input_embeddings().weight
    emb_key = next(k for k, p in model.named_parameters() if p is emb)
    return {k for k in own if k.startswith("perceiver.") or ".gated_cross_attn_layer." in k} | {emb_key}


def rename_keys(state: dict[str, torch.Tensor], renames: tuple[tuple[str, str], ...], own: set[str]) -> dict[str, torch.Tensor]:
    """Checkpoint names -> this transformers version's names, only where the model uses the new name."""
    out = {}
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old) and key not in own and new + key[len(old):] in own:
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def apply_checkpoint(model: nn.Module, state: dict[str, torch.Tensor], path: str, must_have: set[str] = frozenset()) -> None:
    """Load ``state`` into ``model``; missing, unexpected or mis-shaped keys are one WeightsError."""
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not IGNORED.match(k)}
    state = rename_keys(state, model.family.renames, set(own))
    missing = sorted((required_keys(model) | set(must_have)) - set(state))
    unexpected = sorted(set(state) - set(own))
    problems = []
    if missing:
        problems.append(f"missing keys: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short(unexpected)}")
    bad_shape = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state.items() if k in own and v.shape != own[k].shape]
    if bad_shape:
        problems.append(f"shape mismatch: {_short(bad_shape)}")
    if problems:
        raise WeightsError(f"checkpoint {path} does not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)


def _short(items: list[str], limit: int = 8) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
