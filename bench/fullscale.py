"""A full-scale cell's memory: VQAv2 val (214,354 questions) at 32 shots, 3 trials, under torchrun.

The model is a stub that answers at once (the last demonstration's answer) and never opens an image, so what
is measured is the harness: prompts, records, item logs, gathering, scoring and the samples file. Each rank
prints its peak resident memory (VmHWM) once the data is loaded and at exit; the table has one row per rank,
and the growth between the two is what the cell itself held.

    python bench/fullscale.py                           # 1/64 of VQAv2 val, 2 processes (a minute)
    python bench/fullscale.py --scale 1 --nproc 2       # the real size (writes ~200 MB of synthetic JSON)

The synthetic data is in the real file format (``v2_OpenEnded_mscoco_*`` questions and annotations); no
image files exist. ``--root`` keeps it between runs. The printed digest covers the samples file and the
result without its volatile fields, so two code versions can be checked for identical output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAL_QUESTIONS = 214_354  # VQAv2 val2014
ANSWERS = ["yes", "no", "2", "red", "two", "it's fine", "t-shirt", "10:30", "blue", "none"]
VOLATILE = ("wall_time_s", "created", "git_commit", "versions", "lock")


def write_vqav2(root: Path, n_val: int, n_train: int) -> None:
    """VQAv2's four annotation files at the given sizes (five questions per image, ten answers each)."""
    d = root / "vqav2"
    d.mkdir(parents=True, exist_ok=True)
    for split, n, base in (("train2014", n_train, 100_000), ("val2014", n_val, 500_000)):
        with open(d / f"v2_OpenEnded_mscoco_{split}_questions.json", "w") as f:
            json.dump({"data_subtype": split, "questions": [
                {"image_id": base + i // 5, "question": f"What is the colour of thing number {i}?",
                 "question_id": base * 10 + i} for i in range(n)]}, f)
        with open(d / f"v2_mscoco_{split}_annotations.json", "w") as f:
            json.dump({"data_subtype": split, "annotations": [
                {"question_type": "what is", "multiple_choice_answer": ANSWERS[i % 10], "image_id": base + i // 5,
                 "answer_type": "other", "question_id": base * 10 + i,
                 "answers": [{"answer": ANSWERS[(i + j) % 10], "answer_confidence": "yes", "answer_id": j + 1}
                             for j in range(10)]}
                for i in range(n)]}, f)


def stub_model():
    from flamingo_eval.models.base import ModelAdapter
    from flamingo_eval.models.flamingo.render import render

    class LastDemoAnswer(ModelAdapter):
        """Answers with the last demonstration's answer, instantly, without loading any image."""

        name = "stub-instant"

        def generate(self, prompts, settings):
            return [p[-2].text.rsplit(":", 1)[-1] if len(p) > 1 else "" for p in prompts]

        def rank(self, prompts, options):
            return [[-float(len(o)) for o in options] for _ in prompts]

        def option_lengths(self, options):
            return [1 for _ in options]

        def render(self, prompt):
            return render(prompt)

        def describe(self):
            return {"name": self.name, "checkpoint_sha256": "none"}

    return LastDemoAnswer()


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args: argparse.Namespace) -> int:
    """One rank (or the only process): run the cell with the stub, print this rank's peak memory."""
    from flamingo_eval.runner import RunConfig, Runner

    config = RunConfig(model="stub-instant", tasks=[args.task], shots=[args.shots],
                       seeds=[42 + i for i in range(args.trials)], data_root=str(args.root),
                       output_dir=str(args.out), batch_size=args.batch_size, progress=False)
    t = time.perf_counter()
    runner = Runner(config, model=stub_model())
    loaded = peak_rss_mb()  # the data, the model stub and (under torchrun) torch.distributed
    runner.run()
    print("RANK " + json.dumps({"rank": runner.world.rank, "loaded_mb": round(loaded, 1),
                                "peak_rss_mb": round(peak_rss_mb(), 1),
                                "seconds": round(time.perf_counter() - t, 1)}), flush=True)
    return 0


def digest(out: Path, stem: str) -> str:
    """sha256 over the samples file's bytes and the result without its volatile fields."""
    run_dir = out / "stub-instant"
    result = json.loads((run_dir / f"{stem}.json").read_text())
    kept = {k: v for k, v in result.items() if k not in VOLATILE and k != "world_size"}
    h = hashlib.sha256((run_dir / f"{stem}.samples.jsonl").read_bytes())
    h.update(json.dumps(kept, sort_keys=True).encode())
    return h.hexdigest()[:16]


def launch(args: argparse.Namespace, out: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [str(Path(__file__).resolve()), "--worker", "--root", str(args.root), "--out", str(out), "--task",
           args.task, "--shots", str(args.shots), "--trials", str(args.trials), "--batch-size", str(args.batch_size)]
    if args.nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.nproc),
               "--master_port", str(29400 + os.getpid() % 500), *cmd]
    else:
        cmd = [sys.executable, *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rows = [json.loads(line[5:]) for line in proc.stdout.splitlines() if line.startswith("RANK ")]
    return sorted(rows, key=lambda r: r["rank"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1 / 64, help="fraction of VQAv2 val's 214,354 questions")
    p.add_argument("--pool", type=int, default=20_000, help="train questions (the demonstration pool)")
    p.add_argument("--shots", type=int, default=32)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--root", type=Path, help="where to keep the synthetic data between runs (default: a temporary folder)")
    p.add_argument("--out", type=Path, help="output folder, kept (default: a temporary folder)")
    p.add_argument("--task", default="vqav2", help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as tmp:
        n_val = max(1, round(VAL_QUESTIONS * args.scale))
        args.root = (args.root or Path(tmp)) / f"vqav2-{n_val}-{args.pool}"
        if not (args.root / "vqav2" / "v2_mscoco_val2014_annotations.json").exists():
            write_vqav2(args.root, n_val, args.pool)
        out = args.out or Path(tmp) / "runs"
        os.environ.setdefault("FLAMINGO_EVAL_CACHE", str(Path(tmp) / "cache"))
        t = time.perf_counter()
        rows = launch(args, out)
        wall = time.perf_counter() - t
        print(f"{n_val} questions, {args.shots} shots, {args.trials} trials, {args.nproc} process(es), "
              f"{wall:.0f} s; output digest {digest(out, f'{args.task}_{args.shots}shot_random')}")
        print("| rank | peak RSS after loading (MB) | peak RSS at exit (MB) | growth in the cell (MB) | seconds |\n"
              "|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['rank']} | {r['loaded_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['peak_rss_mb'] - r['loaded_mb']:.0f} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
