"""The transformers family's load-time check (models/transformers/selfcheck.py): cached decoding equals the
loaded model's full forward, and a broken cache stops the run with one line."""

from __future__ import annotations

import pytest

from flamingo_eval.models import load_model
from flamingo_eval.models.flamingo.selfcheck import FastPathMismatch
from flamingo_eval.models.transformers import decode
from flamingo_eval.models.transformers.selfcheck import check_cached_decoding
from tests import helpers_vlm as V


def adapter(tiny_vlm, arch: str):
    directory = tiny_vlm(arch)
    path = directory.parent / f"{directory.name}-raw.yaml"
    path.write_text(f"family: transformers\nmodel: {directory.name}\nprompt_format: raw\n")
    return load_model(str(path))  # runs the check once already


@pytest.mark.parametrize("arch", [a for a in ("qwen2_5_vl", "mllama", "gemma3") if a in V.BUILDERS])
def test_cached_decoding_equals_the_full_forward(tiny_vlm, arch):
    assert check_cached_decoding(adapter(tiny_vlm, arch)) <= 1e-4


def test_positions_that_stop_counting_fail_the_check(tiny_vlm, monkeypatch):
    ours = adapter(tiny_vlm, "qwen2_5_vl")
    grow = decode.DecodeState.grow

    def stuck(self, t):  # the new tokens repeat the prompt's last position
        grow(self, t)
        pos = self.kwargs["position_ids"]
        pos[..., -t:] = pos[..., -t - 1: -t]

    monkeypatch.setattr(decode.DecodeState, "grow", stuck)
    with pytest.raises(FastPathMismatch, match="self-check failed for the transformers qwen2_5_vl model") as e:
        check_cached_decoding(ours)
    assert "\n" not in str(e.value)
