"""An LM directory's files onto the decoder: every key accounted for, in every published file layout."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models.lm.load import lm_config, load_lm
from flamingo_eval.models.lm.weights import key_map, to_project, to_published
from tests.test_lm_decoder import MODELS, batch, llama, saved


def logits(model, ids, mask):
    from flamingo_eval.models.lm.decoder import SequenceAttention, positions_of

    with torch.no_grad():
        return model(ids, positions_of(mask), SequenceAttention(mask.bool()))


@pytest.mark.parametrize("name", ["mpt", "gpt_neox-parallel-partial-rotary", "llama-grouped-kv-bias", "mistral"])
def test_the_key_map_uses_every_published_tensor_and_fills_every_parameter(name, tmp_path):
    saved(MODELS[name], tmp_path)
    config = lm_config(str(tmp_path))
    published = load_file(str(tmp_path / "model.safetensors"))
    ours = to_project(config, published, "x")
    model = load_lm(str(tmp_path))
    assert set(ours) == set(model.state_dict())
    assert {s for e in key_map(config) for s in e.sources} == set(published)
    round_trip = to_published(config, ours)  # what the toy export writes
    assert set(round_trip) == set(published)
    assert all(torch.equal(round_trip[k], published[k]) for k in published)


def test_a_missing_or_unexpected_key_is_one_error_naming_it(tmp_path):
    saved(MODELS["llama-grouped-kv-bias"], tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.layers.1.self_attn.k_proj.bias"]
    state["model.layers.0.self_attn.extra.weight"] = torch.zeros(2)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError) as e:
        load_lm(str(tmp_path))
    message = str(e.value)
    assert "missing model.layers.1.self_attn.k_proj.bias" in message
    assert "unexpected model.layers.0.self_attn.extra.weight" in message and "\n" not in message


def test_a_mis_shaped_tensor_is_an_error(tmp_path):
    saved(MODELS["mpt"], tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["transformer.blocks.0.ffn.up_proj.weight"] = torch.zeros(3, 32)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_lm(str(tmp_path))


def test_sharded_safetensors_and_pickled_shards_load_the_same_model(tmp_path):
    saved(MODELS["gpt_neox-parallel-partial-rotary"], tmp_path / "one")
    state = load_file(str(tmp_path / "one" / "model.safetensors"))
    ids, mask = batch(12)
    want = logits(load_lm(str(tmp_path / "one")), ids, mask)
    keys = sorted(state)
    for kind, save, suffix in (("safetensors", save_file, "safetensors"),
                               ("bin", lambda sd, path: torch.save(sd, path), "bin")):
        d = tmp_path / kind
        d.mkdir()
        (d / "config.json").write_text((tmp_path / "one" / "config.json").read_text())
        shards = {f"model-0000{i}.{suffix}": keys[i::2] for i in range(2)}
        for file, names in shards.items():
            save({k: state[k].clone() for k in names}, str(d / file))
        index = {"weight_map": {k: f for f, names in shards.items() for k in names}}
        (d / ("model.safetensors.index.json" if suffix == "safetensors" else "pytorch_model.bin.index.json")).write_text(
            json.dumps(index))
        torch.testing.assert_close(logits(load_lm(str(d)), ids, mask), want)


def test_stale_buffers_are_not_weights_and_both_names_of_neoxs_output_matrix_load(tmp_path):
    saved(MODELS["gpt_neox-parallel-partial-rotary"], tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["gpt_neox.layers.0.attention.bias"] = torch.ones(1, 1, 4, 4)
    state["gpt_neox.layers.0.attention.masked_bias"] = torch.tensor(-1e9)
    state["lm_head.weight"] = state.pop("embed_out.weight")  # transformers 5's in-memory name: accepted too
    save_file(state, str(tmp_path / "model.safetensors"))
    load_lm(str(tmp_path))  # no error


def test_an_unsupported_family_or_option_is_one_clear_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8}))
    with pytest.raises(ConfigError, match="model_type 'gpt2' is not supported"):
        load_lm(str(tmp_path))
    saved(lambda: llama(rope_scaling={"rope_type": "yarn", "factor": 2.0}), tmp_path)
    with pytest.raises(ConfigError, match="rope type 'yarn' is not supported"):
        load_lm(str(tmp_path))


def test_a_missing_lm_directory_names_it(tmp_path):
    with pytest.raises(WeightsError, match="lang_encoder .*nowhere"):
        load_lm(str(tmp_path / "nowhere"))
