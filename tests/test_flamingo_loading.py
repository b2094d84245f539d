"""Loading the bundled Flamingo: spec files, checkpoints that do not fit, offline hub files, presets."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from flamingo_eval.cli import main
from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.models import GenerationSettings, list_models, load_model
from flamingo_eval.models.flamingo import fast
from flamingo_eval.models.flamingo.adapter import load_flamingo
from flamingo_eval.models.flamingo.presets import PRESETS, load_spec_file
from flamingo_eval.prompt import Chunk, Image, Prompt

GOLDEN = Path(__file__).parent / "golden" / "flamingo"
MODEL = GOLDEN / "mpt-x2"  # the smallest golden model


def write_spec(tmp_path: Path, checkpoint: str, **over) -> Path:
    fields = {
        "vision_encoder": f"{{name: 'local-dir:{GOLDEN / 'vit'}', pretrained: null}}",
        "lang_encoder": str(GOLDEN / "lm-mpt"),
        "tokenizer": str(GOLDEN / "lm-mpt"),
        "cross_attn_every_n_layers": "2",
        "checkpoint": checkpoint,
        **over,
    }
    spec = tmp_path / "model.yaml"
    spec.write_text("".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None))
    return spec


def a_prompt() -> Prompt:
    im = Image(key="img1", path=str(GOLDEN / "images" / "img1.png"))
    return Prompt([Chunk(im, "Output:a dog on the grass"), Chunk(Image("img2", str(GOLDEN / "images" / "img2.png")), "Output:")], "\n")


@pytest.fixture(scope="module")
def model():
    return load_flamingo(str(MODEL / "spec.yaml"))


def test_spec_with_local_paths_loads_and_generates_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    shutil.copy(MODEL / "checkpoint.pt", tmp_path / "ckpt.pt")
    adapter = load_model(str(write_spec(tmp_path, "ckpt.pt")))  # relative to the spec file
    golden = json.loads((MODEL / "golden.json").read_text())["cases"][1]
    assert golden["name"] == "two_shot"
    assert adapter.generate([a_prompt()], GenerationSettings(num_beams=1, max_new_tokens=10)) == [golden["greedy"]["text"]]
    info = adapter.describe()
    assert info["checkpoint_sha256"] and len(info["checkpoint_sha256"]) == 64
    assert (info["precision"], info["device"], info["spec"]["cross_attn_every_n_layers"]) == ("fp32", "cpu", 2)


def _checkpoint_variant(tmp_path: Path, edit) -> Path:
    state = torch.load(MODEL / "checkpoint.pt", weights_only=True)
    edit(state)
    torch.save(state, tmp_path / "ckpt.pt")
    return write_spec(tmp_path, str(tmp_path / "ckpt.pt"))


def test_a_missing_key_is_named(tmp_path):
    spec = _checkpoint_variant(tmp_path, lambda s: s.pop("perceiver.layers.3.0.to_q.weight"))
    with pytest.raises(WeightsError, match=r"missing keys: perceiver\.layers\.3\.0\.to_q\.weight"):
        load_flamingo(str(spec))


def test_an_unexpected_key_is_named(tmp_path):
    spec = _checkpoint_variant(tmp_path, lambda s: s.__setitem__("perceiver.extra.weight", torch.zeros(2)))
    with pytest.raises(WeightsError, match=r"unexpected keys: perceiver\.extra\.weight"):
        load_flamingo(str(spec))


def test_a_mis_shaped_tensor_is_named(tmp_path):
    spec = _checkpoint_variant(tmp_path, lambda s: s.__setitem__("perceiver.latents", torch.zeros(3, 3)))
    with pytest.raises(WeightsError, match=r"shape mismatch: perceiver\.latents"):
        load_flamingo(str(spec))


@dataclass
class NotATensor:
    value: int = 1


def test_a_pickle_that_is_not_plain_tensors_is_refused(tmp_path):
    torch.save({"perceiver.latents": NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match=r"not a plain tensor state dict"):
        load_flamingo(str(write_spec(tmp_path, str(tmp_path / "evil.pt"))))
    torch.save({"perceiver.latents": 3}, tmp_path / "odd.pt")
    with pytest.raises(WeightsError, match=r"not a plain tensor state dict"):
        load_flamingo(str(write_spec(tmp_path, str(tmp_path / "odd.pt"))))


def test_unreachable_hub_checkpoint_says_where_and_what_to_do(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("We couldn't connect to the Hub (offline mode)")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    spec = write_spec(tmp_path, "openflamingo/OpenFlamingo-9B-vitl-mpt7b/checkpoint.pt")
    with pytest.raises(WeightsError) as e:
        load_flamingo(str(spec))
    msg = str(e.value)
    assert "openflamingo/OpenFlamingo-9B-vitl-mpt7b" in msg and "checkpoint.pt" in msg and "local path" in msg
    assert "\n" not in msg


def test_missing_lm_directory_is_a_weights_error(tmp_path):
    spec = write_spec(tmp_path, str(MODEL / "checkpoint.pt"), lang_encoder=str(tmp_path / "nowhere"))
    with pytest.raises(WeightsError, match="lang_encoder"):
        load_flamingo(str(spec))


def test_stale_gpt_neox_attention_buffers_are_ignored():
    state = torch.load(GOLDEN / "gpt_neox-x2" / "checkpoint.pt", weights_only=True)
    assert any(k.endswith("attention.masked_bias") for k in state)
    assert load_flamingo(str(GOLDEN / "gpt_neox-x2" / "spec.yaml")).model.lm.config.family == "gpt_neox"


def test_image_token_is_never_generated_even_when_it_is_the_likeliest(model, monkeypatch):
    image_id = model.model.media_token_id
    prefill, extend = fast.prefill, fast.extend

    def favour_image(logits):
        logits[:, image_id] = logits.max() + 100.0  # the model would pick <image>...
        return logits

    def favoured_prefill(*a):
        logits, state = prefill(*a)
        return favour_image(logits), state

    monkeypatch.setattr(fast, "prefill", favoured_prefill)
    monkeypatch.setattr(fast, "extend", lambda *a: favour_image(extend(*a)))
    for beams in (1, 3):
        ids = model.generate_ids([a_prompt()], GenerationSettings(num_beams=beams, max_new_tokens=6))[0]
        assert len(ids) == 6 and image_id not in ids  # ...but never does


def test_rank_sums_option_token_logprobs_and_reports_lengths(model):
    lengths = model.option_lengths(["yes", "a dog"])
    assert lengths[0] >= 1 and lengths[1] > lengths[0]
    scores = model.rank([a_prompt()], ["yes", "a dog"])
    assert len(scores) == 1 and all(s < 0 for s in scores[0])


def test_vision_without_ln_post_is_what_the_goldens_check(model):
    """Guard on the goldens: applying ln_post (open_clip >= 2.23 behaviour) would change the outputs."""
    import flamingo_eval.models.flamingo.model as model_module

    golden = json.loads((MODEL / "golden.json").read_text())["cases"][1]
    original = model_module.patch_tokens
    model.latent_cache.clear()  # latents from earlier tests would hide the change
    try:
        model_module.patch_tokens = lambda visual, x: visual.ln_post(original(visual, x))
        wrong = model.rank([a_prompt()], golden["rank"]["options"])[0]
    finally:
        model_module.patch_tokens = original
        model.latent_cache.clear()
    assert max(abs(a - b) for a, b in zip(wrong, golden["rank"]["logprobs"], strict=True)) > 1e-2


def test_presets_are_the_released_models():
    assert set(PRESETS) == {"of-3b", "of-3b-instruct", "of-4b", "of-4b-instruct", "of-9b", "of-toy"}
    s = PRESETS["of-9b"].summary()
    assert set(s) == {"description", "lang_encoder", "tokenizer", "cross_attn_every_n_layers", "checkpoint", "vision_encoder",
                      "sizes"}
    assert s["sizes"] == {"num_latents": 64, "perceiver_depth": 6, "perceiver_heads": 8, "perceiver_dim_head": 64,
                          "xattn_heads": 8, "xattn_dim_head": 64}  # OpenFlamingo's released shapes
    assert (s["lang_encoder"], s["cross_attn_every_n_layers"]) == ("anas-awadalla/mpt-7b", 4)
    assert s["checkpoint"] == "openflamingo/OpenFlamingo-9B-vitl-mpt7b/checkpoint.pt"
    assert s["vision_encoder"] == {"name": "ViT-L-14", "pretrained": "openai"}
    assert PRESETS["of-4b"].cross_attn_every_n_layers == 2 and PRESETS["of-3b"].cross_attn_every_n_layers == 1
    assert [m["name"] for m in list_models()][: len(PRESETS)] == list(PRESETS)  # OpenFlamingo's first


def test_ls_models_lists_presets(capsys):
    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    assert "of-9b" in out and "anas-awadalla/mpt-7b" in out and "togethercomputer/RedPajama-INCITE-Base-3B-v1" in out


def test_spec_files_need_exactly_the_documented_keys(tmp_path):
    spec = write_spec(tmp_path, "x.pt", tokenizer=None)
    with pytest.raises(ConfigError, match="missing tokenizer"):
        load_spec_file(str(spec))
    spec = write_spec(tmp_path, "x.pt", precision="bf16")
    with pytest.raises(ConfigError, match="unknown precision"):
        load_spec_file(str(spec))
    spec = write_spec(tmp_path, "x.pt", cross_attn_every_n_layers="zero")
    with pytest.raises(ConfigError, match="positive integer"):
        load_spec_file(str(spec))
    with pytest.raises(ConfigError, match="unknown model 'of-9'"):
        load_flamingo("of-9")


def test_a_spec_may_declare_smaller_perceiver_and_cross_attention_which_the_checkpoint_must_fit(tmp_path):
    spec = load_spec_file(str(write_spec(tmp_path, "x.pt", sizes="{num_latents: 16, xattn_heads: 4}")))
    assert (spec.sizes.num_latents, spec.sizes.xattn_heads, spec.sizes.perceiver_depth) == (16, 4, 6)
    with pytest.raises(WeightsError, match=r"shape mismatch: .*perceiver\.latents"):
        load_flamingo(str(write_spec(tmp_path, str(MODEL / "checkpoint.pt"), sizes="{num_latents: 16}")))
    for bad, message in (("{num_latents: 0}", "sizes.num_latents must be a positive integer"),
                         ("{heads: 2}", "sizes must be a mapping with keys among num_latents")):
        with pytest.raises(ConfigError, match=message):
            load_spec_file(str(write_spec(tmp_path, "x.pt", sizes=bad)))


def test_a_batch_without_any_image_generates_and_ranks(model):
    text_only = Prompt([Chunk(None, "Output:a dog"), Chunk(None, "Output:")], "\n")
    alone = model.generate([text_only], GenerationSettings(num_beams=3, max_new_tokens=4))
    assert len(alone) == 1 and isinstance(alone[0], str)
    with_image = model.generate([text_only, a_prompt()], GenerationSettings(num_beams=3, max_new_tokens=4))
    assert with_image[0] == alone[0]  # a row without images is unaffected by its neighbour's images
    assert model.rank([text_only], ["yes"])[0] == pytest.approx(model.rank([text_only, a_prompt()], ["yes"])[0], abs=1e-4)


def test_vision_encoder_errors_are_one_clear_line(tmp_path):
    spec = write_spec(tmp_path, str(MODEL / "checkpoint.pt"), vision_encoder="{name: ViT-Q-99, pretrained: null}")
    with pytest.raises(ConfigError, match="unknown open_clip model 'ViT-Q-99'"):
        load_flamingo(str(spec))
    spec = write_spec(tmp_path, str(MODEL / "checkpoint.pt"), vision_encoder=f"{{name: 'local-dir:{tmp_path}/none'}}")
    with pytest.raises(WeightsError, match="vision_encoder") as e:
        load_flamingo(str(spec))
    assert "\n" not in str(e.value)
