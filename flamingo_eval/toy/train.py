"""Train the toy Flamingo from scratch on the toy TRAIN splits and export it as the ``of-toy`` preset.

    python -m flamingo_eval.toy.train                       # writes flamingo_eval/models/flamingo/toy/
    python -m flamingo_eval.toy.train --steps 50 --out /tmp/toy   # a quick check

Everything is trained (ViT, Perceiver, cross-attention, LM), on CPU, deterministically given the
seed and the thread count: data order, initialisation and demonstrations all come from the seed.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch

from flamingo_eval.models.flamingo.fast import forward_train
from flamingo_eval.toy.architecture import ToyArch, export, new_flamingo
from flamingo_eval.toy.datasets import TASKS
from flamingo_eval.toy.sequences import collate, load_pool, make_example
from flamingo_eval.toy.tokenizer import build_tokenizer

GATE_INIT = 0.5  # OpenFlamingo starts the tanh gates at 0, which needs far longer training than minutes
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "flamingo" / "toy"


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(out: Path, seed: int = 0, steps: int = 6000, batch_size: int = 12, lr: float = 2e-3,
          data_root: str | None = None, arch: ToyArch | None = None, log_every: int = 25) -> dict:
    """Train and export; returns the training facts also written to ``out/toy.json``."""
    from flamingo_eval.task import load_task
    from flamingo_eval.toy import default_root, ensure_toy_data

    arch = arch or ToyArch()
    root = str(ensure_toy_data(Path(data_root) if data_root else default_root(seed), seed))
    torch.manual_seed(seed)
    rng = random.Random(f"toy-train:{seed}")
    base_tokenizer = build_tokenizer()
    model, clip, tokenizer, transform = new_flamingo(arch, base_tokenizer)
    with torch.no_grad():  # half-open gates: the image path gets gradients from the first step
        for name, p in model.named_parameters():
            if name.endswith(("attn_gate", "ff_gate")):
                p.fill_(GATE_INIT)
    pools = [load_pool(load_task(name), root, transform) for name in TASKS]
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98))
    started, smooth, losses = time.time(), None, []
    for step in range(steps):
        batch = collate([make_example(pools, rng) for _ in range(batch_size)], pools, tokenizer,
                        model.media_token_id)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup=max(1, steps // 20))
        logits = forward_train(model, batch.pixels, batch.media_index, batch.input_ids, batch.attention_mask)
        per_token = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch.labels[:, 1:].flatten(),
                                                      ignore_index=-100, reduction="none")
        weights = batch.weights[:, 1:].flatten()
        loss = (per_token * weights).sum() / weights.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            elapsed = time.time() - started
            print(f"step {step + 1}/{steps}  loss {smooth:.3f}  {elapsed:.0f}s  ({(step + 1) / elapsed:.2f} steps/s)",
                  file=sys.stderr, flush=True)
    model.eval()
    tail = losses[-max(1, steps // 20):]
    meta = {"seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr, "tasks": list(TASKS),
            "final_loss": round(sum(tail) / len(tail), 4), "train_seconds": round(time.time() - started, 1),
            "threads": torch.get_num_threads(), "torch": torch.__version__}
    export(model, clip, base_tokenizer, arch, out, meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flamingo_eval.toy.train", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=SHIPPED, help=f"where to write the model (default: {SHIPPED})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--data-root", help="toy data root (default: the cache's, generated on first use)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (results depend on it)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    meta = train(args.out, args.seed, args.steps, args.batch_size, args.lr, args.data_root)
    print(f"trained in {meta['train_seconds']}s, final loss {meta['final_loss']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
