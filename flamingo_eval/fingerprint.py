"""Content hashes of files and directories, memoised by (path, size, mtime) so large files hash once."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from flamingo_eval.cache import cache_dir

_CHUNK = 1 << 20


def _memo_path() -> Path:
    return cache_dir() / "file-hashes.json"


def _load_memo() -> dict[str, str]:
    try:
        return json.loads(_memo_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes; reuses the last hash while size and mtime are unchanged."""
    p = Path(path).resolve()
    st = p.stat()
    memo_key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    memo = _load_memo()
    if memo_key in memo:
        return memo[memo_key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    digest = h.hexdigest()
    memo[memo_key] = digest
    try:
        _memo_path().parent.mkdir(parents=True, exist_ok=True)
        tmp = _memo_path().with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, _memo_path())
    except OSError:
        pass  # the memo is an optimisation only
    return digest


def combined_sha256(parts: list[str]) -> str:
    """One hash over several hashes or strings, order-sensitive."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()
