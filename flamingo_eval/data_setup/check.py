"""``flamingo-eval data check``: what of a task's data is in place under a data root, and the one command
that fixes each gap.

Per task: each annotation file (present, size), each split's item count against the published one, and each
image folder against the images its splits name (one directory listing per folder, not a stat per image). A
few missing images are named with where each comes from; more, and the fix is the folder's archive again.
Splits are parsed through the same Arrow cache as ``run``: the first check of full-size VQAv2 took 24 s on two
shared cores, later ones (and the run after them) about 2 s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flamingo_eval.data_setup import catalogue
from flamingo_eval.data_setup.catalogue import ANNOTATIONS, OTHER_ANNOTATIONS, expected_items
from flamingo_eval.data_setup.needs import Need, task_needs
from flamingo_eval.errors import DataError
from flamingo_eval.task import TaskSpec

SHOWN = 3  # missing images named per folder
FEW = 10  # at most SHOWN missing and at most one in FEW of the folder: name each file's source, not the archive


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``status`` is "ok", "warn" (usable but not the published data) or "missing"."""

    status: str
    what: str
    fix: str = ""


def _size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _instructions(task: TaskSpec, needs: list[Need]) -> str:
    """The instructions of the task's licence-gated or request-form data, if it has any."""
    sources = [catalogue.image_source(task.name, n.default) for n in needs if n.folder]
    return next((s.instructions for s in sources
                 if s is not None and s.instructions and not (s.hub_zips or s.listed_in)), "")


def _file_fix(task: TaskSpec, need: Need, needs: list[Need], root: Path) -> str:
    if any(c in ANNOTATIONS or c in OTHER_ANNOTATIONS for c in need.candidates):
        return f"flamingo-eval data fetch {task.name} --data-root {root}"
    return _instructions(task, needs) or f"point to it with --data {need.key}=PATH"


def _image_fix(task: TaskSpec, folder: str, root: Path, partial: bool = False) -> str:
    """The command that fills the folder (``--force`` unpacks the archive again over an incomplete one)."""
    source = catalogue.image_source(task.name, folder)
    if source is None:
        return f"put the images under {root / folder}"
    if source.hub_zips or source.listed_in:
        force = " --force" if partial else ""
        return f"flamingo-eval data fetch {task.name} --images{force} --data-root {root}  ({source.size})"
    if source.url is None:
        return source.instructions
    force = " --force" if partial else ""
    return f"flamingo-eval data fetch {task.name} --images{force} --data-root {root}  ({source.url}, {source.size})"


def _few_fix(task: TaskSpec, folder: str, gone: list[str], root: Path) -> str:
    """Where each of a few missing images comes from: its own address where the source has one (COCO's
    ``curl`` commands), else the archive or instructions that hold it; a source fetched per task (VL-ICL's
    zips, NoCaps' per-image addresses) gets the task's own fetch command."""
    source = catalogue.image_source(task.name, folder)
    if source is not None and (source.hub_zips or source.listed_in):
        return _image_fix(task, folder, root, partial=True)
    if source is not None and source.file_url:
        return "download each: " + " && ".join(
            f"curl -fo {root / folder / g} {source.file_url.format(name=PurePosixPath(g).name)}" for g in gone)
    if source is not None and source.url:
        inside = ", ".join(f"{source.unpacks_to or folder}/{g}" for g in gone)
        return f"extract {inside} from {source.url} ({source.size}) into {root / folder}"
    if source is not None and source.instructions:
        return f"copy {', '.join(gone)} into {root / folder} from where they came: {source.instructions}"
    return f"put {', '.join(gone)} under {root / folder}"


def _listing(folder: Path) -> frozenset[str]:
    try:
        with os.scandir(folder) as it:
            return frozenset(e.name for e in it)
    except OSError:
        return frozenset()


def missing_images(folder: Path, files: set[str]) -> list[str]:
    """The files (relative to ``folder``, possibly in sub-folders such as ``img/``) that are not there; each
    sub-folder is listed once."""
    listings: dict[PurePosixPath, frozenset[str]] = {}
    out = []
    for f in files:
        rel = PurePosixPath(f)
        if rel.parent not in listings:
            listings[rel.parent] = _listing(folder / rel.parent)
        if rel.name not in listings[rel.parent]:
            out.append(f)
    return sorted(out)


