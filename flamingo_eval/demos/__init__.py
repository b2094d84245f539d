"""Demonstration selectors: for an evaluation item, which pool items demonstrate, in prompt order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flamingo_eval.data.sample import Sample


@dataclass(frozen=True)
class Demo:
    """A chosen demonstration; ``similarity`` is set by retrieval-based selectors."""

    sample: Sample
    similarity: float | None = None


class Selector(Protocol):
    """``select`` must be a pure function of (selector state, query): batch size and order never matter."""

    name: str

    def select(self, query: Sample, k: int) -> list[Demo]: ...

    def describe(self) -> dict[str, Any]: ...
