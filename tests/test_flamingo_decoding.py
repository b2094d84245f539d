"""Fast decoding (issue 4) against its specification, on the tiny golden models (all three LM families):
cached greedy / beam search equal decoding by definition (a full forward over the whole sequence each step)
token for token in fp32, at batch sizes 1, 3 and 8; the prompt is prefilled once per query, kept once per query
for all its beams and never copied per step; a pool image is encoded once per run; rank reuses the prompt."""

from pathlib import Path

import pytest
import torch

from flamingo_eval.models import GenerationSettings
from flamingo_eval.models.flamingo import fast
from flamingo_eval.models.flamingo.adapter import load_flamingo
from flamingo_eval.models.flamingo.latent_cache import LatentCache
from flamingo_eval.models.flamingo.uncached import generate_ids_uncached
from flamingo_eval.prompt import Chunk, Image, Prompt

GOLDEN = Path(__file__).parent / "golden" / "flamingo"
MODELS = ["mpt-x1", "mpt-x2", "gpt_neox-x2", "llama-x1"]
SETTINGS = {
    "greedy": GenerationSettings(num_beams=1, max_new_tokens=12),
    "beam3": GenerationSettings(num_beams=3, max_new_tokens=12),
    "beam3_lp_min": GenerationSettings(num_beams=3, max_new_tokens=9, min_new_tokens=2, length_penalty=-2.0),
    "beam4_lp": GenerationSettings(num_beams=4, max_new_tokens=7, length_penalty=1.0),
}


def image(i: int) -> Image:
    return Image(key=f"img{i}", path=str(GOLDEN / "images" / f"img{i}.png"))


def prompts() -> list[Prompt]:
    """Eight prompts of different lengths and image counts (0 to 4 images), pool images repeated."""
    caption = ["a dog on the grass", "two cats sleeping on a red sofa", "a man riding a bike", "birds in the sky"]
    out = []
    for q in range(8):
        shots = q % 5
        chunks = [Chunk(image((q + s) % 4), f"Output:{caption[(q * 3 + s) % 4]}") for s in range(shots)]
        if q == 2:  # zero-shot layout: text-only demonstrations
            chunks = [Chunk(None, "Output:a house with a blue door"), Chunk(None, "Output:the quick brown fox")]
        if q == 5:
            chunks.insert(1, Chunk(None, "Output:a text-only chunk between images"))
        query = Chunk(None, "Output:") if q == 6 else Chunk(image(q % 4), "Output:")  # q=6: no image at all
        out.append(Prompt(chunks + [query], separator="\n"))
    return out


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return load_flamingo(str(GOLDEN / request.param / "spec.yaml"))


@pytest.mark.parametrize("setting", SETTINGS)
def test_cached_decoding_equals_decoding_by_definition(model, setting):
    settings = SETTINGS[setting]
    ps = prompts()
    want = generate_ids_uncached(model, ps, settings)
    assert model.generate_ids(ps, settings) == want
    assert len(set(map(tuple, want))) >= 3  # not degenerate: the prompts lead to different outputs


def test_finished_queries_stop_costing_compute(monkeypatch):
    """On the GPT-NeoX golden model some rows reach <|endofchunk|> early and others run to the limit (so the
    equality above covers per-row stopping); rows of finished queries are no longer fed."""
    model = load_flamingo(str(GOLDEN / "gpt_neox-x2" / "spec.yaml"))
    fed = []
    extend = fast.extend
    monkeypatch.setattr(fast, "extend", lambda net, state, tokens, *rest: fed.append(len(tokens)) or extend(net, state, tokens, *rest))
    for setting in ("greedy", "beam3", "beam4_lp"):  # beam3 (length_penalty 0): queries settle early
        fed.clear()
        settings = SETTINGS[setting]
        lengths = [len(ids) for ids in model.generate_ids(prompts(), settings)]
        if setting != "beam3":
            assert len(set(lengths)) >= 3 and max(lengths) == settings.max_new_tokens, setting
        assert fed == sorted(fed, reverse=True) and fed[-1] < fed[0] == 8 * settings.num_beams, setting
        if setting == "greedy":  # exactly the rows still running
            assert fed == [sum(n > t for n in lengths) for t in range(1, max(lengths))]


