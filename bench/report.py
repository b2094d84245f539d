"""The report at scale: a synthetic VQAv2-shaped run (samples.jsonl in the real format), its report's size on
disk, and the time to first view in headless Chromium (which must not load any sample data).

Default: 5,000 items x 32 shots x 3 trials (random demonstrations, one cell), 3,000 distinct 320x240 JPEGs.
Budget: first view under 1 s; a cell's first page of cards under 2 s.

    python bench/report.py [--items 5000] [--shots 32] [--trials 3] [--images 3000] [--selection random|rices]
                           [--keep DIR]

``--items 214354 --trials 1`` is a full VQAv2 val trial (the first view is the same; writing takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flamingo_eval.report import build_report  # noqa: E402
from flamingo_eval.report.headless import BrowserError, Chromium, find_chromium  # noqa: E402
from flamingo_eval.results import SCHEMA  # noqa: E402

FIRST_VIEW_BUDGET_MS = 1000.0
CELL_BUDGET_MS = 2000.0
QUESTIONS_PER_IMAGE = 5.3  # VQAv2 val: 214,354 questions over 40,504 images
QUERY_SET = 2048  # random demonstrations come from this many pool questions per seed
POOL_QUESTIONS = 443_757  # VQAv2 train: what RICES retrieves from
COLOURS = ["red", "blue", "green", "white", "black", "yellow", "brown", "gray", "orange", "pink"]
OBJECTS = ["bus", "cat", "dog", "man", "woman", "car", "plate", "shirt", "sky", "umbrella", "train", "kite"]


def _question(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(3)
    obj = rng.choice(OBJECTS)
    if kind == 0:
        return f"What color is the {obj}?", rng.choice(COLOURS)
    if kind == 1:
        return f"How many {obj}s are in the picture?", str(rng.randrange(1, 6))
    return f"Is there a {obj} in the image?", rng.choice(["yes", "no"])


def write_images(root: Path, keys: list[str], seed: int = 0) -> None:
    """Small photos with some structure (a gradient and shapes), as JPEGs at their keys under root."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    for key in keys:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        im = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
        draw = ImageDraw.Draw(im)
        for _ in range(4):
            x, y = rng.randrange(280), rng.randrange(200)
            draw.ellipse((x, y, x + rng.randrange(20, 80), y + rng.randrange(20, 80)),
                         fill=tuple(rng.randrange(256) for _ in range(3)))
        im.save(path, "JPEG", quality=85)


