"""The open_clip visual tower and its val transform (model.py takes its patch tokens before ``ln_post``).

OpenFlamingo's checkpoints were trained with open_clip < 2.23, whose tower returned the last block's patch
tokens before ``ln_post``; open_clip >= 2.23 normalises all tokens, so model.py runs the tower's stages itself.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

from torch import nn

from flamingo_eval.errors import ConfigError, WeightsError


def load_vision(name: str, pretrained: str | None) -> tuple[nn.Module, Callable]:
    """(open_clip visual tower, its val transform). ``pretrained``: a tag, a local weights file, or None."""
    import open_clip

    quick_gelu = False
    if pretrained and not os.path.isfile(pretrained):
        try:
            quick_gelu = bool(open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False))
        except Exception:  # unknown names are reported by create_model below
            quick_gelu = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _, val_transform = open_clip.create_model_and_transforms(
                name, pretrained=pretrained or None, force_quick_gelu=quick_gelu
            )
    except Exception as e:  # open_clip reports bad names, tags and failed downloads in many types
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else e.__class__.__name__
        if isinstance(e, RuntimeError) and first.startswith("Model config"):
            raise ConfigError(f"vision_encoder: unknown open_clip model {name!r}") from None
        raise WeightsError(
            f"vision_encoder {name} / {pretrained}: cannot load ({first}); "
            "point vision_encoder.pretrained at a local weights file (or name at a local-dir:)"
        ) from None
    visual = model.visual
    if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
        raise ConfigError(f"vision_encoder {name}: only plain ViT towers with a class token are supported")
    if not hasattr(visual, "conv1"):
        raise ConfigError(f"vision_encoder {name}: not an open_clip VisionTransformer")
    return visual, val_transform