def _files(task: TaskSpec, needs: list[Need], root: Path) -> tuple[list[Finding], set[str]]:
    findings, absent = [], set()
    for need in (n for n in needs if not n.folder):
        path = need.present(root)
        if path is not None:
            findings.append(Finding("ok", f"{path.relative_to(root)} ({_size(path)})"))
        else:
            absent.add(need.key)
            findings.append(Finding("missing", f"{' or '.join(need.candidates)} (file {need.key!r})",
                                    _file_fix(task, need, needs, root)))
    return findings, absent


def _splits(task: TaskSpec, needs: list[Need], root: Path, absent: set[str]) -> tuple[list[Finding], dict]:
    from flamingo_eval.data import load_split

    findings, splits = [], {}
    for which in ("demo", "eval"):
        if any(which in n.used_by and n.key in absent for n in needs if not n.folder):
            continue
        if not any(which in n.used_by for n in needs if not n.folder) and \
                any(n.present(root) is None for n in needs if n.folder):
            continue  # a split read from folders alone (ImageNet's trees): the images finding says what is absent
        try:
            split = load_split(task, which, root)
        except DataError as e:
            findings.append(Finding("missing", f"{which} split unreadable: {e}",
                                    f"flamingo-eval data fetch {task.name} --force --data-root {root}"))
            continue
        splits[which] = split
        n, expected = len(split), expected_items(task.name, which)
        if expected is None or n == expected:
            note = "" if expected is None else f" (published: {expected:,})"
            findings.append(Finding("ok", f"{which} split: {n:,} items{note}"))
        else:
            findings.append(Finding("warn", f"{which} split: {n:,} items, the published split has {expected:,} "
                                            f"(another version or a subset: scores are not comparable)"))
    return findings, splits


def _images(task: TaskSpec, needs: list[Need], root: Path, splits: dict) -> list[Finding]:
    findings = []
    for need in (n for n in needs if n.folder):
        folder = root / need.default
        wanted: set[str] = set()
        for which, split in splits.items():
            if which in need.used_by:
                wanted |= split.image_files().get(need.key, set())
        checked = all(w in splits for w in need.used_by)
        if not folder.is_dir():
            count = f" ({len(wanted):,} images named by the annotations)" if wanted else ""
            findings.append(Finding("missing", f"images {need.default}/: folder absent{count}",
                                    _image_fix(task, need.default, root)))
        elif not checked and not wanted:
            findings.append(Finding("warn", f"images {need.default}/: present, not checked until the "
                                            f"annotations are in place"))
        else:
            gone = missing_images(folder, wanted)
            if gone and len(gone) <= SHOWN and len(gone) * FEW <= len(wanted):
                findings.append(Finding("missing", f"images {need.default}/: {len(gone):,} of {len(wanted):,} "
                                                   f"missing: {', '.join(f'{need.default}/{g}' for g in gone)}",
                                        _few_fix(task, need.default, gone, root)))
            elif gone:
                shown = ", ".join(f"{need.default}/{g}" for g in gone[:SHOWN]) + (", ..." if len(gone) > SHOWN else "")
                findings.append(Finding("missing", f"images {need.default}/: {len(gone):,} of {len(wanted):,} "
                                                   f"missing, e.g. {shown}",
                                    _image_fix(task, need.default, root, partial=True)))
            else:
                findings.append(Finding("ok", f"images {need.default}/: all {len(wanted):,} present"))
    return findings


def check_task(task: TaskSpec, data_root: str | os.PathLike) -> list[Finding]:
    """Everything ``run`` will read for ``task`` under ``data_root``, as findings in reading order."""
    root = Path(data_root)
    needs = task_needs(task)
    files, absent = _files(task, needs, root)
    split_findings, splits = _splits(task, needs, root, absent)
    return files + split_findings + _images(task, needs, root, splits)


def format_findings(task: TaskSpec, findings: list[Finding]) -> str:
    lines = [f"{task.name}  ({task.title})"]
    for f in findings:
        lines.append(f"  {f.status.upper() if f.status != 'ok' else 'ok':<8} {f.what}")
        if f.fix:
            lines.append(f"  {'':<8} fix: {f.fix}")
    return "\n".join(lines)
