"""Hugging Face model families (Idefics, Idefics2, Idefics3 / SmolVLM): presets and spec files.

A spec names its family and the model directory (a hub id, or a local directory with config, weights and
processor files) and may pin a hub revision; ``image_splitting`` overrides the processor's
``do_image_splitting`` (Idefics2/3), which otherwise follows the checkpoint's configuration.

    family: idefics2
    model: HuggingFaceM4/idefics2-8b-base
    revision: null
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flamingo_eval.errors import ConfigError

HF_FAMILIES = ("idefics", "idefics2", "idefics3")
SPEC_KEYS = ("family", "model")
OPTIONAL_KEYS = ("revision", "image_splitting")


@dataclass(frozen=True)
class HFSpec:
    name: str
    family: str
    model: str
    revision: str | None = None
    image_splitting: bool | None = None
    description: str = ""

    def summary(self) -> dict[str, Any]:
        return {"description": self.description, "family": self.family, "model": self.model,
                "revision": self.revision, "image_splitting": self.image_splitting}


def _preset(name: str, family: str, model: str, description: str) -> HFSpec:
    return HFSpec(name, family, model, description=description)


HF_PRESETS: dict[str, HFSpec] = {p.name: p for p in (
    _preset("idefics-9b", "idefics", "HuggingFaceM4/idefics-9b", "Idefics 9B: CLIP ViT-H/14 + Perceiver + LLaMA-7B"),
    _preset("idefics-9b-instruct", "idefics", "HuggingFaceM4/idefics-9b-instruct", "Idefics 9B, instruction-tuned"),
    _preset("idefics-80b", "idefics", "HuggingFaceM4/idefics-80b", "Idefics 80B: CLIP ViT-H/14 + Perceiver + LLaMA-65B"),
    _preset("idefics-80b-instruct", "idefics", "HuggingFaceM4/idefics-80b-instruct", "Idefics 80B, instruction-tuned"),
    _preset("idefics2-8b-base", "idefics2", "HuggingFaceM4/idefics2-8b-base", "Idefics2 8B base: SigLIP + Perceiver + Mistral-7B"),
    _preset("idefics2-8b", "idefics2", "HuggingFaceM4/idefics2-8b", "Idefics2 8B, instruction-tuned"),
    _preset("idefics3-8b", "idefics3", "HuggingFaceM4/Idefics3-8B-Llama3", "Idefics3 8B: SigLIP + pixel shuffle + Llama-3.1-8B"),
    _preset("smolvlm-256m-base", "idefics3", "HuggingFaceTB/SmolVLM-256M-Base", "SmolVLM 256M base (an Idefics3 model)"),
    _preset("smolvlm-256m", "idefics3", "HuggingFaceTB/SmolVLM-256M-Instruct", "SmolVLM 256M, instruction-tuned"),
    _preset("smolvlm-500m-base", "idefics3", "HuggingFaceTB/SmolVLM-500M-Base", "SmolVLM 500M base (an Idefics3 model)"),
    _preset("smolvlm-500m", "idefics3", "HuggingFaceTB/SmolVLM-500M-Instruct", "SmolVLM 500M, instruction-tuned"),
    _preset("smolvlm-2b-base", "idefics3", "HuggingFaceTB/SmolVLM-Base", "SmolVLM 2B base (an Idefics3 model)"),
    _preset("smolvlm-2b", "idefics3", "HuggingFaceTB/SmolVLM-Instruct", "SmolVLM 2B, instruction-tuned"),
)}


def hub_model(data: dict, path: str, required: tuple[str, ...], optional: tuple[str, ...],
              family: object) -> tuple[str, str | None]:
    """A Hugging Face spec's keys checked and its ``model`` (a hub id, or a local directory relative to the
    spec file) and ``revision`` read: what every family that loads from the hub shares."""
    missing = [k for k in required if k not in data]
    extra = sorted(set(data) - set(required) - set(optional))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(extra)}"] if extra else [])
        raise ConfigError(f"model spec {path}: {'; '.join(parts)} (keys for family {family}: "
                          f"{', '.join(required + optional)})")
    model = data["model"]
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model spec {path}: model must be a hub id or a local directory")
    local = os.path.join(os.path.dirname(os.path.abspath(path)), model)
    if not os.path.isabs(model) and os.path.isdir(local):
        model = local
    revision = data.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise ConfigError(f"model spec {path}: revision must be a string or null")
    return model, revision


def parse_spec(data: dict, path: str) -> HFSpec:
    """A spec file's mapping (its ``family`` one of HF_FAMILIES) -> HFSpec; a local ``model`` directory is
    relative to the spec file."""
    model, revision = hub_model(data, path, SPEC_KEYS, OPTIONAL_KEYS, data.get("family"))
    splitting = data.get("image_splitting")
    if splitting is not None and not isinstance(splitting, bool):
        raise ConfigError(f"model spec {path}: image_splitting must be true, false or null")
    return HFSpec(path, data["family"], model, revision, splitting, description=f"model spec {path}")
