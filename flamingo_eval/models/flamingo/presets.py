"""The released OpenFlamingo models (protocol 1.3) and user model spec files.

A spec names the open_clip vision tower, the LM and tokenizer (hub id or local directory), how
often cross-attention appears, and the checkpoint (``owner/repo/file`` on the hub or a local path).
Relative local paths are relative to the spec file. With the ``openai`` tag the tower gets QuickGELU as
those weights need; for a local copy of the openai weights name the tower ``ViT-L-14-quickgelu``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from flamingo_eval.errors import ConfigError
from flamingo_eval.models.flamingo.sizes import OPENFLAMINGO, FlamingoSizes
from flamingo_eval.registry import unknown

SPEC_KEYS = ("vision_encoder", "lang_encoder", "tokenizer", "cross_attn_every_n_layers", "checkpoint")
OPTIONAL_KEYS = ("sizes",)  # Perceiver and cross-attention shapes, when not OpenFlamingo's (FlamingoSizes)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    lang_encoder: str
    tokenizer: str
    cross_attn_every_n_layers: int
    checkpoint: str
    vision_encoder: dict[str, Any] = field(default_factory=lambda: {"name": "ViT-L-14", "pretrained": "openai"})
    description: str = ""
    base_dir: str | None = None  # relative paths in a spec file are relative to the file
    sizes: FlamingoSizes = OPENFLAMINGO

    def summary(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "lang_encoder": self.lang_encoder,
            "tokenizer": self.tokenizer,
            "cross_attn_every_n_layers": self.cross_attn_every_n_layers,
            "checkpoint": self.checkpoint,
            "vision_encoder": dict(self.vision_encoder),
            "sizes": self.sizes.as_dict(),
        }

    def local(self, ref: str | None) -> str | None:
        """``ref`` made absolute when it names something next to the spec file; else unchanged."""
        if ref is None or self.base_dir is None or os.path.isabs(ref):
            return ref
        candidate = os.path.join(self.base_dir, ref)
        return candidate if os.path.exists(candidate) else ref


def _preset(name: str, lm: str, every_n: int, repo: str, description: str) -> ModelSpec:
    return ModelSpec(name, lm, lm, every_n, f"{repo}/checkpoint.pt", description=description)


PRESETS: dict[str, ModelSpec] = {
    p.name: p
    for p in (
        _preset("of-3b", "anas-awadalla/mpt-1b-redpajama-200b", 1, "openflamingo/OpenFlamingo-3B-vitl-mpt1b",
                "OpenFlamingo-3B: ViT-L/14 + MPT-1B RedPajama, cross-attention every layer"),
        _preset("of-3b-instruct", "anas-awadalla/mpt-1b-redpajama-200b-dolly", 1,
                "openflamingo/OpenFlamingo-3B-vitl-mpt1b-langinstruct",
                "OpenFlamingo-3B (instruct): ViT-L/14 + MPT-1B Dolly, cross-attention every layer"),
        _preset("of-4b", "togethercomputer/RedPajama-INCITE-Base-3B-v1", 2, "openflamingo/OpenFlamingo-4B-vitl-rpj3b",
                "OpenFlamingo-4B: ViT-L/14 + RedPajama-INCITE-3B, cross-attention every 2nd layer"),
        _preset("of-4b-instruct", "togethercomputer/RedPajama-INCITE-Instruct-3B-v1", 2,
                "openflamingo/OpenFlamingo-4B-vitl-rpj3b-langinstruct",
                "OpenFlamingo-4B (instruct): ViT-L/14 + RedPajama-INCITE-Instruct-3B, cross-attention every 2nd layer"),
        _preset("of-9b", "anas-awadalla/mpt-7b", 4, "openflamingo/OpenFlamingo-9B-vitl-mpt7b",
                "OpenFlamingo-9B: ViT-L/14 + MPT-7B, cross-attention every 4th layer"),
    )
}


# The toy Flamingo trained by ``python -m flamingo_eval.toy.train`` and shipped in the package (a few MB);
# its Perceiver and cross-attention are a quarter of OpenFlamingo's widths or less, so it trains in minutes.
TOY_SIZES = FlamingoSizes(num_latents=16, perceiver_depth=2, perceiver_heads=4, perceiver_dim_head=32,
                          xattn_heads=4, xattn_dim_head=32)
TOY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toy")
PRESETS["of-toy"] = ModelSpec(
    "of-toy", "lm", "lm", 2, "checkpoint.pt", vision_encoder={"name": "local-dir:vit", "pretrained": None},
    description="toy Flamingo trained on the generated toy tasks (python -m flamingo_eval.toy.train)",
    base_dir=TOY_DIR, sizes=TOY_SIZES,
)


def read_spec_mapping(path: str) -> dict:
    """A model spec file's YAML mapping (any family), or one ConfigError line."""
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"model spec {path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"model spec {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"model spec {path}: expected a mapping (an OpenFlamingo spec has keys "
                          f"{', '.join(SPEC_KEYS)}; a Hugging Face one family and model)")
    return data


def load_spec_file(path: str) -> ModelSpec:
    """An OpenFlamingo model spec YAML: exactly the keys in SPEC_KEYS, any of OPTIONAL_KEYS (and optionally
    ``family: openflamingo``)."""
    return spec_from_mapping(read_spec_mapping(path), path)


def spec_from_mapping(data: dict, path: str) -> ModelSpec:
    data = {k: v for k, v in data.items() if k != "family"}
    missing = [k for k in SPEC_KEYS if k not in data]
    extra = sorted(set(data) - set(SPEC_KEYS) - set(OPTIONAL_KEYS))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(extra)}"] if extra else [])
        raise ConfigError(f"model spec {path}: {'; '.join(parts)} (keys: {', '.join(SPEC_KEYS)})")
    vision = data["vision_encoder"]
    if not isinstance(vision, dict) or set(vision) - {"name", "pretrained"} or "name" not in vision:
        raise ConfigError(f"model spec {path}: vision_encoder must be {{name: ..., pretrained: ...}}")
    every_n = data["cross_attn_every_n_layers"]
    if not isinstance(every_n, int) or isinstance(every_n, bool) or every_n < 1:
        raise ConfigError(f"model spec {path}: cross_attn_every_n_layers must be a positive integer, got {every_n!r}")
    for key in ("lang_encoder", "tokenizer", "checkpoint"):
        if not isinstance(data[key], str) or not data[key]:
            raise ConfigError(f"model spec {path}: {key} must be a hub id or a path")
    return ModelSpec(
        name=path,
        lang_encoder=data["lang_encoder"],
        tokenizer=data["tokenizer"],
        cross_attn_every_n_layers=every_n,
        checkpoint=data["checkpoint"],
        vision_encoder={"name": vision["name"], "pretrained": vision.get("pretrained")},
        description=f"model spec {path}",
        base_dir=os.path.dirname(os.path.abspath(path)),
        sizes=FlamingoSizes.parse(data.get("sizes", {}), f"model spec {path}"),
    )


def get_spec(name_or_path: str) -> ModelSpec:
    """A preset name or a spec file path."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if name_or_path.endswith((".yaml", ".yml")) or os.path.exists(name_or_path):
        return load_spec_file(name_or_path)
    raise unknown("model", name_or_path, list(PRESETS))
