"""``flamingo-eval data fetch``, ``data unpack`` and ``data check``: from nothing to a data root ``run`` can read.

``fetch`` lays out the tasks' annotation files from ``openflamingo/eval_benchmark`` (or a local copy of it)
and says, per image folder, where its images come from; ``--images`` downloads and unpacks the openly
licensed ones; a task whose answers are stemmed (OK-VQA) also gets NLTK's data, in the flamingo-eval cache.
``unpack imagenet --from DIR`` turns the gated ImageNet's Hugging Face parquet shards (``ILSVRC/imagenet-1k``),
downloaded by the user, into the ImageFolder trees the task reads (``unpack.py``).
``check`` reports what is present and what is missing, with the command that fixes it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flamingo_eval.data_setup import catalogue
from flamingo_eval.data_setup.annotations import fetch, plan
from flamingo_eval.data_setup.check import check_task, format_findings
from flamingo_eval.data_setup.images import fetch_images
from flamingo_eval.data_setup.needs import Need, resolve_tasks, task_needs
from flamingo_eval.data_setup.unpack import unpack_command

__all__ = ["fetch_command", "check_command", "unpack_command", "check_task", "task_needs"]


def _folder_present(root: Path, need: Need, task: str = "") -> bool:
    """Whether the folder's images look unpacked (it, or the sub-folder holding them, is not empty)."""
    source = catalogue.image_source(task, need.default)
    path = root / (source.folder if source else need.default) / (source.holds if source else "")
    return path.is_dir() and any(path.iterdir())


def _image_line(root: Path, need: Need, task: str = "") -> str:
    source = catalogue.image_source(task, need.default)
    state = "present" if _folder_present(root, need, task) else "absent"
    if source is None:
        return f"  images   {need.default}/ {state}: no known source; put the images there"
    if source.hub_zips or source.listed_in:
        hint = "" if state == "present" else "; --images downloads them"
        return f"  images   {source.folder}/ {state}: {source.size} ({source.licence}){hint}"
    if source.url is None:
        return f"  images   {need.default}/ {state} ({source.size}): {source.instructions}"
    hint = "" if state == "present" else "; --images downloads and unpacks it"
    return f"  images   {need.default}/ {state}: {source.url} ({source.size}; {source.licence}){hint}"


def _nltk_line(offline: bool) -> tuple[str, bool]:
    """NLTK's data for OK-VQA's stemming, downloaded into the cache unless ``offline`` (``--source``): the
    line to print and whether it is all in place."""
    from flamingo_eval.metrics.okvqa_stem import copy_hint, fetch_nltk_data, missing_nltk_data, nltk_data_dir

    missing = missing_nltk_data() if offline else fetch_nltk_data()
    if not missing:
        return f"  nltk     OK-VQA stemming data in place ({nltk_data_dir()} is searched too)", True
    why = "not downloaded with --source" if offline else "could not download"
    return f"  NLTK     {', '.join(missing)} missing ({why}): {copy_hint(missing)}", False


def fetch_command(names: list[str], data_root: str | os.PathLike, source: str | os.PathLike | None = None,
                  images: bool = False, force: bool = False, progress: bool = True) -> int:
    """Annotation files for every task, then each image folder's source (downloaded with ``images``, where
    absent, or again with ``force``), and NLTK's data where a task stems its answers; 1 when that data is
    still missing."""
    root = Path(data_root)
    tasks = resolve_tasks(names)
    needs = {t.name: task_needs(t) for t in tasks}
    placements = [p for t in tasks for p in plan(t, needs[t.name], root, force)]
    lines = fetch(placements, root, Path(source) if source is not None else None)
    done: set[str] = set()
    complete = True
    for task in tasks:
        print(f"{task.name}  ({task.title})")
        print("\n".join(line for p, line in zip(placements, lines, strict=True) if p.task == task.name))
        for need in (n for n in needs[task.name] if n.folder):
            src = catalogue.image_source(task.name, need.default)
            wanted = force or not _folder_present(root, need, task.name)  # --force re-unpacks an incomplete folder
            if images and src is not None and (src.url or src.hub_zips or src.listed_in) and src.folder not in done \
                    and wanted:
                print(fetch_images(src, root, progress), flush=True)
                done.add(src.folder)
            print(_image_line(root, need, task.name))
        if task.postprocess == "okvqa":
            line, ok = _nltk_line(offline=source is not None)
            complete = complete and ok
            print(line, flush=True)
    print(f"next: flamingo-eval data check {' '.join(t.name for t in tasks)} --data-root {root}")
    return 0 if complete else 1


def check_command(names: list[str], data_root: str | os.PathLike) -> int:
    """Print each task's findings; 1 when anything a run needs is missing."""
    started = time.time()
    missing = 0
    for task in resolve_tasks(names):
        findings = check_task(task, data_root)
        missing += sum(f.status == "missing" for f in findings)
        print(format_findings(task, findings), flush=True)
    verdict = f"{missing} problem(s) found" if missing else "everything the tasks read is in place"
    print(f"{verdict} ({time.time() - started:.1f} s)")
    return 1 if missing else 0
