"""Turn a raw generation into the answer the metric scores, as OpenFlamingo's evaluation does.

A generation that does not stop at ``<|endofchunk|>`` runs on into a new demonstration ("...\\nOutput:",
"...\\nQuestion:"), so everything from the first such marker on is cut. Whitespace is left alone: the metrics
(the PTB tokenizer, the VQA cleaning) deal with it as the published numbers did.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flamingo_eval.registry import Registry

POSTPROCESSORS = Registry("postprocessing", {
    "caption": "flamingo_eval.postprocess:caption",
    "vqa": "flamingo_eval.postprocess:vqa",
    "okvqa": "flamingo_eval.postprocess:okvqa",
    "none": "flamingo_eval.postprocess:none",
})

_VQA_MARKERS = re.compile("Question|Answer|Short")


def caption(text: str) -> str:
    """Up to the first "Output", double quotes removed."""
    return text.split("Output", 1)[0].replace('"', "")


def _first_answer(text: str) -> str:
    return _VQA_MARKERS.split(text, maxsplit=1)[0]


def vqa(text: str) -> str:
    """Up to the first "Question", "Answer" or "Short", then up to the first ", "."""
    return _first_answer(text).split(", ", 1)[0]


def okvqa(text: str) -> str:
    """Up to the first "Question", "Answer" or "Short", then OK-VQA stemming.

    OpenFlamingo's OK-VQA postprocessing does not cut at ", " as its VQA one does; the stemmer's tokenizer
    makes a comma a word of its own instead.
    """
    from flamingo_eval.metrics.okvqa_stem import stem

    return stem(_first_answer(text))


def none(text: str) -> str:
    return text


def get(name: str) -> Callable[[str], str]:
    """The postprocessing function a task spec names (ConfigError for an unknown name)."""
    return POSTPROCESSORS.get(name)


def postprocess(name: str, text: str) -> str:
    return get(name)(text)
