"""An LM directory (hub id or local path) -> the project's ``DecoderLM``, weights in the requested dtype.

transformers reads the config (``AutoConfig``'s defaults and normalisation, public API); MosaicGPT's config
is read as it is, since its class is remote code. The model is built on the meta device and the
published tensors are assigned to it, so a 7B LM never exists twice or in float32.
"""

from __future__ import annotations

import torch

from flamingo_eval.errors import WeightsError
from flamingo_eval.models.files import read_weights
from flamingo_eval.models.lm.config import LMConfig, from_hf
from flamingo_eval.models.lm.decoder import DecoderLM
from flamingo_eval.models.lm.weights import to_project


def read_config(path: str, revision: str | None = None) -> dict:
    """The LM's config as transformers normalises it (all defaults filled); MosaicGPT's raw."""
    from transformers import AutoConfig, PretrainedConfig

    try:
        raw, _ = PretrainedConfig.get_config_dict(path, revision=revision)
    except OSError as e:
        raise WeightsError(
            f"lang_encoder {path}: cannot read config.json ({str(e).splitlines()[0]}); "
            "download it into the HF cache or point lang_encoder at a local directory"
        ) from None
    model_type = raw.get("model_type", "")
    if model_type in ("mpt", "gpt_neox", "llama", "mistral"):
        return AutoConfig.for_model(**raw).to_dict()
    return raw


def lm_config(path: str, revision: str | None = None) -> LMConfig:
    return from_hf(read_config(path, revision), path)


def resize_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """A vocabulary-sized matrix cut or zero-extended to ``rows`` (OpenFlamingo resizes to len(tokenizer));
    new rows must come from a checkpoint, which the Flamingo loader requires."""
    if t.shape[0] >= rows:
        return t[:rows]
    return torch.cat([t, t.new_zeros((rows - t.shape[0], *t.shape[1:]))])


def build(config: LMConfig, state: dict[str, torch.Tensor], dtype: torch.dtype) -> DecoderLM:
    """A DecoderLM holding exactly ``state`` (every parameter, nothing else)."""
    with torch.device("meta"):
        model = DecoderLM(config)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    return model.eval()


def load_lm(path: str, dtype: torch.dtype = torch.float32, vocab_size: int | None = None,
            revision: str | None = None, config: LMConfig | None = None) -> DecoderLM:
    """The LM of ``path`` (``config``: its ``lm_config``, when already read); ``vocab_size`` resizes its
    embedding (and untied head) rows."""
    config = config or lm_config(path, revision)
    state = to_project(config, read_weights(path, revision), path)
    if vocab_size is not None and vocab_size != config.vocab_size:
        config = config.shrunk(vocab_size=vocab_size)
        for key in ("embed.weight", "head.weight"):
            if key in state:
                state[key] = resize_rows(state[key], vocab_size)
    return build(config, state, dtype)
