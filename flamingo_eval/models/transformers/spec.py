"""Model specs of the ``transformers`` family: a checkpoint, its prompt format and processor options.

    family: transformers
    model: Qwen/Qwen2.5-VL-7B-Instruct   # hub id or a local directory (config, weights, processor files)
    revision: null
    prompt_format: chat                  # chat (instruction-tuned) | raw (base checkpoints)
    processor: {max_pixels: 401408}      # optional keyword arguments for AutoProcessor.from_pretrained
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.hf.spec import hub_model

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
    model, revision = hub_model(data, path, SPEC_KEYS, OPTIONAL_KEYS, FAMILY)
    fmt = data["prompt_format"]
    if fmt not in FORMATS:
        raise ConfigError(f"model spec {path}: prompt_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    processor = data.get("processor") or {}
    if not isinstance(processor, dict) or not all(isinstance(k, str) for k in processor):
        raise ConfigError(f"model spec {path}: processor must be a mapping of keyword arguments")
    return TransformersSpec(path, model, fmt, revision, dict(processor), description=f"model spec {path}")
