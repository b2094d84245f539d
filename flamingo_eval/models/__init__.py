"""Model adapters. Importing this package is cheap; ``load_model`` imports torch on demand."""

from __future__ import annotations

from flamingo_eval.models.base import GenerationSettings, ModelAdapter

__all__ = ["GenerationSettings", "ModelAdapter", "load_model", "list_models", "resolve_model"]


def load_model(name_or_spec: str, device: str = "cpu", precision: str = "fp32") -> ModelAdapter:
    """A preset name (``of-9b``) or a model spec YAML path -> a ready adapter."""
    from flamingo_eval.models.flamingo.adapter import load_flamingo

    return load_flamingo(name_or_spec, device=device, precision=precision)


def resolve_model(name_or_spec: str) -> None:
    """Check a preset name or spec file without loading weights, so a typo fails before any work."""
    from flamingo_eval.models.flamingo.presets import get_spec

    get_spec(name_or_spec)


def list_models() -> list[dict]:
    from flamingo_eval.models.flamingo.presets import PRESETS

    return [{"name": name, **spec.summary()} for name, spec in PRESETS.items()]
