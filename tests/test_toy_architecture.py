"""The toy Flamingo is exported in the published formats and loads back, through the preset path, as the
same function: the LM directory (config + safetensors under transformers' MPT names), the open_clip
``local-dir:`` and OpenFlamingo's ``checkpoint.pt``."""

from dataclasses import replace

import torch

from flamingo_eval.models.flamingo.adapter import build_flamingo
from flamingo_eval.models.flamingo.presets import PRESETS
from flamingo_eval.toy.architecture import ToyArch, export, new_flamingo
from flamingo_eval.toy.tokenizer import build_tokenizer


def test_an_exported_toy_model_loads_back_as_the_same_function(tmp_path):
    torch.manual_seed(0)
    arch = ToyArch(lm_layers=2, lm_dim=32, max_seq_len=64)
    base = build_tokenizer()
    model, clip, tokenizer, _ = new_flamingo(arch, base)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.fill_(0.5)  # open gates: the images matter
    export(model.eval(), clip, base, arch, tmp_path, {"seed": 0})
    spec = replace(PRESETS["of-toy"], base_dir=str(tmp_path), sizes=arch.sizes)
    loaded, loaded_tokenizer, _, _ = build_flamingo(spec)
    assert len(loaded_tokenizer) == len(tokenizer)
    ids = torch.tensor([[model.media_token_id, 5, 6, 7, model.eoc_token_id, model.media_token_id, 8, 9]])
    latents = torch.randn(1, 2, *model.perceiver.latents.shape)
    with torch.no_grad():
        want = model(ids, torch.ones_like(ids), latents)
        got = loaded(ids, torch.ones_like(ids), latents)
        pixels = torch.randn(2, 3, arch.image_size, arch.image_size)
        torch.testing.assert_close(loaded.encode_images(pixels), model.encode_images(pixels), atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)  # the files hold fp16
    assert (want[0, 1] - want[0, 6]).abs().max() > 0.1  # not a constant function
