"""Name -> lazily imported object, so the CLI starts without importing torch."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any

from flamingo_eval.errors import ConfigError


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: str, choices: list[str]) -> ConfigError:
    return ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, choices)}; known: {', '.join(sorted(choices))}")


def import_object(target: str) -> Any:
    """Import "package.module:attr"."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


class Registry:
    """A named table of "module:attr" targets resolved on first use."""

    def __init__(self, kind: str, entries: dict[str, str] | None = None):
        self.kind = kind
        self._targets: dict[str, str] = dict(entries or {})

    def register(self, name: str, target: str) -> None:
        self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Any:
        if name not in self._targets:
            raise unknown(self.kind, name, self.names())
        return import_object(self._targets[name])
