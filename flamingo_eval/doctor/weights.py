"""Where a model's weights are and how large they are, without loading the model.

Each part a model loads (an OpenFlamingo spec's language model, checkpoint and vision tower; a Hugging Face
model's one repository) is found locally, in the Hugging Face cache (looked up on disk only), or else on the
hub (one ``model_info`` request, the only network use; offline its size is unknown). Parameters are counted
from safetensors headers (the format's JSON header: no tensor is read) or a memory-mapped checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class Part:
    """One thing a model loads: a local file or folder, a hub repository's weights, or one file of a repository."""

    label: str
    ref: str  # a local path or a hub repository id
    local: bool
    filename: str | None = None  # one file of a hub repository (OpenFlamingo's checkpoint); else all its weights
    revision: str | None = None


@dataclass(frozen=True)
class Located:
    """A part, found: ``where`` is "local", "cached", "download" (the run fetches it) or "missing"."""

    part: Part
    where: str
    bytes: int | None = None
    params: int | None = None
    note: str = ""


def model_parts(spec: Any) -> list[Part]:
    """The parts a preset or spec file loads, as its adapter resolves them."""
    if hasattr(spec, "model"):  # a Hugging Face family: one model folder or repository
        return [Part("model", spec.model, os.path.isdir(spec.model), revision=spec.revision)]
    lm = spec.local(spec.lang_encoder)
    checkpoint = spec.local(spec.checkpoint)
    parts = [Part("language model", lm, os.path.isdir(lm))]
    if os.path.isfile(checkpoint):
        parts.append(Part("checkpoint", checkpoint, True))
    else:
        pieces = checkpoint.split("/")  # owner/repo/path/in/repo, as models.files.resolve_file reads it
        repo, filename = "/".join(pieces[:2]), "/".join(pieces[2:])
        parts.append(Part("checkpoint", repo, False, filename=filename))
    vision = _vision_part(spec)
    return parts + ([vision] if vision is not None else [])


def _vision_part(spec: Any) -> Part | None:
    """The tower's weights; None for a tower without pretrained weights (initialised, not loaded: not counted)."""
    name, tag = spec.vision_encoder["name"], spec.vision_encoder.get("pretrained")
    if name.startswith("local-dir:"):
        path = spec.local(name.removeprefix("local-dir:"))
        return Part("vision tower", path, os.path.isdir(path))
    if not tag:
        return None
    if os.path.isfile(spec.local(tag)):
        return Part("vision tower", spec.local(tag), True)
    import open_clip

    hub = (open_clip.get_pretrained_cfg(name, tag or "") or {}).get("hf_hub", "").strip("/")
    if not hub:
        return Part("vision tower", f"{name} ({tag})", False, filename="")
    return Part("vision tower", hub, False, filename="open_clip_model.safetensors")


def safetensors_params(path: str | os.PathLike) -> int:
    """Parameters in a safetensors file, from its header: 8 bytes little-endian length, then JSON."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def checkpoint_params(path: str | os.PathLike) -> int:
    """Parameters in a torch checkpoint, memory-mapped (plain tensors only, as the loaders read it)."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(obj, dict) and isinstance(obj.get("model_state_dict"), dict):
        obj = obj["model_state_dict"]
    return sum(v.numel() for v in obj.values() if isinstance(v, torch.Tensor)) if isinstance(obj, dict) else 0


def _weight_files(path: Path) -> list[Path]:
    """A folder's weight files, as a loader picks them: safetensors where any exist, else the others."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return safetensors or files


def _shards_missing(path: Path) -> list[str]:
    out = []
    for index in path.glob("*.index.json") if path.is_dir() else ():
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        out.extend(s for s in sorted(shards) if not (path / s).is_file())
    return out


def measure(part: Part, path: Path, where: str) -> Located:
    """Size and parameters of what lies at ``path`` (a folder or a file)."""
    files = _weight_files(path)
    if not files or _shards_missing(path):
        gone = _shards_missing(path)
        note = f"shards missing: {', '.join(gone[:3])}" if gone else "no weight files"
        return Located(part, "missing" if where == "local" else "download", note=f"{path}: {note}")
    size = sum(f.stat().st_size for f in files)
    params = sum(safetensors_params(f) if f.suffix == ".safetensors" else checkpoint_params(f) for f in files)
    return Located(part, where, size, params, str(path))


def _cached(part: Part) -> Path | None:
    """The part in the Hugging Face cache, looked up on disk only."""
    import huggingface_hub

    if part.filename is not None:
        if not part.filename:
            return None
        found = huggingface_hub.try_to_load_from_cache(part.ref, part.filename, revision=part.revision)
        return Path(found) if isinstance(found, str) else None
    try:
        folder = Path(huggingface_hub.snapshot_download(part.ref, revision=part.revision, local_files_only=True))
    except Exception:  # not cached (or not a valid id): the hub listing says which
        return None
    return folder if _weight_files(folder) and not _shards_missing(folder) else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _on_hub(part: Part) -> Located:
    """What a run would download: the hub's file listing (sizes and, for safetensors, parameter counts)."""
    if hub_offline():
        return Located(part, "missing", note="not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    if part.filename == "":
        return Located(part, "download", note="open_clip fetches it on first use; size unknown")
    import huggingface_hub

    try:
        info = huggingface_hub.model_info(part.ref, revision=part.revision, files_metadata=True, timeout=10)
    except Exception as e:  # offline, gated, unknown repository: size unknown, said once
        reason = str(e).splitlines()[0][:120] if str(e) else e.__class__.__name__
        return Located(part, "download", note=f"size unknown: the hub did not answer ({reason})")
    siblings = {s.rfilename: s.size for s in info.siblings or ()}
    if part.filename is not None:
        wanted = [part.filename] if part.filename in siblings else []
    else:
        top = [n for n in siblings if "/" not in n and n.endswith(WEIGHT_SUFFIXES)]
        wanted = [n for n in top if n.endswith(".safetensors")] or top
    if not wanted:
        return Located(part, "missing", note=f"the hub repository {part.ref} has no {part.filename or 'weights'}")
    size = sum(siblings[n] or 0 for n in wanted)
    params = info.safetensors.total if info.safetensors and part.filename is None else None
    return Located(part, "download", size, params)


def locate(part: Part) -> Located:
    """Local, cached, or to download (with its size where the hub says it)."""
    if part.local:
        return measure(part, Path(part.ref), "local")
    cached = _cached(part)
    return measure(part, cached, "cached") if cached is not None else _on_hub(part)
