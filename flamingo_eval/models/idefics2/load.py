"""A loaded transformers Idefics2 / Idefics3 model -> the project's ``ImageTokenLM`` holding the same tensors.

transformers reads the checkpoint (``from_pretrained``); its vision tower and connector stay whole modules
behind ``get_image_features``; the text model's tensors are mapped, by an exhaustive key map, onto the
project's Mistral / Llama (models/lm). The transformers text model is then moved to the meta device, so
those weights are held once (by ours).
"""

from __future__ import annotations

import torch

from flamingo_eval.errors import WeightsError, listing
from flamingo_eval.models.idefics2.model import ImageFeatures, ImageTokenLM
from flamingo_eval.models.lm.config import from_hf
from flamingo_eval.models.lm.decoder import DecoderLM
from flamingo_eval.models.lm.weights import to_project

IMAGE_PREFIXES = ("model.vision_model.", "model.connector.")
TEXT = "model.text_model."


def from_transformers(hf, where: str) -> ImageTokenLM:
    """``hf``: a loaded ``Idefics2ForConditionalGeneration`` or ``Idefics3ForConditionalGeneration``."""
    text_config = hf.config.text_config.to_dict()
    lm = from_hf({**text_config, "tie_word_embeddings": False}, where)  # the head is always read as given
    state = dict(hf.state_dict())
    text = {"model." + k.removeprefix(TEXT): state.pop(k) for k in list(state) if k.startswith(TEXT)}
    if "lm_head.weight" not in state:
        raise WeightsError(f"{where}: weights lack lm_head.weight")
    text["lm_head.weight"] = state.pop("lm_head.weight")
    left = sorted(k for k in state if not k.startswith(IMAGE_PREFIXES))
    if left:
        raise WeightsError(f"{where}: weights not used by the {hf.config.model_type} layout: {listing(left)}")
    ours = to_project(lm, text, where)
    with torch.device("meta"):
        decoder = DecoderLM(lm)
    decoder.load_state_dict(ours, strict=True, assign=True)
    hf.model.text_model.to("meta")  # ours holds these tensors now; theirs is never run
    hf.lm_head.to("meta")
    return ImageTokenLM(ImageFeatures(hf), hf.model.vision_model, hf.model.connector, decoder.eval(),
                        hf.config.image_token_id).eval()