@pytest.mark.parametrize("setting", ["greedy", "beam3"])
def test_outputs_do_not_depend_on_batch_size(model, setting):
    settings = SETTINGS[setting]
    ps = prompts()
    per_size = {}
    for size in (1, 3, 8):
        model.latent_cache.clear()
        per_size[size] = [ids for i in range(0, len(ps), size) for ids in model.generate_ids(ps[i : i + size], settings)]
    assert per_size[1] == per_size[3] == per_size[8]


def test_prompt_is_prefilled_once_per_query_and_never_copied_per_step(model, monkeypatch):
    rows_seen = []
    original = model.model.run

    def spy(ids, *args, **kwargs):
        rows_seen.append(ids.shape)
        return original(ids, *args, **kwargs)

    monkeypatch.setattr(model.model, "run", spy)
    storage = []
    extend = fast.extend

    def watch(net, state, tokens, *rest):
        storage.append((state.cache.prompt_keys[0].data_ptr(), state.cache.suffix_keys[0].data_ptr()))
        return extend(net, state, tokens, *rest)

    monkeypatch.setattr(fast, "extend", watch)
    ps = prompts()[:3]
    model.generate_ids(ps, GenerationSettings(num_beams=3, max_new_tokens=6, min_new_tokens=6))
    assert rows_seen[0][0] == 3  # the prompt pass: one row per query, not per beam
    assert all(shape == (9, 1) for shape in rows_seen[1:])  # then one new token per beam
    assert len(storage) == 5 and len(set(storage)) == 1  # the cache grows in place: no per-step copy


def test_beams_read_one_prompt_copy_per_query(model):
    """Every family (MPT's ALiBi attention, GPT-NeoX, Llama with grouped K/V heads): the beams of a query
    attend to one copy of its prompt K/V; the equality tests above show the joined softmax is exact."""
    ps = prompts()[:3]
    ids, mask = model._pad_left(model._tokenize(ps))
    _, state = fast.prefill(model.model, ids, mask, model._images(ps), 3, 4)
    fast.extend(model.model, state, torch.full((9, 1), 5))
    prompt_keys, suffix_keys = state.cache.prompt_keys[0], state.cache.suffix_keys[0]
    assert prompt_keys.shape[:3] == (3, prompt_keys.shape[1], ids.shape[1])  # the prompt: once per query
    assert suffix_keys.shape[0] == 9 and state.cache.filled == 1  # each beam: only what it generated


def test_new_tokens_cross_attend_to_the_last_image_only(model):
    ps = prompts()[3:5]  # three and four images
    ids, mask = model._pad_left(model._tokenize(ps))
    _, state = fast.prefill(model.model, ids, mask, model._images(ps), 3, 4)
    n = model.model.perceiver.num_latents
    assert state.last_image and len(state.last_image) == len(model.model.xattn)
    for kv in state.last_image.values():
        assert kv.keys.shape[0] == 2 and kv.keys.shape[2] == n  # per query (not per beam), one image's latents
    with pytest.raises(ValueError, match="<image>"):
        fast.extend(model.model, state, torch.full((6, 1), model.model.media_token_id))


def test_a_pool_image_is_encoded_once_across_calls(model, monkeypatch):
    model.latent_cache.clear()
    encoded = []
    original = model.model.encode_images
    monkeypatch.setattr(model.model, "encode_images", lambda px: encoded.append(len(px)) or original(px))
    settings = GenerationSettings(num_beams=1, max_new_tokens=2)
    for q in range(6):  # six queries, each with the same two pool images and its own query image
        model.generate_ids([Prompt([Chunk(image(0), "Output:a"), Chunk(image(1), "Output:b"), Chunk(image(2 + q % 2), "Output:")])], settings)
    assert sum(encoded) == 4  # img0..img3, each once


def test_rank_from_one_prefill_equals_full_forward_scores(model):
    ps = prompts()
    options = ["yes", "no", "a dog on the grass", "two cats"]
    got = model.rank(ps, options)
    ids_rows = model._tokenize(ps)
    opts = model._option_ids(options)
    media = model._media(ps)
    for b, prompt_ids in enumerate(ids_rows):
        for j, o in enumerate(opts):
            seq = torch.tensor([prompt_ids + o])
            logits = model.model(seq, torch.ones_like(seq), media[b : b + 1])
            logp = torch.log_softmax(logits[0].float(), -1)
            want = sum(float(logp[len(prompt_ids) + i - 1, t]) for i, t in enumerate(o))
            assert abs(got[b][j] - want) < 1e-4
    alone = model.rank(ps[1:2], options)[0]  # one prompt: no padding, so no mask but causality
    assert max(abs(a - b) for a, b in zip(alone, got[1], strict=True)) < 1e-4


