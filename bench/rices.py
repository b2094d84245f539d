"""RICES at VQAv2's real shape: exact index over the train images, every val image searched, demos per question.

Pool: 443,757 train questions over 82,783 images; queries: 214,354 val questions over 40,504 images;
768-d random L2-normalised features (the CLIP forward is not measured), top-32. Budget: 2 minutes on 2 CPU cores.

    python bench/rices.py [--backend faiss-cpu|torch] [--scale 0.1] [--k 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flamingo_eval.demos.index import FlatIPIndex, choose_backend  # noqa: E402
from flamingo_eval.demos.rices import ImageMembers, expand_neighbours, to_demos  # noqa: E402

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


class Pool:
    """Stands in for a Sequence[Sample]: indexing yields the pool index, so no Sample objects are built."""

    def __len__(self) -> int:
        return POOL_QUESTIONS

    def __getitem__(self, i: int) -> int:
        return i


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=None, help="faiss-cpu, faiss-gpu or torch (default: best available)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink every count (a quick smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    global POOL_QUESTIONS, POOL_IMAGES, QUERY_QUESTIONS, QUERY_IMAGES
    if args.scale != 1.0:
        POOL_QUESTIONS, POOL_IMAGES, QUERY_QUESTIONS, QUERY_IMAGES = (
            max(1, int(n * args.scale)) for n in (POOL_QUESTIONS, POOL_IMAGES, QUERY_QUESTIONS, QUERY_IMAGES))
    rng = np.random.default_rng(args.seed)
    pool_rows = questions_over_images(rng, POOL_QUESTIONS, POOL_IMAGES)
    query_rows = questions_over_images(rng, QUERY_QUESTIONS, QUERY_IMAGES)
    pool_feats = unit_rows(rng, POOL_IMAGES, DIM)
    query_feats = unit_rows(rng, QUERY_IMAGES, DIM)
    backend = args.backend or choose_backend(args.device)
    print(f"RICES bench: pool {POOL_QUESTIONS:,} questions / {POOL_IMAGES:,} images, queries {QUERY_QUESTIONS:,}"
          f" questions / {QUERY_IMAGES:,} images, {DIM}-d, top-{args.k}, backend {backend}")

    if backend == "torch":
        import torch  # noqa: F401 -- the import is not part of the index build

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    index = FlatIPIndex(pool_feats, backend=backend, device=args.device)
    members = ImageMembers.of(pool_rows, POOL_IMAGES)
    times["index build"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sims, imgs = index.search(query_feats, args.k + 1)  # +1: room to drop the query's own image
    times[f"search {QUERY_IMAGES:,} query images"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    exclude = np.full(QUERY_IMAGES, -1, dtype=np.int64)  # val images are not in the train pool
    ranked_idx, ranked_sim = expand_neighbours(imgs, sims, exclude, members, args.k)
    times["expand images -> ranked pool questions"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    per_question = ranked_idx[query_rows]  # every question of an image shares its demonstrations
    assert per_question.shape == (QUERY_QUESTIONS, args.k) and (per_question >= 0).all()
    times[f"demo indices for {QUERY_QUESTIONS:,} questions"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pool = Pool()
    demos = 0
    for row in query_rows:  # what select() does per question: Demo objects, most similar last
        demos += len(to_demos(pool, ranked_idx[row], ranked_sim[row]))
    times[f"Demo lists for {QUERY_QUESTIONS:,} questions"] = time.perf_counter() - t0
    assert demos == QUERY_QUESTIONS * args.k

    total = sum(times.values())
    for name, t in times.items():
        print(f"  {name:<45} {t:8.2f} s")
    print(f"  {'total':<45} {total:8.2f} s  (budget {BUDGET_S:.0f} s: {'OK' if total < BUDGET_S else 'OVER'})")
    return 0 if total < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
