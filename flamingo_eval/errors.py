"""Errors a user can act on: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment; the message alone tells the user what to fix."""

    exit_code = 2


class DataError(UserError):
    """A data file is missing, unreadable or not in the expected format."""


class BadImageError(DataError):
    """An image file is missing or cannot be decoded."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"bad image {path}: {reason}")
        self.path = path


class ConfigError(UserError):
    """A task spec, model spec or command-line option is invalid."""


class WeightsError(UserError):
    """Model weights are missing or do not match the architecture."""


class EnvironmentProblem(UserError):
    """Something outside Python is missing (Java, NLTK data, a GPU)."""


def listing(items: list[str], limit: int = 8) -> str:
    """Items for a one-line message: the first ``limit``, then how many more."""
    if not items:
        return "none"
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
