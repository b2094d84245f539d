"""The Hugging Face families check their fast path at load as the bundled Flamingo does: a tiny twin decodes
by cache and by definition, and a broken cache stops loading with one line."""

from __future__ import annotations

import pytest

from flamingo_eval.models import load_model
from flamingo_eval.models.flamingo.selfcheck import FastPathMismatch
from flamingo_eval.models.idefics import selfcheck as idefics_check
from flamingo_eval.models.idefics2 import selfcheck as idefics2_check
from tests.helpers_idefics import BUILDERS
from tests.test_flamingo_selfcheck import lose_the_cache

CHECKS = {"idefics": idefics_check, "idefics2": idefics2_check, "idefics3": idefics2_check}


@pytest.fixture(scope="module", params=["idefics", "idefics2", "idefics3"])
def spec(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    BUILDERS[request.param](root / "m", seed=0)
    (root / "spec.yaml").write_text(f"family: {request.param}\nmodel: {root / 'm'}\n")
    return request.param, str(root / "spec.yaml")


def test_the_check_passes_and_its_twin_keeps_the_layout(spec):
    family, path = spec
    model = load_model(path).engine.model
    check = CHECKS[family]
    assert check.check_fast_path(model) <= 1e-4
    twin = check.tiny_twin(model)
    assert twin.lm.config.family == model.lm.config.family
    if family == "idefics":
        real, tiny = (next(iter(m.xattn.values())) for m in (model, twin))
        assert twin.cross_layer_interval == model.cross_layer_interval and sorted(twin.xattn, key=int) == ["0", "2"]
        assert (tiny.q_norm is None) == (real.q_norm is None) and tiny.attn_gate.dim() == real.attn_gate.dim()


def test_a_decoder_that_loses_the_cache_stops_loading_in_one_line(spec, monkeypatch):
    lose_the_cache(monkeypatch)
    with pytest.raises(FastPathMismatch, match="cached decoding differs from the full forward") as e:
        load_model(spec[1])
    assert "\n" not in str(e.value) and "supported transformers" in str(e.value)
