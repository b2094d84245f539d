"""Seeded toy data for all seven tasks, in their real formats: tests and the toy model's training use it.

``ensure_toy_data(root)`` is cheap to call every time; ``generate(root, seed, sizes)`` always writes.
"""

from flamingo_eval.toy.datasets import GENERATOR_VERSION, Sizes, default_root, ensure_toy_data, generate

__all__ = ["GENERATOR_VERSION", "Sizes", "default_root", "ensure_toy_data", "generate"]
