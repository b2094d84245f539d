"""The machine a run would use: the installed stack against the lock, Java, NLTK's data, the GPUs, RICES search.

Each check returns a :class:`~flamingo_eval.doctor.record.Check`; ``fail`` means a run would stop on it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flamingo_eval.doctor.record import Check, size
from flamingo_eval.task import TaskSpec

# VQAv2 val against its train pool, searched once per unique image (demos/rices.py): val2014's and train2014's
# image counts, and ViT-L/14's feature width (the default RICES encoder)
VQAV2_SEARCH = (40_504, 82_783, 768)
PROBE = (20_000, 256)  # pool rows and queries the search speed is measured on: a fraction of a second


@dataclass(frozen=True)
class Gpu:
    name: str
    memory: int  # bytes
    bf16: bool  # native bfloat16 (compute capability 8.0 or newer)


def visible_gpus() -> list[Gpu]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [Gpu(torch.cuda.get_device_properties(i).name, torch.cuda.get_device_properties(i).total_memory,
                torch.cuda.get_device_capability(i) >= (8, 0)) for i in range(torch.cuda.device_count())]


def check_lock() -> Check:
    """The run refuses a stack outside the declared ranges; a stack that merely differs from the lock is recorded."""
    from flamingo_eval import stack

    bad = stack.out_of_range()
    if bad:
        allowed = os.environ.get(stack.UNTESTED_ENV) == "1"
        return Check("lock", "warn" if allowed else "fail", f"untested versions: {', '.join(bad)}"
                     + (f" (allowed by {stack.UNTESTED_ENV}=1; results record it)" if allowed else ""),
                     "install the locked versions: `make clean setup`")
    lock = stack.read_lock()
    if lock is None:
        return Check("lock", "warn", f"no {stack.LOCK_FILE.name} (an install outside a checkout): versions unchecked",
                     "install from a checkout with `make setup` to run on the tested stack")
    diff = stack.lock_differences(lock)
    if diff:
        names = ", ".join(f"{n} {d['installed'] or '(missing)'} (locked {d['locked'] or 'none'})"
                          for n, d in list(diff.items())[:4]) + (" ..." if len(diff) > 4 else "")
        return Check("lock", "warn", f"{len(diff)} package(s) differ from {stack.LOCK_FILE.name}: {names}; "
                                     f"results record it", "`make clean setup` installs the lock")
    return Check("lock", "ok", f"installed packages match {stack.LOCK_FILE.name}")


def check_java(tasks: Sequence[TaskSpec]) -> Check | None:
    """CIDEr's PTB tokenizer is a Java program; None where no named task is scored with CIDEr."""
    from flamingo_eval.metrics.cider import JAVA_HINT

    users = [t.name for t in tasks if t.metric == "cider"]
    if not users:
        return None
    java = shutil.which("java")
    if java is None:
        return Check("java", "fail", f"no `java` on PATH; CIDEr ({', '.join(users)}) cannot be scored", JAVA_HINT)
    return Check("java", "ok", f"{java} (CIDEr: {', '.join(users)})")


def check_nltk(tasks: Sequence[TaskSpec], data_root: str) -> Check | None:
    """OK-VQA's answer stemming needs three NLTK resources; None where no named task stems its answers."""
    users = [t.name for t in tasks if t.postprocess == "okvqa"]
    if not users:
        return None
    from flamingo_eval.metrics.okvqa_stem import copy_hint, missing_nltk_data

    try:
        missing = missing_nltk_data()
    except ImportError as e:
        return Check("nltk", "fail", f"the Python package {e.name!r} is missing", "pip install nltk inflection")
    if missing:
        return Check("nltk", "fail", f"NLTK data missing for {', '.join(users)}'s stemming: {', '.join(missing)}",
                     f"`flamingo-eval data fetch okvqa --data-root {data_root}` downloads it into the cache; "
                     f"offline, {copy_hint(missing)}")
    return Check("nltk", "ok", f"NLTK data for {', '.join(users)}'s stemming in place")


def check_cuda(gpus: Sequence[Gpu], device: str, precision: str) -> Check:
    """No GPU blocks only a run asked to use one; on the CPU it is a warning (the toy model runs there)."""
    import torch

    if not gpus:
        build = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (a CPU-only build)'}"
        fix = ("check `nvidia-smi` and CUDA_VISIBLE_DEVICES, and install a CUDA build of torch "
               "(https://pytorch.org/get-started/locally/)")
        if device.startswith("cuda"):
            return Check("cuda", "fail", f"--device {device} but no CUDA device is visible ({build})", fix)
        return Check("cuda", "warn", f"no GPU visible ({build}): runs go on the CPU, fine for of-toy, far too slow "
                                     f"for the released models", fix)
    listed = "; ".join(f"cuda:{i} {g.name}, {size(g.memory)}, bf16 {'yes' if g.bf16 else 'no'}"
                       for i, g in enumerate(gpus))
    if precision == "bf16" and not all(g.bf16 for g in gpus):
        return Check("cuda", "warn", f"{listed}: --precision bf16 on a GPU without native bfloat16 is emulated "
                                     f"and slow", "use --precision fp16 or fp32 on this card")
    return Check("cuda", "ok", listed)


def search_rate(backend: str, device: str, dim: int, probe: tuple[int, int] = PROBE) -> float:
    """Query-pool pairs per second of RICES's exact search here, measured on random unit vectors."""
    from flamingo_eval.demos.index import FlatIPIndex

    rng = np.random.default_rng(0)
    pool = rng.standard_normal((probe[0], dim), dtype=np.float32)
    queries = rng.standard_normal((probe[1], dim), dtype=np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    index = FlatIPIndex(pool, backend=backend, device=device)
    index.search(queries[:8], 33)  # warm-up: thread pools, first allocation
    started = time.perf_counter()
    index.search(queries, 33)
    return probe[0] * probe[1] / max(time.perf_counter() - started, 1e-9)


def check_search(gpus: Sequence[Gpu], device: str) -> Check:
    """Which exact search RICES will use (demos/index.py ``choose_backend``) and, on the CPU, how long VQAv2's
    takes here, extrapolated from a measured probe (search time grows with queries x pool)."""
    from flamingo_eval.demos.index import choose_backend

    on_gpu = bool(gpus) and device.startswith("cuda")
    backend = choose_backend(device if on_gpu else "cpu")
    if backend == "faiss-gpu":
        return Check("search", "ok", "RICES searches with faiss-gpu (exact IndexFlatIP on the GPU)")
    if backend == "torch" and on_gpu:
        return Check("search", "ok", "faiss is not installed: RICES runs its exact torch matmul + top-k on the GPU")
    queries, pool, dim = VQAV2_SEARCH
    seconds = queries * pool / search_rate(backend, "cpu", dim)
    path = ("faiss-cpu IndexFlatIP on the CPU" if backend == "faiss-cpu"
            else "the exact torch matmul + top-k on the CPU (faiss is not installed)")
    scale = (f"VQAv2's search ({queries:,} val2014 images against {pool:,} train2014 images, {dim}-d) would take "
             f"roughly {seconds:.0f} s here (extrapolated from {PROBE[0]:,} x {PROBE[1]} random vectors)")
    if on_gpu:  # faiss is installed without GPU support
        return Check("search", "warn", f"faiss has no GPU support: RICES falls back to {path}; {scale}",
                     "`make setup FAISS=gpu` installs faiss-gpu instead of faiss-cpu")
    return Check("search", "ok", f"RICES searches with {path}; {scale}")
