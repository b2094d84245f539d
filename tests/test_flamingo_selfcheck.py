"""The fast path checks itself at load: a tiny twin of the loaded model decodes by cache and by definition,
and any difference (a transformers release that stops handing the KV cache to a layer) stops the run with
one line naming the installed versions, before anything is written."""

from pathlib import Path

import pytest
import torch

from flamingo_eval.cli import main
from flamingo_eval.models.flamingo import mpt_attention
from flamingo_eval.models.flamingo.adapter import build_flamingo, load_flamingo
from flamingo_eval.models.flamingo.kv_cache import SharedPromptLayer
from flamingo_eval.models.flamingo.presets import get_spec
from flamingo_eval.models.flamingo.selfcheck import FastPathMismatch, NoVision, check_fast_path, tiny_twin

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "flamingo"
MODELS = ["mpt-x1", "mpt-x2", "gpt_neox-x2", "llama-x1"]


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return build_flamingo(get_spec(str(GOLDEN / request.param / "spec.yaml")))[0]


def test_the_check_passes_on_every_family_and_its_twin_keeps_the_layout(model):
    assert check_fast_path(model) <= 1e-4
    twin = tiny_twin(model)
    assert type(twin.lang_encoder) is type(model.lang_encoder)
    assert twin.cross_attn_every_n_layers == model.cross_attn_every_n_layers
    assert [b is None for b in twin._xattn_blocks] == \
        [b is None for b in model._xattn_blocks][: len(twin._xattn_blocks)]


def test_the_twin_of_a_mosaic_gpt_lm_keeps_its_query_key_norms(tmp_path):
    from flamingo_eval.models.flamingo.lm import load_language_model
    from flamingo_eval.models.flamingo.model import Flamingo
    from flamingo_eval.models.flamingo.mosaic_gpt import QKNormedWqkv
    from tests.test_flamingo_mosaic_gpt import (
        write_mosaic_dir,  # a tiny MosaicGPT LM on disk (of-3b's layout)
    )

    lm, family = load_language_model(write_mosaic_dir(tmp_path))
    model = Flamingo(NoVision(16), lm, family, 1, media_token_id=46, eoc_token_id=47)
    twin = tiny_twin(model)
    assert isinstance(twin.lang_encoder.transformer.blocks[0].decoder_layer.attn.Wqkv, QKNormedWqkv)
    assert check_fast_path(model) <= 1e-4


def ignore_the_cache(monkeypatch):
    """The 5.24 breakage: the replaced MPT attention never sees the cache, whatever it is called."""
    original = mpt_attention.forward

    def forward(self, hidden_states, position_bias=None, attention_mask=None, **kwargs):
        return original(self, hidden_states, position_bias=position_bias, attention_mask=attention_mask)

    monkeypatch.setattr(mpt_attention, "forward", forward)


def test_an_attention_that_loses_the_cache_fails_the_check_naming_the_versions(monkeypatch):
    ignore_the_cache(monkeypatch)
    with pytest.raises(FastPathMismatch) as e:
        load_flamingo(str(GOLDEN / "mpt-x1" / "spec.yaml"))
    message = str(e.value)
    assert "\n" not in message and "self-check failed for the mpt LM" in message
    assert "the KV cache was not written" in message
    for name in ("transformers", "torch", "open_clip_torch", "tokenizers", "supported transformers"):
        assert name in message


def test_a_numeric_difference_fails_the_check(monkeypatch, model):
    monkeypatch.setattr(SharedPromptLayer, "reorder_cache", lambda self, beam_idx: None)  # beams keep stale suffixes
    with pytest.raises(FastPathMismatch, match="cached decoding differs from the full forward by"):
        check_fast_path(model)


def test_a_cache_under_an_argument_the_attention_does_not_know_raises_at_once():
    from transformers.cache_utils import DynamicCache

    model = build_flamingo(get_spec(str(GOLDEN / "mpt-x1" / "spec.yaml")))[0]
    attn = model.lang_encoder.transformer.blocks[0].decoder_layer.attn
    with pytest.raises(RuntimeError, match=r"MptAttention .* received its KV cache as 'layer_cache'.*transformers \d"):
        attn.forward(torch.zeros(1, 2, attn.hidden_size), layer_cache=DynamicCache())


def test_a_run_refuses_in_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys):
    ignore_the_cache(monkeypatch)
    code = main(["run", "--model", str(GOLDEN / "mpt-x1" / "spec.yaml"), "--task", "vqav2", "--shots", "2",
                 "--data-root", str(ROOT / "tests" / "fixtures" / "data"), "--output-dir", str(tmp_path / "runs"),
                 "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("flamingo-eval: error:")]
    assert code != 0 and len(err) == 1 and "fast-path self-check failed" in err[0]
    assert [p for p in (tmp_path / "runs").rglob("*") if p.is_file()] == []
