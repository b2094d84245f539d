"""Reading annotation files so that every format problem becomes one DataError line naming the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flamingo_eval.errors import DataError


def load_json(path: Path) -> Any:
    """The parsed JSON document; unreadable or malformed files are a DataError naming the file."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line of a JSON-lines file."""
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: line {lineno} is not valid JSON ({e.msg})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None


def field(record: Any, name: str, path: Path, where: str) -> Any:
    """``record[name]``, or a DataError saying which file and which entry lacks it."""
    if not isinstance(record, dict):
        raise DataError(f"{path}: {where} is not a JSON object")
    try:
        return record[name]
    except KeyError:
        raise DataError(f"{path}: {where} has no {name!r} field") from None


def list_field(doc: Any, name: str, path: Path) -> list:
    """A top-level list such as ``images`` or ``questions``."""
    value = field(doc, name, path, "the top level")
    if not isinstance(value, list):
        raise DataError(f"{path}: {name!r} is not a list")
    return value
