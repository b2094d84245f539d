"""Where derived data lives between runs (parsed splits, RICES features): $FLAMINGO_EVAL_CACHE or ~/.cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache root, or a subfolder of it (created on demand by the caller)."""
    root = Path(os.environ.get("FLAMINGO_EVAL_CACHE") or Path.home() / ".cache" / "flamingo-eval")
    return root.joinpath(*parts)
