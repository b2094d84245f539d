"""RICES at VQAv2's real shape: exact index over train images, every val image searched, demos per question.

Pool: 443,757 train questions over 82,783 images; queries: 214,354 val questions over 40,504 images;
768-d random L2-normalised features (the CLIP forward is not measured), top-32.
Budget: 2 minutes on 2 CPU cores.

    python bench/rices.py [--backend faiss-cpu|torch] [--scale 0.1] [--k 32]

It drives the real RicesSelector (build_index, prepare, select for every question) with in-memory features.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flamingo_eval.data.sample import Sample  # noqa: E402
from flamingo_eval.demos.index import FlatIPIndex, choose_backend  # noqa: E402
from flamingo_eval.demos.rices import RicesSelector  # noqa: E402
from flamingo_eval.prompt import Image  # noqa: E402

POOL_QUESTIONS, POOL_IMAGES = 443_757, 82_783
QUERY_QUESTIONS, QUERY_IMAGES = 214_354, 40_504
DIM = 768
BUDGET_S = 120.0


def questions_over_images(rng: np.random.Generator, questions: int, images: int) -> np.ndarray:
    """Each question's image row; every image has at least one question, as in VQAv2."""
    rows = np.concatenate([np.arange(images), rng.integers(0, images, questions - images)])
    rng.shuffle(rows)
    return rows


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def split(prefix: str, rows: np.ndarray) -> list[Sample]:
    images = [Image(key=f"{prefix}/{r}") for r in range(int(rows.max()) + 1)]
    return [Sample(id=f"{prefix}-q{i}", image=images[r]) for i, r in enumerate(rows)]


class InMemoryFeatures:
    """Random features by image key, in place of the CLIP encoder and its disk cache."""

    name, pretrained, identity = "random", None, "random"

    def __init__(self, by_prefix: dict[str, np.ndarray]):
        self.by_prefix = by_prefix

    def __call__(self, table, fingerprint, encoder) -> np.ndarray:
        prefix = table.keys[0].partition("/")[0]
        return self.by_prefix[prefix][[int(k.partition("/")[2]) for k in table.keys]]


@contextlib.contextmanager
def search_timer() -> Iterator[list[float]]:
    """Accumulates the time spent in FlatIPIndex.search, to report it apart from the expansion."""
    spent = [0.0]
    search = FlatIPIndex.search

    def timed(index, queries, k):
        t0 = time.perf_counter()
        try:
            return search(index, queries, k)
        finally:
            spent[0] += time.perf_counter() - t0

    FlatIPIndex.search = timed
    try:
        yield spent
    finally:
        FlatIPIndex.search = search


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=None, help="faiss-cpu, faiss-gpu or torch (default: best available)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink every count (a quick smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    counts = (POOL_QUESTIONS, POOL_IMAGES, QUERY_QUESTIONS, QUERY_IMAGES)
    pool_q, pool_i, query_q, query_i = (max(1, int(n * args.scale)) for n in counts)
    rng = np.random.default_rng(args.seed)
    pool = split("train", questions_over_images(rng, pool_q, pool_i))
    queries = split("val", questions_over_images(rng, query_q, query_i))
    features = InMemoryFeatures({"train": unit_rows(rng, pool_i, DIM), "val": unit_rows(rng, query_i, DIM)})
    backend = args.backend or choose_backend(args.device)
    if backend == "torch":
        import torch  # noqa: F401 -- the import is not part of the index build
    print(
        f"RICES bench: pool {pool_q:,} questions / {pool_i:,} images, queries {query_q:,} questions / "
        f"{query_i:,} images, {DIM}-d, top-{args.k}, backend {backend}"
    )

    selector = RicesSelector(
        pool, "bench-train", features, device=args.device, backend=backend, depth=args.k, features=features
    )
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    selector.build_index()
    times["index build (pool images, members)"] = time.perf_counter() - t0

    with search_timer() as search:
        t0 = time.perf_counter()
        selector.prepare(queries, "bench-val")
        prepare = time.perf_counter() - t0
    times[f"prepare: search {query_i:,} query images"] = search[0]
    times["prepare: query table, expand to pool questions"] = prepare - search[0]

    t0 = time.perf_counter()
    demos = sum(len(selector.select(q, args.k)) for q in queries)
    times[f"select() for {query_q:,} questions"] = time.perf_counter() - t0
    assert demos == query_q * args.k

    total = sum(times.values())
    for name, t in times.items():
        print(f"  {name:<48} {t:8.2f} s")
    print(
        f"  {'total':<48} {total:8.2f} s  (budget {BUDGET_S:.0f} s: {'OK' if total < BUDGET_S else 'OVER'})"
    )
    return 0 if total < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
