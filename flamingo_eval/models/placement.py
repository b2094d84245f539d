"""Precision names and where a loaded model goes: one device, or spread over the visible GPUs.

``device_map="auto"`` hands the placement to accelerate (``infer_auto_device_map`` + ``dispatch_model``): each
decoder layer (and each vision block) stays whole on one device, and accelerate's hooks move activations
between devices. A model that fits one device is simply moved there.
"""

from __future__ import annotations

import torch
from torch import nn

from flamingo_eval.errors import ConfigError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_MAPS = ("auto",)


def dtype_of(precision: str) -> torch.dtype:
    if precision not in DTYPES:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[precision]


def _device(d) -> str:
    return f"cuda:{d}" if isinstance(d, int) else str(d)


def place(model: nn.Module, device: str, device_map: str | None, dtype: torch.dtype,
          no_split: tuple[str, ...] = ()) -> str:
    """Put ``model`` on ``device``, or spread it (``device_map="auto"``); returns the device inputs go to."""
    if device_map is None:
        model.to(device=device)
        return device
    if device_map not in DEVICE_MAPS:
        raise ConfigError(f"unknown device map {device_map!r}; use one of {', '.join(DEVICE_MAPS)}")
    from accelerate import dispatch_model, infer_auto_device_map

    classes = sorted({"DecoderLayer", "GatedCrossAttentionBlock", "GatedCrossAttentionLayer", *no_split})
    plan = infer_auto_device_map(model, no_split_module_classes=classes, dtype=dtype)
    targets = sorted({_device(d) for d in plan.values()})
    if "disk" in targets:
        raise ConfigError("--device-map auto: the model does not fit the visible GPUs and CPU memory")
    if len(targets) == 1:  # it fits one device: no hooks needed
        model.to(device=targets[0])
        return targets[0]
    dispatch_model(model, device_map=plan)
    return _device(plan.get("lm.embed", plan.get("lm", next(iter(plan.values())))))
