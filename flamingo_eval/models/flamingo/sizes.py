"""The Perceiver's and the cross-attention's shapes: OpenFlamingo's released values unless a spec says otherwise.

The released checkpoints all use the defaults below. They are a model's property, not the code's,
because a small Flamingo (the toy one) needs far smaller ones to train in minutes: 64 latents of a
6-deep, 512-wide Perceiver over 16 patch tokens would cost three quarters of its training time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from flamingo_eval.errors import ConfigError


@dataclass(frozen=True)
class FlamingoSizes:
    num_latents: int = 64
    perceiver_depth: int = 6
    perceiver_heads: int = 8
    perceiver_dim_head: int = 64
    xattn_heads: int = 8
    xattn_dim_head: int = 64

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def parse(cls, data: Any, where: str) -> FlamingoSizes:
        """From a spec's ``sizes`` mapping: any subset of the fields, each a positive integer."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or set(data) - set(names):
            raise ConfigError(f"{where}: sizes must be a mapping with keys among {', '.join(names)}")
        for key, value in data.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: sizes.{key} must be a positive integer, got {value!r}")
        return cls(**data)


OPENFLAMINGO = FlamingoSizes()  # every released checkpoint
