"""ImageNet-style option ranking: the project's ``rank`` vs OpenFlamingo 2.0.1's ``get_rank_classifications``,
on the same weights.

Workload: ImageNet prompts (``<image>Output:{class name}<|endofchunk|>`` demonstrations, no separator, query
``<image>Output:``) at the given shots, a batch of queries ranked over the first C of the 1000 class names
OpenFlamingo uses (flamingo_eval/data/imagenet_classnames.txt). Every query has its own images; all share one
sequence of demonstration labels, so the prompts have the same length: OpenFlamingo's cached class pass has no
attention mask, so with left padding its class tokens would also attend to the padding (the project masks it),
and equal lengths keep the scores comparable.

Systems:
  project      FlamingoAdapter.rank: one prefill per prompt, then the options packed as token trees (a prefix
               that class names share fed once, no padding to a longer name) in passes under a token budget,
               every row continuing the prompt's shared K/V (cascade kernel)
  openflamingo OpenFlamingo 2.0.1's EvalModel.get_rank_classifications(use_cache=True, normalize_length=True)
               itself, in a subprocess with OpenFlamingo's own python (bench/_openflamingo_rank_reference.py):
               one prefill, then per class its tokens one forward each over the cached prompt, each class's
               logits joined to the context's and log-softmaxed whole; the cache cut back to the prompt after
               each class (with today's transformers it would grow in place). Run when $OPENFLAMINGO_VENV
               (default /work/refvenv) has open_flamingo 2.0.1 and $OPENFLAMINGO_SRC (default
               /work/openflamingo-2.0.1) is a checkout of its repository (the wheel lacks eval/models/)
  algorithm    the same algorithm in this process on the project's cached model pass (same weights and
               kernels): the ratio to it measures the algorithm alone, not HF/OpenFlamingo overheads

Every system starts with the timed prompts' images unseen (warm-up on other prompts). The bench prints the
largest difference of the mean log-probabilities (what get_rank_classifications returns) against each
reference and whether the top-1 classes agree, and exits 1 if they do not.

    python bench/rank.py [--classes 1000] [--batch 8] [--shots 4] [--device cpu] [--threads 1] [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.decode import build_model, make_images, reference_python, vision_config  # noqa: E402
from flamingo_eval.models.decoding.run import option_chunks, option_trees  # noqa: E402
from flamingo_eval.models.flamingo import fast  # noqa: E402
from flamingo_eval.models.flamingo.adapter import LATENT_CACHE_BYTES, FlamingoAdapter, load_flamingo  # noqa: E402
from flamingo_eval.models.flamingo.latent_cache import LatentCache  # noqa: E402
from flamingo_eval.models.flamingo.render import render  # noqa: E402
from flamingo_eval.prompt import Chunk, Image, Prompt  # noqa: E402
from flamingo_eval.task import PACKAGE_DATA  # noqa: E402

NAMES = PACKAGE_DATA / "imagenet_classnames.txt"
REFERENCE_SCRIPT = Path(__file__).resolve().parent / "_openflamingo_rank_reference.py"


def class_names(count: int) -> list[str]:
    names = [x for x in NAMES.read_text().splitlines() if not x.startswith("#")]
    return names[:count]


def workload(root: Path, names: list[str], queries: int, shots: int, tag: str, seed: int = 0) -> list[Prompt]:
    """``queries`` prompts with images of their own and one shared sequence of demonstration labels."""
    rng = random.Random(seed)
    folder = root / f"images-{tag}"
    files = [f"{tag}{i}" for i in range(queries * (shots + 1))]
    make_images(folder, files, rng)
    labels = [rng.choice(names) for _ in range(shots)]
    it = iter(files)

    def im(name: str) -> Image:
        return Image(key=f"bench/{name}", path=str(folder / f"{name}.png"))

    return [Prompt([Chunk(im(next(it)), f"Output:{label}") for label in labels]
                   + [Chunk(im(next(it)), "Output:")], separator="") for _ in range(queries)]


def run_openflamingo(python: str, root: Path, args, prompts: list[Prompt], warmup: list[Prompt],
                     names: list[str]) -> tuple[float, list[list[float]]]:
    """OpenFlamingo's get_rank_classifications in its own python; returns (seconds, mean log-probabilities)."""
    as_job = lambda ps: [{"text": render(p), "images": [im.path for c in p for im in c.images]} for p in ps]  # noqa: E731
    job = {
        "vision_config": vision_config(args.vit_width, args.vit_layers),
        "vision_weights": str(root / "vit" / "open_clip_model.safetensors"),
        "lm": str(root / "lm"), "checkpoint": str(root / "checkpoint.pt"), "cross_attn_every_n_layers": args.every,
        "precision": {"fp32": "fp32", "bf16": "amp_bf16", "fp16": "amp"}[args.precision],
        "device": int(args.device.split(":")[1]) if ":" in args.device else (0 if args.device == "cuda" else -1),
        "threads": torch.get_num_threads(), "class_names": names, "prompts": as_job(prompts), "warmup": as_job(warmup),
    }
    (root / "rank-job.json").write_text(json.dumps(job))
    env = dict(os.environ, OPENFLAMINGO_SRC=os.environ.get("OPENFLAMINGO_SRC", "/work/openflamingo-2.0.1"))
    done = subprocess.run([python, str(REFERENCE_SCRIPT), str(root / "rank-job.json"), str(root / "rank-result.json")],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"OpenFlamingo reference failed:\n{done.stderr[-3000:]}")
    result = json.loads((root / "rank-result.json").read_text())
    return result["seconds"], result["scores"]


