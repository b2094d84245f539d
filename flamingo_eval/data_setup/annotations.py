"""Annotation files from ``openflamingo/eval_benchmark`` (the Hugging Face hub, or a local copy of it) laid out
under a data root in the layout the task YAMLs expect.

The hub download fetches only the files the tasks need (``snapshot_download`` with ``allow_patterns``), shows
progress, resumes an interrupted transfer and keeps the files in the Hugging Face cache; the data root gets
hard links to them (copies across file systems), so clearing either never breaks the other.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from flamingo_eval.data_setup.catalogue import ANNOTATIONS, HUB_REPO, OTHER_ANNOTATIONS, FileSource
from flamingo_eval.data_setup.needs import Need
from flamingo_eval.errors import DataError, UserError
from flamingo_eval.task import TaskSpec


@dataclass(frozen=True)
class Placement:
    """One annotation file of one task: where it goes, where eval_benchmark holds it (None: it does not)."""

    task: str
    need: Need
    repo_path: str | None
    present: Path | None
    other: FileSource | None = None  # where a file eval_benchmark lacks comes from (NoCaps, TextCaps, VL-ICL)


def plan(task: TaskSpec, needs: list[Need], data_root: Path, force: bool = False) -> list[Placement]:
    """The task's annotation files; a file already present under any of its names is left alone unless
    ``force``."""
    out = []
    for need in needs:
        if need.folder:
            continue
        present = None if force else need.present(data_root)
        repo_path = next((ANNOTATIONS[c] for c in need.candidates if c in ANNOTATIONS), None)
        other = next((OTHER_ANNOTATIONS[c] for c in need.candidates if c in OTHER_ANNOTATIONS), None)
        out.append(Placement(task.name, need, repo_path, present, other))
    return out


def hub_snapshot(repo_paths: list[str]) -> Path:
    """A local folder holding ``repo_paths`` of eval_benchmark, downloaded into the Hugging Face cache."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=HUB_REPO, repo_type="dataset", allow_patterns=sorted(repo_paths)))
    except Exception as e:  # network, authentication or hub errors: one line, with the offline way out
        raise UserError(f"cannot download from the Hugging Face dataset {HUB_REPO} ({e.__class__.__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'no detail'}); on a machine without a network, "
                        f"copy that repository and pass --source DIR") from None


def place(src: Path, dest: Path) -> str:
    """Put ``src`` at ``dest`` atomically: a hard link where possible, else a copy. Returns which."""
    src = src.resolve()  # hub snapshots hold symlinks into the cache's blobs
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
        how = "linked"
    except OSError:
        shutil.copyfile(src, tmp)
        how = "copied"
    os.replace(tmp, dest)
    return how


def fetch_other(source: FileSource, dest: Path) -> str:
    """A file from its official URL, or from its Hugging Face dataset (linked from the hub cache)."""
    if source.url is not None:
        from flamingo_eval.data_setup.images import download

        download(source.url, dest, progress=False)
        return "fetched"
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo_id=source.hub_repo, filename=source.hub_path, repo_type="dataset")
    except Exception as e:  # network, authentication or hub errors: one line
        raise UserError(f"cannot download {source.hub_path} from the Hugging Face dataset {source.hub_repo} "
                        f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    return place(Path(path), dest)


def fetch(placements: list[Placement], data_root: Path, source: Path | None) -> list[str]:
    """Lay out every placement that is missing and available; returns one line per file."""
    wanted = sorted({p.repo_path for p in placements if p.present is None and p.repo_path})
    if source is not None:
        if not source.is_dir():
            raise UserError(f"--source {source}: not a folder (a local copy of {HUB_REPO} is expected)")
        missing = [r for r in wanted if not (source / r).is_file()]
        if missing:
            raise DataError(f"--source {source}: {missing[0]} not found"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                            + f"; a local copy of {HUB_REPO} is expected")
        root = source
    else:
        root = hub_snapshot(wanted) if wanted else None
    lines, done = [], {}
    for p in placements:
        dest = Path(data_root) / p.need.default
        if p.present is not None:
            lines.append(f"  present  {p.present.relative_to(data_root)}")
        elif p.repo_path is None and p.other is not None:
            if dest not in done:
                done[dest] = fetch_other(p.other, dest)
            lines.append(f"  {done[dest]:<8} {p.need.default} ({p.other.describe()}; {p.other.licence})")
        elif p.repo_path is None:
            lines.append(f"  absent   {p.need.default}: not in {HUB_REPO}; see the note below")
        else:
            if dest not in done:
                done[dest] = place(root / p.repo_path, dest)
            renamed = f" (eval_benchmark's {p.repo_path})" if p.repo_path != p.need.default else ""
            lines.append(f"  {done[dest]:<8} {p.need.default}{renamed}")
    return lines
