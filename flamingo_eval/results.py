"""Result files: where they go, what they record, and how they are written so a crash loses nothing.

Per (model, task, shots, selection) a run writes ``<name>.json`` (scores and everything needed to reproduce
them) and ``<name>.samples.jsonl`` (one line per item and trial). Finished items are appended to an item log
as they complete (``items/<run key>.r<rank>.jsonl``); rerunning the same command reads them back instead of
recomputing. The run key hashes everything that changes an item's output, so stale entries are never reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flamingo_eval.errors import UserError

SCHEMA = "flamingo-eval/result/v1"
SUBMISSIONS_DIR = "submissions"  # EvalAI files of the test-split variants, beside (not among) the results


def result_stem(task: str, shots: int, selection: str) -> str:
    return f"{task}_{shots}shot_{selection}"


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` or fail with one line before any work starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as e:
        raise UserError(f"output directory {path} is not writable ({e.strerror or e})") from None
    return path


def _write_atomic(path: Path, parts: Iterable[str]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target.

    ``parts`` is written as it is produced, so a file larger than memory never exists in memory whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    _write_atomic(path, [json.dumps(data, indent=2, ensure_ascii=False) + "\n"])


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    """One line per row, streamed: ``rows`` may be a generator over more rows than fit in memory."""
    _write_atomic(path, (json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


class ItemLog:
    """Append-only JSONL of finished items, flushed and fsynced per batch.

    A process killed mid-write leaves at most a truncated last line, which ``read`` skips.
    """

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rows: list[dict]) -> list[int]:
        """Append ``rows``; returns the byte offset of each row's line, for ``read_at``."""
        if not rows:
            return []
        lines = [(json.dumps(r, ensure_ascii=False) + "\n").encode() for r in rows]
        with open(self.path, "ab") as f:
            if f.tell() > 0 and not self._ends_with_newline():
                f.write(b"\n")  # seal a line truncated by a crash so it stays unparseable alone
            offsets = []
            for line in lines:
                offsets.append(f.tell())
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return offsets

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    @staticmethod
    def scan(paths: Iterable[Path]) -> Iterator[tuple[Path, int, dict]]:
        """(log, byte offset, row) of every complete row, a line at a time (a log may not fit in memory)."""
        for path in paths:
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                continue
            with f:
                offset = 0
                for line in f:
                    at, offset = offset, offset + len(line)
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash
                    if isinstance(row, dict):
                        yield path, at, row

    @staticmethod
    def read_at(path: Path, offset: int) -> dict:
        """The row whose line starts at ``offset`` (as ``append`` or ``scan`` reported it)."""
        with open(path, "rb") as f:
            f.seek(offset)
            return json.loads(f.readline())


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_result(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"result file not found: {path}") from None
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"{path}: not a flamingo-eval result file (schema {SCHEMA})")
    return data


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    """Result JSONs under the given files/directories (sample logs and item logs excluded)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.json")
                                if not {"items", SUBMISSIONS_DIR} & set(q.parts) and not q.name.startswith(".")))
        elif p.exists():
            found.append(p)
        else:
            raise UserError(f"no such file or directory: {p}")
    return found
