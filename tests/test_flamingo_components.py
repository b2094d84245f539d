"""The Flamingo definition's parts (model.py), each against its specification, on tiny random modules."""

from pathlib import Path

import torch

from flamingo_eval.models.flamingo.model import (
    AllImages,
    GatedCrossAttentionBlock,
    PerceiverResampler,
    patch_tokens,
    text_time,
)
from flamingo_eval.models.flamingo.vision import load_vision

GOLDEN = Path(__file__).parent / "golden" / "flamingo"
IMAGE_ID = 7


def _block(dim=16, dim_visual=8):
    torch.manual_seed(0)
    block = GatedCrossAttentionBlock(dim, dim_visual, dim_head=4, heads=2)
    with torch.no_grad():
        block.attn_gate.fill_(0.8)
        block.ff_gate.fill_(0.5)
    return block.eval()


def test_text_time_counts_images_at_or_before_each_token():
    ids = torch.tensor([[1, IMAGE_ID, 2, 3, IMAGE_ID, 4], [5, 6, 2, IMAGE_ID, 3, 4]])
    assert text_time(ids == IMAGE_ID).tolist() == [[0, 1, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1]]


def all_images(block, media, times):
    """The definition's media attention over (B, T_img, n, D) latents."""
    b, t, n, d = media.shape
    return AllImages(*block.attn.media_kv(media.reshape(b, t * n, d)), times, n)


def test_each_token_attends_only_to_its_latest_image():
    block = _block()
    ids = torch.tensor([[1, IMAGE_ID, 2, 3, IMAGE_ID, 4, 5]])
    times = text_time(ids == IMAGE_ID)
    x = torch.randn(1, ids.shape[1], 16)
    media = torch.randn(1, 2, 3, 8)  # two images, three latents each
    with torch.no_grad():
        base = block(x, all_images(block, media, times))
        changed = media.clone()
        changed[:, 0] += 1.0  # only the first image changes
        out = block(x, all_images(block, changed, times))
    moved = (out - base).abs().amax(-1)[0]
    assert moved[1:4].min() > 1e-4  # tokens after the first <image> (it included) see it
    assert moved[0] == 0 and moved[4:].max() == 0  # before any image, and after the second: untouched


def test_tokens_before_any_image_get_no_attention_but_the_gated_ff():
    block = _block()
    x = torch.randn(1, 3, 16)
    times = torch.zeros(1, 3, dtype=torch.long)
    with torch.no_grad():
        out = block(x, all_images(block, torch.randn(1, 2, 3, 8), times))
        ff_only = block.ff(x) * block.ff_gate.tanh() + x
    torch.testing.assert_close(out, ff_only)


def test_perceiver_resamples_each_image_independently():
    torch.manual_seed(0)
    p = PerceiverResampler(8, depth=2, num_latents=4).eval()
    a, b = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    with torch.no_grad():
        joint = p(torch.cat([a, b]))
        torch.testing.assert_close(joint[1:], p(b))
    assert joint.shape == (2, 4, 8)


def test_vision_tokens_are_open_clip_tokens_before_ln_post():
    visual, transform = load_vision(f"local-dir:{GOLDEN / 'vit'}", None)
    pixels = torch.randn(2, 3, 32, 32)
    visual.output_tokens = True
    with torch.no_grad():
        ours = patch_tokens(visual, pixels)
        _, theirs = visual(pixels)  # open_clip >= 2.23 normalises every token with ln_post
        torch.testing.assert_close(visual.ln_post(ours), theirs)
        assert (ours - theirs).abs().max() > 0.1  # and the difference is not negligible
    assert ours.shape == (2, 16, 16)


def test_decoded_text_is_cleaned_up_as_transformers_4_did_unless_the_tokenizer_says_not_to(tmp_path):
    import json
    import shutil

    from transformers import AutoTokenizer

    from flamingo_eval.models.flamingo.tokens import clean_up_spaces, cleans_up_spaces

    assert clean_up_spaces("a dog 's toy , is n't it ?") == "a dog's toy, isn't it?"
    assert not cleans_up_spaces(AutoTokenizer.from_pretrained(GOLDEN / "lm-mpt"))  # says false explicitly
    for f in (GOLDEN / "lm-mpt").glob("tokenizer*"):
        shutil.copy(f, tmp_path / f.name)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    del cfg["clean_up_tokenization_spaces"]  # like EleutherAI/gpt-neox-20b's config: unset
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert cleans_up_spaces(AutoTokenizer.from_pretrained(tmp_path))
