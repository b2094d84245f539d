"""Whether a model's weights are here (or how much a run would download) and whether it fits at a precision.

Fitting counts the parameters at the run's precision plus a fifth for activations and the decoder's caches
(a rough margin: a long 32-shot prompt at a large batch can need more), against the largest visible GPU,
all GPUs together (``--device-map auto``), or the machine's memory for a CPU run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from flamingo_eval.doctor.environment import Gpu
from flamingo_eval.doctor.record import Check, count, size
from flamingo_eval.doctor.weights import Located, locate, model_parts
from flamingo_eval.errors import UserError

BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "fp16": 2}
MARGIN = 1.2


def _fetch_hint(found: Located) -> str:
    part = found.part
    if part.local:
        return f"put the {part.label}'s weights at {part.ref}, or point the model spec elsewhere"
    if part.filename == "":
        return "open_clip downloads it on first use (needs a network)"
    return f"`huggingface-cli download {part.ref}{' ' + part.filename if part.filename else ''}` ahead of the run"


def _weights_check(found: Located) -> Check:
    part = found.part
    amount = size(found.bytes) if found.bytes is not None else "size unknown"
    params = f", {count(found.params)} parameters" if found.params else ""
    name = f"weights {part.label}" if len(part.label) < 8 else part.label
    if found.where in ("local", "cached"):
        place = "local" if found.where == "local" else "in the Hugging Face cache"
        return Check(name, "ok", f"{place}: {found.note} ({amount}{params})")
    ref = f"{part.ref}{'/' + part.filename if part.filename else ''}"
    if found.where == "download":
        what = f"{amount}{params}" if found.bytes is not None else f"it ({found.note})"
        return Check(name, "warn", f"{ref} not cached: the run downloads {what}", _fetch_hint(found))
    return Check(name, "fail", f"{ref}: {found.note}", _fetch_hint(found))


def machine_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fit(params: int | None, precision: str, gpus: Sequence[Gpu], device: str) -> Check:
    if params is None:
        return Check("fits", "warn", "parameter count unknown until the weights are here; fit not checked")
    need = params * BYTES_PER_PARAM[precision] * MARGIN
    what = f"{count(params)} parameters at {precision}: about {size(need)} with a {MARGIN - 1:.0%} margin"
    if device.startswith("cuda") and gpus:
        largest, total = max(g.memory for g in gpus), sum(g.memory for g in gpus)
        if need <= largest:
            return Check("fits", "ok", f"{what}; fits one GPU ({size(largest)})")
        if need <= total and len(gpus) > 1:
            return Check("fits", "warn", f"{what}; more than one GPU ({size(largest)}), less than all {len(gpus)} "
                                         f"({size(total)})", "run with --device-map auto")
        smaller = "--precision bf16 or " if precision == "fp32" else ""
        return Check("fits", "fail", f"{what}; the visible GPUs hold {size(total)}",
                     f"use {smaller}more or larger GPUs (--device-map auto spreads it)")
    memory = machine_memory()
    if need <= memory:
        return Check("fits", "ok", f"{what}; fits this machine's {size(memory)} for a CPU run")
    return Check("fits", "fail", f"{what}; this machine has {size(memory)}",
                 "use a GPU machine" + (" or --precision bf16" if precision == "fp32" else ""))


def check_model(model: str, precision: str, gpus: Sequence[Gpu], device: str) -> list[Check]:
    """One line per part the model loads, then whether the whole fits."""
    from flamingo_eval.models.families import get_spec

    try:
        spec = get_spec(model)
    except UserError as e:
        return [Check("model", "fail", str(e), "`flamingo-eval ls models` lists the presets")]
    found = [locate(p) for p in model_parts(spec)]
    params = None if any(f.params is None for f in found) else sum(f.params for f in found)
    return [_weights_check(f) for f in found] + [check_fit(params, precision, gpus, device)]