def synthetic_run(out: Path, data_root: Path, items: int, shots: int, trials: int, images: int,
                  model: str = "bench-model", seed: int = 0, make_images: bool = True, selection: str = "random",
                  ) -> Path:
    """A VQAv2-shaped run in the real format: <out>/<model>/vqav2_<shots>shot_<selection>.{json,samples.jsonl}.

    ``images`` distinct files: a third for the evaluated questions (about 5.3 per image), the rest for the pool.
    Random: each item's demonstrations drawn from a 2,048-question query set per seed. RICES: from the whole pool
    (443,757 questions, VQAv2 train's), the same for the questions of one image, with similarities; one trial.
    """
    rng = random.Random(seed)
    n_query_images = max(1, min(images // 3, int(items / QUESTIONS_PER_IMAGE) or 1))
    n_pool_images = max(1, images - n_query_images)
    query_keys = [f"coco/val2014/COCO_val2014_{i:012d}.jpg" for i in range(n_query_images)]
    pool_keys = [f"coco/train2014/COCO_train2014_{i:012d}.jpg" for i in range(n_pool_images)]
    if make_images:
        write_images(data_root, query_keys + pool_keys, seed)
    rices = selection == "rices"
    trials = 1 if rices else trials
    pool_size = POOL_QUESTIONS if rices else max(QUERY_SET, shots) * 4
    pool = []
    for i in range(pool_size):
        q, a = _question(rng)
        pool.append((f"{i * 1000 + 7}", pool_keys[i % n_pool_images], f"Question:{q} Short answer:{a}"))
    queries = []
    for i in range(items):
        q, a = _question(rng)
        refs = [a] * rng.randrange(5, 11) + [rng.choice(COLOURS)] * 0
        refs += [rng.choice(COLOURS) for _ in range(10 - len(refs))]
        # VQAv2's questions come grouped by image (question id = image id * 1000 + k), and so do the samples
        queries.append((f"{i * 1000 + 3}", query_keys[i * n_query_images // items], f"Question:{q} Short answer:",
                        refs))
    run = out / model
    run.mkdir(parents=True, exist_ok=True)
    stem = f"vqav2_{shots}shot_{selection}"
    per_trial = []
    with open(run / f"{stem}.samples.jsonl", "w") as f:
        for t in range(trials):
            trial_rng = random.Random(f"{seed}-{t}")
            query_set = None if rices else trial_rng.sample(range(pool_size), QUERY_SET)
            total = 0.0
            for n, (qid, key, text, refs) in enumerate(queries):
                if rices:  # the neighbours of the query's image
                    image_rng = random.Random(f"{seed}-{n * n_query_images // items}")
                    demos = [pool[j] for j in image_rng.sample(range(pool_size), shots)]
                    sims = sorted(round(image_rng.uniform(0.6, 0.95), 6) for _ in demos)
                else:
                    demos = [pool[j] for j in trial_rng.sample(query_set, shots)]
                    sims = None
                answer = trial_rng.choice(refs) if trial_rng.random() < 0.6 else trial_rng.choice(COLOURS)
                score = round(100.0 * min(1.0, refs.count(answer) / 3), 4)
                total += score
                chunks = [{"image": d[1], "text": d[2]} for d in demos] + [{"image": key, "text": text}]
                prompt = "".join(f"<image>{c['text']}<|endofchunk|>\n" for c in chunks[:-1]) + f"<image>{text}"
                f.write(json.dumps({"seed": 42 + t, "id": qid, "demos": [d[0] for d in demos], "similarities": sims,
                                    "chunks": chunks, "prompt": prompt, "output": answer, "answer": answer,
                                    "references": refs, "score": score}) + "\n")
            per_trial.append({"seed": 42 + t, "score": total / items, "n": items, "skipped": 0})
    scores = [t["score"] for t in per_trial]
    mean = sum(scores) / len(scores)
    result = {"schema": SCHEMA, "model": {"name": model}, "shots": shots,
              "task": {"name": "vqav2", "metric": "vqa_accuracy", "kind": "vqa"},
              "selection": {"selection": selection}, "seeds": [t["seed"] for t in per_trial], "trials": per_trial,
              "mean": mean, "std": statistics.pstdev(scores), "n": items, "created": "2026-01-01T00:00:00+00:00",
              "samples_file": f"{stem}.samples.jsonl",
              "data_paths": {"coco/train2014": str(data_root / "coco/train2014"),
                             "coco/val2014": str(data_root / "coco/val2014")}}
    (run / f"{stem}.json").write_text(json.dumps(result))
    return run


def disk_usage(path: Path) -> tuple[int, int]:
    """Apparent bytes and allocated bytes (what du reports) under a folder."""
    apparent = allocated = 0
    for root, _, names in os.walk(path):
        for n in names:
            st = os.stat(os.path.join(root, n))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def first_view(index: Path, repeats: int = 5) -> dict[str, float | list[str]]:
    """Median time to the first view (performance mark set by the page) and to the load event, fresh page each
    time; and which files the first view loaded."""
    marks, loads = [], []
    with Chromium() as browser:
        for _ in range(repeats):
            browser.open("about:blank")
            loads.append(1000 * browser.open(index.as_uri()))
            browser.wait_for("document.querySelector('#main').dataset.ready === '1'")
            marks.append(browser.evaluate("performance.getEntriesByName('first-view')[0].startTime"))
        base = index.parent.as_uri() + "/"
        loaded = [u.removeprefix(base) for u in browser.requests if u.startswith(base)]
        cell_ms = []
        cell = browser.evaluate("document.querySelector('table.leaderboard tbody tr').dataset.cell")
        for _ in range(repeats):
            browser.open("about:blank")
            started = time.monotonic()
            browser.open(index.as_uri() + f"#/cell/{cell}")
            browser.wait_for("document.querySelector('#main').dataset.ready === '1' && "
                             "[...document.querySelectorAll('article.card img')].every(i => i.complete)")
            cell_ms.append(1000 * (time.monotonic() - started))
        cards = browser.evaluate("document.querySelectorAll('article.card').length")
        if browser.errors:
            raise BrowserError(f"page errors: {browser.errors}")
    return {"first_view_ms": statistics.median(marks), "load_ms": statistics.median(loads), "loaded": loaded,
            "cell_ms": statistics.median(cell_ms), "cards": cards}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--shots", type=int, default=32)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--selection", choices=["random", "rices"], default="random")
    ap.add_argument("--keep", type=Path, help="write the run and report here and keep them")
    args = ap.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    cache = work / "cache"
    os.environ["FLAMINGO_EVAL_CACHE"] = str(cache)  # thumbnails made afresh, not from the user's cache
    try:
        t0 = time.perf_counter()
        run = synthetic_run(work / "runs", work / "data", args.items, args.shots, args.trials, args.images,
                            selection=args.selection)
        made = time.perf_counter() - t0
        samples = sum(p.stat().st_size for p in run.glob("*.samples.jsonl"))
        trials = 1 if args.selection == "rices" else args.trials
        print(f"report bench: {args.items:,} items x {args.shots} shots x {trials} trials ({args.selection}), "
              f"{args.images:,} images; samples.jsonl {samples / 1e6:.1f} MB (made in {made:.1f} s)")
        shutil.rmtree(work / "report", ignore_errors=True)
        t0 = time.perf_counter()
        summary = build_report([str(run)], work / "report", progress=False)
        took = time.perf_counter() - t0
        apparent, allocated = disk_usage(work / "report")
        thumbs = disk_usage(work / "report" / "thumbs")
        print(f"  report written in {took:.1f} s: {summary.files:,} files, {apparent / 1e6:.1f} MB "
              f"({allocated / 1e6:.1f} MB on disk); thumbnails {summary.images.images:,} = {thumbs[0] / 1e6:.1f} MB, "
              f"sample data {(apparent - thumbs[0]) / 1e6:.1f} MB; first view reads {summary.first_view_bytes / 1e3:.0f} kB")
        if find_chromium() is None:
            print("  no Chromium: first view not measured (apt-get install chromium)")
            return 0
        fv = first_view((work / "report" / "index.html").resolve())
        only_index = [u for u in fv["loaded"] if u.startswith("data/")] == ["data/index.js"]
        print(f"  first view {fv['first_view_ms']:.0f} ms (load event {fv['load_ms']:.0f} ms; loaded "
              f"{', '.join(sorted(fv['loaded']))}: {'no sample data' if only_index else 'SAMPLE DATA LOADED'})")
        print(f"  a cell's first page ({fv['cards']} cards, images loaded) {fv['cell_ms']:.0f} ms")
        ok = fv["first_view_ms"] < FIRST_VIEW_BUDGET_MS and fv["cell_ms"] < CELL_BUDGET_MS and only_index
        print(f"  budget: first view < {FIRST_VIEW_BUDGET_MS:.0f} ms, cell < {CELL_BUDGET_MS:.0f} ms: "
              f"{'OK' if ok else 'OVER'}")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
