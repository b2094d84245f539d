"""Model adapters. Importing this package is cheap; ``load_model`` imports torch on demand.

``families.py`` says which adapter serves a preset or spec file: the bundled OpenFlamingo (flamingo/), or
a Hugging Face family (hf/ with idefics/ and idefics2/, the latter also Idefics3 / SmolVLM), or any other
image-text-to-text checkpoint through transformers' own forward (transformers/).
"""

from __future__ import annotations

from flamingo_eval.models.base import GenerationSettings, ModelAdapter

__all__ = ["GenerationSettings", "ModelAdapter", "load_model", "list_models", "resolve_model"]


def load_model(name_or_spec: str, device: str = "cpu", precision: str = "fp32",
               device_map: str | None = None) -> ModelAdapter:
    """A preset name (``of-9b``, ``idefics2-8b-base``) or a model spec YAML path -> a ready adapter.
    ``device_map="auto"`` spreads a model over the visible GPUs (accelerate)."""
    from flamingo_eval.models.families import load

    return load(name_or_spec, device=device, precision=precision, device_map=device_map)


def resolve_model(name_or_spec: str) -> None:
    """Check a preset name or spec file without loading weights, so a typo fails before any work."""
    from flamingo_eval.models.families import get_spec

    get_spec(name_or_spec)


def list_models() -> list[dict]:
    from flamingo_eval.models.families import family_of, presets

    return [{"name": name, "family": family_of(spec), **spec.summary()} for name, spec in presets().items()]
