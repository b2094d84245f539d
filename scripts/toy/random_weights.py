"""The demo protocol on of-toy with its weights replaced by random ones: the floor the trained scores beat.

    python scripts/toy/random_weights.py [--num-samples N] [--output-dir results/runs/demo-random-weights]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flamingo_eval.models import load_model  # noqa: E402
from flamingo_eval.toy.demo import run_demo  # noqa: E402


def randomise(adapter, seed: int = 0):
    """Matrices ~ N(0, 0.02), vectors ~ N(1, 0.1) (norm scales near identity): an untrained network."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.02 if p.ndim >= 2 else 0.1) + (p.ndim < 2) * 1.0)
    return adapter


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-samples", type=int)
    p.add_argument("--output-dir", default="results/runs/demo-random-weights")
    args = p.parse_args()
    run_demo(args.output_dir, num_samples=args.num_samples, model=randomise(load_model("of-toy")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
