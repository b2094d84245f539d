"""Reading weight files safely, local or through the Hugging Face cache: plain tensors only.

Checkpoints load with ``torch.load(weights_only=True)`` or safetensors, so no pickled code ever runs; a
missing file is one error naming where it was looked for and how to provide it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import torch

from flamingo_eval.errors import WeightsError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


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


def _file(path: str, name: str, revision: str | None = None) -> str | None:
    if os.path.isdir(path):
        candidate = os.path.join(path, name)
        return candidate if os.path.isfile(candidate) else None
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(repo_id=path, filename=name, revision=revision)
    except Exception:
        return None


def read_weights(path: str, revision: str | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of a local directory or hub repo (one file or shards, safetensors or plain pickle)."""
    for name in WEIGHT_FILES:
        found = _file(path, name, revision)
        if found is None:
            continue
        if not name.endswith(".index.json"):
            return read_state_dict(found)
        with open(found) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            shard_file = _file(path, shard, revision)
            if shard_file is None:
                raise WeightsError(f"lang_encoder {path}: shard {shard} is missing")
            state.update(read_state_dict(shard_file))
        return state
    raise WeightsError(
        f"lang_encoder {path}: no weights found ({', '.join(WEIGHT_FILES)}); "
        "download them into the HF cache or point lang_encoder at a local directory"
    )


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_directory(model: str, revision: str | None = None) -> str:
    """A local model directory, or the hub cache's snapshot of ``model`` (no download)."""
    if os.path.isdir(model):
        return model
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id=model, revision=revision, local_files_only=True)
    except Exception as e:  # not cached: the model could not have loaded either
        raise WeightsError(f"{model}: not in the Hugging Face cache ({e.__class__.__name__})") from None


def weights_sha256(model: str, revision: str | None = None) -> str:
    """One sha256 over a model directory's weight and config files (what results record, and what keys the
    resume log). A hub-cache file is a link to a blob named by its content's sha256, which is used as is;
    any other file is hashed."""
    directory = model_directory(model, revision)
    h = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".safetensors", ".bin", ".json")):
            continue
        path = os.path.join(directory, name)
        blob = os.path.basename(os.path.realpath(path))
        digest = blob if os.path.islink(path) and len(blob) == 64 else file_sha256(path)
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()
