"""The main command: of-toy on the generated toy data, every task at 0 and 4 shots, random and RICES.

It is the harness end to end with nothing to download: toy data generated on first use, the shipped
toy Flamingo loaded through its preset, RICES over the toy's own ViT (``local-dir:``, no pretrained
tag), then the leaderboard CSV, markdown and plot, and the report (``flamingo-eval report``) to open in a
browser. ``--num-samples`` shrinks it for CI, which skips the report (``report=False``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flamingo_eval.models.base import ModelAdapter
from flamingo_eval.models.flamingo.presets import TOY_DIR
from flamingo_eval.toy.datasets import TASKS

MODEL = "of-toy"
SHOTS = (0, 4)
RICES_ENCODER = f"local-dir:{Path(TOY_DIR) / 'vit'}"


def runnable(tasks: Sequence[str]) -> list[str]:
    """The tasks this machine can score: OK-VQA's stemming needs NLTK data that only a download provides."""
    from flamingo_eval.metrics.okvqa_stem import install_hint, missing_nltk_data

    if "okvqa" in tasks and missing_nltk_data():
        print(f"demo: skipping okvqa: its answer stemming needs NLTK data ({', '.join(missing_nltk_data())}); "
              f"get it with `{install_hint()}`", file=sys.stderr, flush=True)
        return [t for t in tasks if t != "okvqa"]
    return list(tasks)


def run_demo(output_dir: str | Path = "results/runs/demo", data_root: str | Path | None = None, *,
             tasks: Sequence[str] = TASKS, shots: Sequence[int] = SHOTS, num_samples: int | None = None,
             seed: int = 0, batch_size: int = 16, progress: bool = True, model: ModelAdapter | None = None,
             report: bool = True) -> list[dict]:
    """Evaluate of-toy (random, then RICES demonstrations), write the leaderboard beside the results and the
    report in ``<output_dir>/report``.

    ``model`` replaces the loaded of-toy (e.g. the same network with random weights, for comparison).
    """
    from flamingo_eval.leaderboard import leaderboard, to_markdown
    from flamingo_eval.models import load_model
    from flamingo_eval.runner import RunConfig, Runner
    from flamingo_eval.toy import default_root, ensure_toy_data

    started = time.time()
    tasks = runnable(tasks)
    root = ensure_toy_data(Path(data_root) if data_root else default_root(seed), seed)
    out = Path(output_dir)
    model = model or load_model(MODEL)
    results = []
    for rices in (False, True):
        config = RunConfig(model=MODEL, tasks=list(tasks), shots=list(shots), seeds=[42], rices=rices,
                           rices_encoder=RICES_ENCODER, rices_pretrained=None, num_samples=num_samples,
                           batch_size=batch_size, data_root=str(root), output_dir=str(out), progress=progress)
        results.extend(Runner(config, model=model).run())
    rows = leaderboard([str(out / MODEL)], out / "leaderboard.csv", out / "leaderboard.md", out / "shots.png")
    print(to_markdown(rows), end="")
    print(f"{len(results)} results in {time.time() - started:.0f}s; toy data {root}; "
          f"leaderboard {out / 'leaderboard.csv'}, plot {out / 'shots.png'}", flush=True)
    if report:
        from flamingo_eval.report import build_report

        summary = build_report([str(out / MODEL)], out / "report", progress=progress)
        print(f"report: {summary.items} items, {summary.images.images} images, {summary.bytes / 1e6:.1f} MB; "
              f"open {summary.index_html.resolve().as_uri()}", flush=True)
    return results
