"""Model families: which adapter serves a preset or a spec file.

A spec file names its ``family`` (``openflamingo`` when absent, so OpenFlamingo specs keep their keys); the
registry maps each family to its loader, imported only when a model of that family is loaded.
"""

from __future__ import annotations

import os
from typing import Any

from flamingo_eval.registry import Registry, unknown

FAMILIES = Registry("model family", {
    "openflamingo": "flamingo_eval.models.flamingo.adapter:load_flamingo",
    "idefics": "flamingo_eval.models.hf.adapter:load_hf",
    "idefics2": "flamingo_eval.models.hf.adapter:load_hf",
    "idefics3": "flamingo_eval.models.hf.adapter:load_hf",
    "transformers": "flamingo_eval.models.transformers.adapter:load_transformers",
})


def presets() -> dict[str, Any]:
    """Every preset name -> its spec, OpenFlamingo's first."""
    from flamingo_eval.models.flamingo.presets import PRESETS
    from flamingo_eval.models.hf.spec import HF_PRESETS
    from flamingo_eval.models.transformers.presets import TRANSFORMERS_PRESETS

    return {**PRESETS, **HF_PRESETS, **TRANSFORMERS_PRESETS}


def family_of(spec: Any) -> str:
    return getattr(spec, "family", None) or "openflamingo"


def get_spec(name_or_path: str) -> Any:
    """A preset name or a spec file -> its spec (``ModelSpec`` or ``HFSpec``); checks the family exists."""
    table = presets()
    if name_or_path in table:
        return table[name_or_path]
    if not (name_or_path.endswith((".yaml", ".yml")) or os.path.exists(name_or_path)):
        raise unknown("model", name_or_path, list(table))
    from flamingo_eval.models.flamingo.presets import read_spec_mapping, spec_from_mapping

    data = read_spec_mapping(name_or_path)
    family = data.get("family", "openflamingo")
    if not isinstance(family, str) or family not in FAMILIES:
        raise unknown(f"model family in {name_or_path}:", str(family), FAMILIES.names())
    if family == "openflamingo":
        return spec_from_mapping(data, name_or_path)
    if family == "transformers":
        from flamingo_eval.models.transformers.spec import parse_spec as parse_transformers_spec

        return parse_transformers_spec(data, name_or_path)
    from flamingo_eval.models.hf.spec import parse_spec

    return parse_spec(data, name_or_path)


def load(name_or_path: str, device: str = "cpu", precision: str = "fp32", device_map: str | None = None):
    """The ready adapter of a preset or spec file, on a stack inside the declared ranges."""
    from flamingo_eval.stack import check_supported

    spec = get_spec(name_or_path)
    check_supported()
    return FAMILIES.get(family_of(spec))(spec, device=device, precision=precision, device_map=device_map)
