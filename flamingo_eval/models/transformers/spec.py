"""Model specs of the ``transformers`` family: a checkpoint, its prompt format and processor options.

    family: transformers
    model: Qwen/Qwen2.5-VL-7B-Instruct   # hub id or a local directory (config, weights, processor files)
    revision: null
    prompt_format: chat                  # chat (instruction-tuned) | raw (base checkpoints)
    processor: {max_pixels: 401408}      # optional keyword arguments for AutoProcessor.from_pretrained
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from flamingo_eval.errors import ConfigError

FAMILY = "transformers"
FORMATS = ("chat", "raw")
SPEC_KEYS = ("family", "model", "prompt_format")
OPTIONAL_KEYS = ("revision", "processor")


@dataclass(frozen=True)
class TransformersSpec:
    name: str
    model: str
    prompt_format: str
    revision: str | None = None
    processor: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    family: str = FAMILY

    def summary(self) -> dict[str, Any]:
        return {"description": self.description, "family": self.family, "model": self.model,
                "revision": self.revision, "prompt_format": self.prompt_format, "processor": dict(self.processor)}



def parse_spec(data: dict, path: str) -> TransformersSpec:
    """A spec file's mapping -> TransformersSpec; a local ``model`` directory is relative to the spec file."""
    missing = [k for k in SPEC_KEYS if k not in data]
    extra = sorted(set(data) - set(SPEC_KEYS) - set(OPTIONAL_KEYS))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(extra)}"] if extra else [])
        raise ConfigError(f"model spec {path}: {'; '.join(parts)} (keys for family {FAMILY}: "
                          f"{', '.join(SPEC_KEYS + OPTIONAL_KEYS)})")
    model = data["model"]
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model spec {path}: model must be a hub id or a local directory")
    local = os.path.join(os.path.dirname(os.path.abspath(path)), model)
    if not os.path.isabs(model) and os.path.isdir(local):
        model = local
    revision = data.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise ConfigError(f"model spec {path}: revision must be a string or null")
    fmt = data["prompt_format"]
    if fmt not in FORMATS:
        raise ConfigError(f"model spec {path}: prompt_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    processor = data.get("processor") or {}
    if not isinstance(processor, dict) or not all(isinstance(k, str) for k in processor):
        raise ConfigError(f"model spec {path}: processor must be a mapping of keyword arguments")
    return TransformersSpec(path, model, fmt, revision, dict(processor), description=f"model spec {path}")