def test_latent_cache_evicts_least_recently_used_past_its_byte_budget():
    cache = LatentCache(max_bytes=3 * 16)  # room for three (2, 2) float32 tensors
    for key in "abc":
        cache.put(key, torch.zeros(2, 2))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", torch.zeros(2, 2))
    assert "b" not in cache and all(k in cache for k in "acd")
    assert cache.nbytes == 48 and len(cache) == 3
    cache.put("huge", torch.zeros(100))  # larger than the whole budget: not kept, nothing evicted
    assert "huge" not in cache and len(cache) == 3
    view = torch.arange(8.0).view(4, 2)[1]  # a view of a larger tensor is stored as its own copy
    cache.put("v", view)
    assert cache.get("v").untyped_storage().nbytes() == 8


@pytest.mark.parametrize("name", ["mpt-x2", "llama-x1"])
def test_bf16_weights_decode_in_bf16_throughout(name, monkeypatch):
    """The GPU configuration, run on CPU: bf16 weights (no fp32 master copy), caches and latents in bf16;
    only logits are float32 (the search scores)."""
    model = load_flamingo(str(GOLDEN / name / "spec.yaml"), precision="bf16")
    assert {p.dtype for p in model.model.parameters()} == {torch.bfloat16}
    seen = []
    extend = fast.extend

    def watch(net, state, tokens, *rest):
        seen.append({k.dtype for k in state.cache.prompt_keys + state.cache.suffix_keys}
                    | {kv.keys.dtype for kv in state.last_image.values()})
        logits = extend(net, state, tokens, *rest)
        seen.append({logits.dtype})
        return logits

    monkeypatch.setattr(fast, "extend", watch)
    out = model.generate_ids(prompts()[:3], GenerationSettings(num_beams=3, max_new_tokens=5))
    assert len(out) == 3 and all(out) and model.model.media_token_id not in sum(out, [])
    assert seen[0] == {torch.bfloat16} and seen[1] == {torch.float32}
    assert {v.dtype for v in model.latent_cache._items.values()} == {torch.bfloat16}


def test_training_forward_equals_the_inference_forward_and_trains_every_part(model):
    """What the toy model is trained with (right-padded rows, each distinct image once) computes what
    evaluation computes, and its gradients reach the vision tower, Perceiver and cross-attention."""
    ps = [p for p in prompts() if any(c.image is not None for c in p)]
    rows = model._tokenize(ps)
    keys = {c.image.key: c.image for p in ps for c in p if c.image is not None}
    position = {k: i for i, k in enumerate(keys)}
    pixels = torch.stack([model.transform(im.load()) for im in keys.values()])
    per_row = [[position[c.image.key] for c in p if c.image is not None] for p in ps]
    media_index = torch.full((len(ps), max(map(len, per_row))), -1)
    ids = torch.full((len(ps), max(map(len, rows))), model.tokenizer.pad_token_id or 0)
    mask = torch.zeros_like(ids)
    for b, (r, imgs) in enumerate(zip(rows, per_row, strict=True)):
        media_index[b, : len(imgs)] = torch.tensor(imgs)
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = 1
    net = model.model
    got = fast.forward_train(net, pixels, media_index, ids, mask)
    for b, r in enumerate(rows):
        seq = torch.tensor([r])
        want = net(seq, torch.ones_like(seq), model._media(ps[b : b + 1]))
        torch.testing.assert_close(got[b, : len(r)].detach(), want[0], atol=1e-4, rtol=1e-4)
    got[mask.bool()].logsumexp(-1).sum().backward()
    for part in ("vision_encoder.transformer.", "perceiver.", "xattn."):
        grads = [p.grad for name, p in net.named_parameters() if part in name]
        assert grads and all(g is not None and bool(g.abs().sum() > 0) for g in grads), part
    net.zero_grad(set_to_none=True)
