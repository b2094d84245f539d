"""flamingo-eval: few-shot evaluation of Flamingo-style vision-language models."""

__version__ = "0.1.0"
