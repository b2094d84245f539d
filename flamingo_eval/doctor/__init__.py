"""``flamingo-eval doctor``: before hours of GPU time, everything a run of the named tasks and model needs.

One line per check with its fix; exit 1 when any would stop a run. What stops a run ("fail"): a stack outside
the supported ranges, Java missing for a CIDEr task, NLTK's data missing for OK-VQA, no GPU where ``--device
cuda`` is asked, a cache disk too small, a task's data missing, a model's weights missing where they cannot be
downloaded, a model too large for the memory it would run in. What only slows or qualifies one ("warn"): no GPU
for a CPU run, faiss without GPU support beside a GPU, a stack that differs from the lock, weights a run will
download, published splits of another size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from flamingo_eval.doctor.record import Check
from flamingo_eval.task import TaskSpec

__all__ = ["Check", "run_checks", "doctor_command"]


def check_data(task: TaskSpec, data_root: str | Path) -> Check:
    """``data check``'s findings for one task, summed up in one line (its first problem and fix named)."""
    from flamingo_eval.data_setup.check import check_task

    findings = check_task(task, data_root)
    counts = {s: sum(f.status == s for f in findings) for s in ("ok", "warn", "missing")}
    worst = next((f for f in findings if f.status == "missing"), None) or next(
        (f for f in findings if f.status == "warn"), None)
    summary = f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['missing']} missing"
    if worst is None:
        return Check(f"data {task.name}", "ok", f"{summary} under {data_root}")
    status = "fail" if counts["missing"] else "warn"
    details = f"`flamingo-eval data check {task.name} --data-root {data_root}` lists them all"
    return Check(f"data {task.name}", status, f"{summary}; first: {worst.what}",
                 f"{worst.fix}; {details}" if worst.fix else details)


def run_checks(tasks: Sequence[TaskSpec], model: str | None, data_root: str | Path, precision: str = "fp32",
               device: str | None = None) -> Iterator[Check]:
    """The checks in order, each as soon as it is done (a first data check of full-size VQAv2 takes a while);
    ``device`` None means a GPU where one is visible."""
    from flamingo_eval.doctor import environment
    from flamingo_eval.doctor.model import check_model
    from flamingo_eval.doctor.storage import check_disk

    gpus = environment.visible_gpus()
    device = device or ("cuda" if gpus else "cpu")
    yield environment.check_lock()
    for optional in (environment.check_java(tasks), environment.check_nltk(tasks, str(data_root))):
        if optional is not None:
            yield optional
    yield environment.check_cuda(gpus, device, precision)
    yield environment.check_search(gpus, device)
    for task in tasks:
        yield check_data(task, data_root)
    yield check_disk(tasks, data_root)
    if model:
        yield from check_model(model, precision, gpus, device)


def doctor_command(names: list[str], model: str | None, data_root: str | Path, precision: str = "fp32",
                   device: str | None = None) -> int:
    """Print every check; 1 when any would stop a run."""
    from flamingo_eval.data_setup.needs import resolve_tasks

    checks = []
    for c in run_checks(resolve_tasks(names), model, data_root, precision, device):
        print(c.line(), flush=True)
        checks.append(c)
    fails, warns = sum(c.status == "fail" for c in checks), sum(c.status == "warn" for c in checks)
    print(f"{fails} problem(s) would stop a run, {warns} warning(s)" if fails else
          f"nothing stops a run ({warns} warning(s))")
    return 1 if fails else 0
