"""The fast path checks itself at load: a tiny twin of the loaded model decodes by cache and by definition,
and any difference (a kernel or cache change that breaks the cached path) stops the run with one line naming
the installed versions, before anything is written."""

from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.models.decoding.cache import DecodeAttention, KVCache
from flamingo_eval.models.flamingo.adapter import build_flamingo, load_flamingo
from flamingo_eval.models.flamingo.presets import get_spec
from flamingo_eval.models.flamingo.selfcheck import FastPathMismatch, check_fast_path, tiny_twin
from flamingo_eval.models.lm.decoder import causal_attention

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "flamingo"
MODELS = ["mpt-x1", "mpt-x2", "gpt_neox-x2", "llama-x1"]


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return build_flamingo(get_spec(str(GOLDEN / request.param / "spec.yaml")))[0]


def test_the_check_passes_on_every_family_and_its_twin_keeps_the_options_and_layout(model):
    assert check_fast_path(model) <= 1e-4
    twin, real = tiny_twin(model), model.lm.config
    c = twin.lm.config
    assert (c.family, c.positions, c.norm, c.mlp, c.parallel_residual, c.qk_norm, c.tied_head) == \
        (real.family, real.positions, real.norm, real.mlp, real.parallel_residual, real.qk_norm, real.tied_head)
    assert c.heads // c.kv_heads == real.heads // real.kv_heads
    assert (c.rotary_dims == c.head_dim) == (real.rotary_dims == real.head_dim)
    assert twin.cross_attn_every_n_layers == model.cross_attn_every_n_layers
    assert sorted(twin.xattn, key=int) == [k for k in sorted(model.xattn, key=int) if int(k) < c.layers]


def test_the_check_runs_on_one_thread_and_gives_the_threads_back(monkeypatch):
    import torch

    from flamingo_eval.models.flamingo import selfcheck

    seen = []
    monkeypatch.setattr(selfcheck, "largest_difference", lambda twin: seen.append(torch.get_num_threads()) or 0.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check_fast_path(build_flamingo(get_spec(str(GOLDEN / "mpt-x1" / "spec.yaml")))[0])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_twin_of_a_mosaic_gpt_lm_keeps_its_query_key_norms(tmp_path):
    from flamingo_eval.models.flamingo.model import Flamingo
    from flamingo_eval.models.lm.load import load_lm
    from tests.test_lm_mosaic_gpt import write_mosaic_dir  # a tiny MosaicGPT LM on disk (of-3b's layout)

    model = Flamingo(None, load_lm(write_mosaic_dir(tmp_path)), 1, media_token_id=46, eoc_token_id=47, dim_visual=16)
    assert tiny_twin(model).lm.layers[0].attn.q_norm is not None
    assert check_fast_path(model) <= 1e-4


def lose_the_cache(monkeypatch):
    """What transformers 5.24 did to the old MPT path: decode steps never see the cache, so each new token
    attends to itself alone."""
    def attend_to_itself(self, layer, q, k, v, slopes, scale, window=None):
        self.cache.append(layer, k, v)
        return causal_attention(q, k, v, q.new_ones(q.shape[0], q.shape[2], dtype=bool), slopes, scale)

    monkeypatch.setattr(DecodeAttention, "__call__", attend_to_itself)


def test_a_decoder_that_loses_the_cache_fails_the_check_naming_the_versions(monkeypatch):
    lose_the_cache(monkeypatch)
    with pytest.raises(FastPathMismatch) as e:
        load_flamingo(str(GOLDEN / "mpt-x1" / "spec.yaml"))
    message = str(e.value)
    assert "\n" not in message and "self-check failed for the mpt LM" in message
    assert "cached decoding differs from the full forward" in message
    for name in ("transformers", "torch", "open_clip_torch", "tokenizers", "supported transformers"):
        assert name in message


def test_a_beam_reorder_that_moves_nothing_fails_the_check(monkeypatch, model):
    monkeypatch.setattr(KVCache, "reorder", lambda self, rows: None)  # beams keep stale suffixes
    with pytest.raises(FastPathMismatch, match="cached decoding differs from the full forward by"):
        check_fast_path(model)


def test_an_exception_inside_the_cached_path_is_the_same_one_line_verdict(monkeypatch, model):
    monkeypatch.setattr(KVCache, "append", lambda self, layer, k, v: (_ for _ in ()).throw(IndexError("moved")))
    with pytest.raises(FastPathMismatch, match="IndexError: moved"):
        check_fast_path(model)


RICES = ["--rices", "--rices-encoder", f"local-dir:{GOLDEN / 'vit'}", "--rices-pretrained", "none"]


@pytest.mark.parametrize("selection", [[], RICES], ids=["random", "rices"])
def test_a_run_refuses_in_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys, selection):
    """stderr is that one line and nothing else; no result, sample or item file, and no RICES features: the
    cache holds only the parsed splits of the task's data (model-independent, read before the model loads)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FLAMINGO_EVAL_CACHE", str(cache))
    lose_the_cache(monkeypatch)
    code = main(["run", "--model", str(GOLDEN / "mpt-x1" / "spec.yaml"), "--task", "vqav2", "--shots", "2",
                 "--data-root", str(ROOT / "tests" / "fixtures" / "data"), "--output-dir", str(tmp_path / "runs"),
                 "--quiet", *selection])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("flamingo-eval: error: fast-path self-check failed")
    assert [p for p in (tmp_path / "runs").rglob("*") if p.is_file()] == []
    cached = {p.relative_to(cache).parts[0] for p in cache.rglob("*") if p.is_file()}
    assert cached <= {"splits", "file-hashes.json"}
