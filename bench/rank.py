"""ImageNet-style option ranking: the project's ``rank`` vs OpenFlamingo 2.0.1's ``get_rank_classifications``
algorithm, on the same weights, in this process.

Workload: ImageNet prompts (``<image>Output:{class name}<|endofchunk|>`` demonstrations, no separator, query
``<image>Output:``) at the given shots, a batch of queries ranked over the first C of the 1000 class names
OpenFlamingo uses (flamingo_eval/data/imagenet_classnames.txt).

Systems:
  project    FlamingoAdapter.rank: one prefill per prompt, the options in chunks of similar length under a
             token budget, every chunk continuing the prompt's shared K/V (cascade kernel), no padding to
             the longest option
  reference  get_rank_classifications with use_cache=True, normalize_length=True, as its code intends it
             (open_flamingo/eval/models/open_flamingo.py): one prefill of the batch, then for each class
             its tokens fed one per forward pass over the cached prompt, the cache cut back to the prompt
             after each class (with a current transformers OpenFlamingo's cache object grows in place
             instead, so each class would also see every earlier one); each class's logits joined to the
             context's and log-softmaxed whole, as it does. It runs on the project's cached model pass
             (the same weights and kernels), so the ratio measures the algorithm, not an implementation.

Both sum each class's token log-probabilities; the bench prints the largest difference of the means (what
``get_rank_classifications(normalize_length=True)`` returns) and of the sums, and whether the top-1 classes agree.

    python bench/rank.py [--classes 1000] [--batch 8] [--shots 4] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.decode import build_model, make_images  # noqa: E402
from flamingo_eval.models.decoding.run import option_chunks  # noqa: E402
from flamingo_eval.models.flamingo import fast  # noqa: E402
from flamingo_eval.models.flamingo.adapter import FlamingoAdapter, load_flamingo  # noqa: E402
from flamingo_eval.prompt import Chunk, Image, Prompt  # noqa: E402
from flamingo_eval.task import PACKAGE_DATA  # noqa: E402

NAMES = PACKAGE_DATA / "imagenet_classnames.txt"


def class_names(count: int) -> list[str]:
    names = [x for x in NAMES.read_text().splitlines() if not x.startswith("#")]
    return names[:count]


def workload(root: Path, names: list[str], queries: int, shots: int, seed: int = 0) -> list[Prompt]:
    rng = random.Random(seed)
    folder = root / "images"
    files = [f"im{i}" for i in range(queries * (shots + 1))]
    make_images(folder, files, rng)
    it = iter(files)

    def im(name: str) -> Image:
        return Image(key=f"bench/{name}", path=str(folder / f"{name}.png"))

    return [Prompt([Chunk(im(next(it)), f"Output:{rng.choice(names)}") for _ in range(shots)]
                   + [Chunk(im(next(it)), "Output:")], separator="") for _ in range(queries)]


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--every", type=int, default=4, help="cross-attention before every n-th LM layer")
    ap.add_argument("--vit-width", type=int, default=256)
    ap.add_argument("--vit-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = class_names(args.classes)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = build_model(root, args)
        model = load_flamingo(str(spec), device=args.device, precision=args.precision)
        prompts = workload(root, names, args.batch, args.shots)
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        model.rank(prompts, names[:2])  # warm-up; the images are encoded (and cached) here for both systems
        t_ours, ours = timed(lambda: model.rank(prompts, names), sync)
        t_ref, ref = timed(lambda: reference_rank(model, prompts, names), sync)
    lengths = model.option_lengths(names)
    diff = max(abs(a - b) for r, q in zip(ours, ref, strict=True) for a, b in zip(r, q, strict=True))
    mean_diff = max(abs(a - b) / n for r, q in zip(ours, ref, strict=True) for a, b, n in zip(r, q, lengths, strict=True))
    top1 = lambda rows: [max(range(len(r)), key=lambda j: r[j] / lengths[j]) for r in rows]  # noqa: E731
    agree = top1(ours) == top1(ref)
    print(f"{len(names)} classes ({sum(lengths) / len(lengths):.2f} tokens each), batch {args.batch}, "
          f"{args.shots} shots, {args.device} {args.precision}, LM {args.layers} x {args.width}")
    print(f"{'system':<10} {'seconds':>9} {'vs reference':>13}")
    print(f"{'project':<10} {t_ours:9.3f} {t_ref / t_ours:12.1f}x")
    print(f"{'reference':<10} {t_ref:9.3f} {1.0:12.1f}x")
    print(f"max |difference| of the mean log-probabilities (what get_rank_classifications returns) {mean_diff:.2e}, "
          f"of the sums {diff:.2e}; top-1 classes {'identical' if agree else 'DIFFER'}")
    chunks = option_chunks(lengths, args.batch)
    fed = sum(args.batch * len(c) * (max(lengths[j] for j in c) - 1) for c in chunks)
    real = args.batch * sum(n - 1 for n in lengths)
    print(f"project: {len(chunks)} passes, {fed:,} fed positions for {real:,} real ones "
          f"(padded to the longest: {args.batch * len(names) * (max(lengths) - 1):,})")
    print(f"reference: {sum(lengths):,} forward passes of {args.batch} rows, one token each")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