@torch.inference_mode()
def reference_rank(model: FlamingoAdapter, prompts: list[Prompt], names: list[str]) -> list[list[float]]:
    """get_rank_classifications' algorithm: per class, its tokens one forward each over the cached prompt."""
    ids, mask = model._pad_left(model._tokenize(prompts, 0))
    logits, state = fast.prefill(model.model, ids, mask, model._images(prompts), 1, 0)
    context = torch.zeros((len(prompts), ids.shape[1], logits.shape[-1]), device=logits.device)
    context[:, -1] = logits  # the reference keeps every context position's logits; only the last is read
    scores = []
    for name in names:
        tokens = torch.tensor(model.tokenizer(name, add_special_tokens=False)["input_ids"], device=ids.device)
        step = state.branch(1, len(tokens))  # the cache cut back to the prompt for each class
        out = [fast.extend(model.model, step, tokens[None, t:t + 1].expand(len(prompts), 1)) for t in range(len(tokens))]
        logprobs = torch.log_softmax(torch.cat([context, torch.stack(out, 1)], 1), dim=-1)
        picked = logprobs[:, -len(tokens) - 1:-1].gather(2, tokens[None, :, None].expand(len(prompts), -1, 1))
        scores.append(picked[..., 0].sum(1))
    return torch.stack(scores, 1).tolist()


def timed(fn, sync) -> tuple[float, object]:
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--every", type=int, default=4, help="cross-attention before every n-th LM layer")
    ap.add_argument("--vit-width", type=int, default=256)
    ap.add_argument("--vit-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-reference", action="store_true", help="skip OpenFlamingo's own code")
    ap.add_argument("--no-algorithm", action="store_true", help="skip the in-process reference algorithm")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = class_names(args.classes)
    python = None if args.no_reference else reference_python()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = build_model(root, args)
        model = load_flamingo(str(spec), device=args.device, precision=args.precision)
        prompts = workload(root, names, args.batch, args.shots, "q")
        warmup = workload(root, names, 1, args.shots, "w", seed=1)
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        lengths = model.option_lengths(names)
        model.rank(warmup, names[:2])
        seconds, means = {}, {}
        seconds["project"], sums = timed(lambda: model.rank(prompts, names), sync)
        means["project"] = [[v / n for v, n in zip(row, lengths, strict=True)] for row in sums]
        if python:
            seconds["openflamingo"], means["openflamingo"] = run_openflamingo(python, root, args, prompts, warmup, names)
        if not args.no_algorithm:
            model.latent_cache = LatentCache(LATENT_CACHE_BYTES)  # the timed prompts' images unseen again
            seconds["algorithm"], sums = timed(lambda: reference_rank(model, prompts, names), sync)
            means["algorithm"] = [[v / n for v, n in zip(row, lengths, strict=True)] for row in sums]
    print(f"{len(names)} classes ({sum(lengths) / len(lengths):.2f} tokens each), batch {args.batch}, "
          f"{args.shots} shots, {args.device} {args.precision}, LM {args.layers} x {args.width}, "
          f"{torch.get_num_threads()} thread(s); OpenFlamingo: {python or 'not found (skipped)'}")
    top1 = lambda rows: [max(range(len(r)), key=r.__getitem__) for r in rows]  # noqa: E731
    print(f"{'system':<13} {'seconds':>9} {'project is':>11}  {'max |mean diff|':>15}  top-1")
    ok = True
    for name, secs in seconds.items():
        diff = max(abs(a - b) for r, q in zip(means["project"], means[name], strict=True) for a, b in zip(r, q, strict=True))
        same = top1(means[name]) == top1(means["project"])
        ok &= same
        print(f"{name:<13} {secs:9.3f} {secs / seconds['project']:10.1f}x  {diff:15.2e}  {'same' if same else 'DIFFER'}")
    trees = option_trees(model._option_ids(names), args.batch)
    fed = sum(args.batch * len(tp.tokens) * len(tp.tokens[0]) for tp in trees)
    real = args.batch * sum(n - 1 for n in lengths)
    print(f"project: {len(trees)} passes of token trees, {fed:,} fed positions for {real:,} scored ones "
          f"(one option per row, padded to the longest of its pass: "
          f"{sum(args.batch * len(c) * (max(lengths[j] for j in c) - 1) for c in option_chunks(lengths, args.batch)):,}; "
          f"all padded to the longest: {args.batch * len(names) * (max(lengths) - 1):,}); "
          f"references: {sum(lengths):,} forward passes of {args.batch} rows, one token each")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
