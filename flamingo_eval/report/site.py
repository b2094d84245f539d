"""The report folder: its page and assets (package data), the first-view index, the leaderboard's PNG.

``data/index.js`` is all the page loads before its first view: the leaderboard rows, one entry per cell and
trial (counts, where its data lives), image counts and notes; its size depends on the number of cells, not
on the number of samples. A folder is only ever written over when it is empty or an earlier report (it holds
``MARKER``), so a mistyped ``--out`` cannot delete someone's files.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from flamingo_eval.errors import UserError
from flamingo_eval.report.chunks import write_script

MARKER = ".flamingo-eval-report"
ASSETS = ("index.html", "app.js", "style.css")
INDEX = "data/index.js"
PLOT = "shots.png"


def prepare_out_dir(out: Path) -> Path:
    """Create the folder, or check that it is empty or a report; returns the scratch folder for new data."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UserError(f"--out {out} is not empty and holds no flamingo-eval report; give a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("written by flamingo-eval report; the folder may be replaced by the next one\n")
    except OSError as e:
        raise UserError(f"--out {out} is not writable ({e.strerror or e})") from None
    scratch = out / ".data-new"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    return scratch


def publish_data(out: Path, scratch: Path) -> None:
    """Swap the freshly written data folder in place of the previous report's."""
    old = out / "data"
    if old.exists():
        trash = out / ".data-old"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(old, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(scratch, old)


def write_index(scratch: Path, payload: dict[str, Any]) -> int:
    return write_script(scratch / "index.js", INDEX, payload)


def copy_assets(out: Path) -> None:
    here = resources.files("flamingo_eval.report") / "assets"
    for name in ASSETS:
        (out / name).write_bytes((here / name).read_bytes())


def folder_size(path: Path) -> tuple[int, int]:
    """Bytes and files under a folder (hard-linked thumbnails counted at their full size)."""
    total = files = 0
    for root, _, names in os.walk(path):
        for n in names:
            total += os.path.getsize(os.path.join(root, n))
            files += 1
    return total, files


def first_view_bytes(out: Path) -> int:
    """What a browser reads before the first view: the page, its script and style, and the index."""
    return sum((out / p).stat().st_size for p in (*ASSETS, INDEX))
