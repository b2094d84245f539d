"""The tiny Idefics/Idefics2/Idefics3 builders and transformers oracles (tests/helpers_idefics.py): what the
adapters' exactness tests rely on. Models reload through the Auto classes, generate greedy and beam 3 on a
batch of prompts with different image counts, depend on their images, stop early sometimes and not always;
the renderings pin how each 5.25 processor expands images."""

import hashlib

import pytest
import torch

from flamingo_eval.prompt import Chunk, Prompt
from tests import helpers_idefics as H

VARIANTS = {
    "idefics": ("idefics", {}),
    "idefics2": ("idefics2", {}),
    "idefics2-split": ("idefics2", {"do_image_splitting": True}),
    "idefics3": ("idefics3", {}),
    "idefics3-split": ("idefics3", {"do_image_splitting": True}),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """variant -> (family, model, processor, directory), built and loaded once per module."""
    loaded = {}

    def get(variant: str):
        if variant not in loaded:
            family, options = VARIANTS[variant]
            directory = H.build(family, tmp_path_factory.mktemp(variant), seed=0, **options)
            loaded[variant] = (family, *H.load(family, directory), directory)
        return loaded[variant]

    return get


def images(*seeds_sizes):
    return [H.tiny_image(seed, size) for seed, size in seeds_sizes]


def two_shot_and_zero_shot(query_seed: int = 7):
    """A 2-shot prompt (3 images) and a 0-shot one (two text-only demonstrations + the query image)."""
    two = H.vqa_prompt(images((0, (40, 32)), (1, (64, 20)), (2, (32, 48))))
    zero = H.vqa_prompt(images((query_seed, (50, 50))), offset=3)
    return [two, zero]


def many_prompts(query_seed_base: int = 0, n: int = 8):
    """n VQA prompts with 0, 1 or 2 shots; the query images come from ``query_seed_base``."""
    sizes = [(40, 32), (32, 48), (64, 20), (50, 50), (30, 30), (45, 60)]
    out = []
    for k in range(n):
        shots = k % 3
        demos = [H.tiny_image(10 * k + j, sizes[(k + j) % 6]) for j in range(shots)]
        out.append(H.vqa_prompt(demos + [H.tiny_image(query_seed_base + k, sizes[k % 6])], offset=k))
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_builder_writes_a_directory_the_auto_classes_reload(tiny, variant):
    """H.load uses AutoProcessor and IdeficsForVisionText2Text (v1) or AutoModelForImageTextToText."""
    family, model, processor, directory = tiny(variant)
    names = {p.name for p in directory.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "processor_config.json"} <= names
    assert type(model).__name__ == {"idefics": "IdeficsForVisionText2Text",
                                    "idefics2": "Idefics2ForConditionalGeneration",
                                    "idefics3": "Idefics3ForConditionalGeneration"}[family]
    tok = processor.tokenizer
    assert type(processor).__name__ == {"idefics": "IdeficsProcessor", "idefics2": "Idefics2Processor",
                                        "idefics3": "Idefics3Processor"}[family]
    assert (tok.bos_token, tok.eos_token, tok.unk_token) == ("<s>", "</s>", "<unk>")
    for token in (H.FAKE, H.IMAGE):
        assert tok.convert_tokens_to_ids(token) != tok.unk_token_id
    if family == "idefics3":
        for token in (H.EOU, H.GLOBAL_IMG, "<row_1_col_1>", "<row_6_col_6>"):
            assert tok.convert_tokens_to_ids(token) != tok.unk_token_id
        assert tok.pad_token == "<pad>" and tok.pad_token_id != 0
    else:
        assert tok.pad_token_id == 0


def test_idefics_v1_config_is_laid_out_as_idefics_9b(tiny):
    _, model, processor, _ = tiny("idefics")
    cfg, tok = model.config, processor.tokenizer
    base = cfg.vocab_size
    assert cfg.additional_vocab_size == 2
    assert tok.convert_tokens_to_ids([H.FAKE, H.IMAGE]) == [base, base + 1]
    assert tok.convert_tokens_to_ids(H.EOU) == tok.unk_token_id  # idefics-9b (base) has none
    assert cfg.qk_layer_norms and cfg.perceiver_config.qk_layer_norms_perceiver and cfg.use_resampler
    assert cfg.cross_layer_interval == 2 and len(model.model.gated_cross_attn_layers) == 2
    alphas = [p.item() for n, p in model.named_parameters() if "alpha" in n]
    assert len(alphas) == 4 and all(abs(a) >= 0.5 for a in alphas)
    assert model.lm_head(torch.zeros(1, cfg.hidden_size)).shape[-1] == base + 2


def test_idefics_v1_options(tmp_path):
    family = "idefics"
    model, processor = H.load(family, H.build_idefics(tmp_path / "a", qk_layer_norms=False, end_of_utterance=True))
    assert not model.config.qk_layer_norms and not model.config.perceiver_config.qk_layer_norms_perceiver
    base = model.config.vocab_size
    assert model.config.additional_vocab_size == 3
    assert processor.tokenizer.convert_tokens_to_ids(H.EOU) == base + 2
    # two consecutive text items: 5.25 inserts no <end_of_utterance> even though the tokenizer has it
    prompt = Prompt([Chunk(None, "Output:a dog."), Chunk(None, "Output:")], separator="\n")
    ids = H.processor_inputs(family, processor, [prompt])["input_ids"][0].tolist()
    assert base + 2 not in ids
    assert processor(text=[["Output:a dog.\n", "Output:"]])["input_ids"][0].tolist() == ids
    assert len(H.hf_generate(model, processor, family, [prompt], 3, 3)[0]) >= 1


def test_builds_are_deterministic_and_seeded(tmp_path):
    def digest(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for family in H.FAMILIES:
        a, b, c = (H.build(family, tmp_path / f"{family}-{n}", seed=s) for n, s in (("a", 0), ("b", 0), ("c", 1)))
        for name in ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json"):
            assert digest(a / name) == digest(b / name), (family, name)
        assert digest(a / "model.safetensors") != digest(c / "model.safetensors")


def test_builders_leave_the_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    H.build_idefics2(tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


# Each processor's rendering of the 1-shot VQA prompt (query image 64 x 20: one row of two tiles when
# Idefics3 splits; the demonstration's 40 x 32: two rows of two). F = <fake_token_around_image>,
# I = <image>, G = <global-img>, R11 = <row_1_col_1>; tokens joined, "▁" is the Metaspace space.
Q1 = "Question:what▁color▁is▁the▁car?▁Short▁answer:red\n"
Q2 = "Question:how▁many▁dogs▁are▁there?▁Short▁answer:"
RENDERED = {
    "idefics": f"<s>FIF{Q1}FIF{Q2}",
    "idefics2": f"<s>FIIIIF▁{Q1}FIIIIF▁{Q2}",
    "idefics2-split": f"<s>{'FIIII' * 5}F▁{Q1}{'FIIII' * 5}F▁{Q2}",
    "idefics3": f"<s>FGIIIIF{Q1}FGIIIIF{Q2}",
    "idefics3-split": f"<s>FR11IIIIFR12IIII\nFR21IIIIFR22IIII\n\nFGIIIIF{Q1}FR11IIIIFR12IIII\n\nFGIIIIF{Q2}",
}


def _abbreviate(text: str) -> str:
    text = text.replace(H.FAKE, "F").replace(H.IMAGE, "I").replace(H.GLOBAL_IMG, "G")
    for i in range(1, 7):
        for j in range(1, 7):
            text = text.replace(f"<row_{i}_col_{j}>", f"R{i}{j}")
    return text


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_processor_renderings(tiny, variant):
    family, _, processor, _ = tiny(variant)
    one_shot = H.vqa_prompt(images((0, (40, 32)), (1, (64, 20))))
    text, ids = H.render(family, processor, one_shot)
    assert _abbreviate(text) == RENDERED[variant]
    tok = processor.tokenizer
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.eos_token_id not in ids and tok.convert_tokens_to_ids(H.EOU) not in ids
    if family == "idefics":  # one-hot on the latest image; nothing before the first
        inputs = H.processor_inputs(family, processor, [one_shot])
        mask = inputs["image_attention_mask"][0].long()
        image_positions = [i for i, t in enumerate(ids) if t == processor.image_token_id]
        assert mask[: image_positions[0]].sum() == 0
        assert mask[image_positions[0]: image_positions[1]].tolist() == [[1, 0]] * (image_positions[1] - image_positions[0])
        assert mask[image_positions[1]:].tolist() == [[0, 1]] * (len(ids) - image_positions[1])


@pytest.mark.parametrize("variant", ["idefics", "idefics2", "idefics3"])
def test_zero_shot_prompt_has_two_text_only_demonstrations(tiny, variant):
    family, _, processor, _ = tiny(variant)
    prompt = H.vqa_prompt(images((3, (50, 50))))
    assert len(prompt) == 3 and [c.image is None for c in prompt] == [True, True, False]
    assert prompt.separator == "\n" and prompt[0].text.startswith("Question:") and prompt[-1].text.endswith("answer:")
    text, _ = H.render(family, processor, prompt)
    assert _abbreviate(text).count("F") in (2, 3)  # one image: v1/v2 F..F, v3 F G ... F


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generate_on_a_batch_with_different_image_counts(tiny, variant, num_beams):
    family, model, processor, _ = tiny(variant)
    stops = set(H.stop_ids(processor.tokenizer))
    rows = H.hf_generate(model, processor, family, two_shot_and_zero_shot(), num_beams, 6)
    assert len(rows) == 2
    for row in rows:
        assert 1 <= len(row) <= 6
        assert all(t not in stops for t in row[:-1])
        assert len(row) == 6 or row[-1] in stops
        assert isinstance(H.hf_text(processor.tokenizer, row), str)
    # each row is what the prompt alone gives: batching and left padding change nothing
    alone = [H.hf_generate(model, processor, family, [p], num_beams, 6)[0] for p in two_shot_and_zero_shot()]
    assert rows == alone


@pytest.mark.parametrize("variant", ["idefics", "idefics2", "idefics3", "idefics3-split"])
def test_the_query_image_changes_the_generation(tiny, variant):
    family, model, processor, _ = tiny(variant)
    batches = [two_shot_and_zero_shot(seed) for seed in (7, 8)]  # only the 0-shot query image differs
    a, b = (H.hf_generate(model, processor, family, batch, 1, 6) for batch in batches)
    assert a[0] == b[0]
    with torch.no_grad():
        la, lb = (model(**H.processor_inputs(family, processor, batch)).logits[1, -1] for batch in batches)
    assert (la - lb).abs().max() > 0.3
    a, b = (H.hf_generate(model, processor, family, many_prompts(base), 1, 5) for base in (100, 200))
    assert sum(x != y for x, y in zip(a, b, strict=True)) >= 4, (a, b)


@pytest.mark.parametrize("variant", ["idefics", "idefics2", "idefics3"])
def test_some_generations_stop_early_and_some_run_to_the_limit(tiny, variant):
    family, model, processor, _ = tiny(variant)
    for num_beams in (1, 3):
        lengths = [len(r) for r in H.hf_generate(model, processor, family, many_prompts(100), num_beams, 6)]
        assert min(lengths) < 6 and max(lengths) == 6, (num_beams, lengths)


@pytest.mark.parametrize("variant", ["idefics", "idefics3"])
def test_min_new_tokens_and_length_penalty_reach_generate(tiny, variant):
    family, model, processor, _ = tiny(variant)
    prompts = many_prompts(100, 6)
    free = H.hf_generate(model, processor, family, prompts, 3, 6)
    forced = H.hf_generate(model, processor, family, prompts, 3, 6, min_new_tokens=3)
    assert min(map(len, free)) < 3 <= min(map(len, forced))
    short = H.hf_generate(model, processor, family, prompts, 3, 6, length_penalty=-2.0)
    assert sum(map(len, short)) <= sum(map(len, free))


def test_stop_ids_are_eos_and_the_newline_tokens(tiny):
    _, _, processor, _ = tiny("idefics2")
    tok = processor.tokenizer
    stops = H.stop_ids(tok)
    assert stops == sorted(set(stops)) and tok.eos_token_id in stops
    newline = tok("a\nb", add_special_tokens=False)["input_ids"][1]
    assert tok.decode([newline]) == "\n" and newline in stops
    assert tok.convert_tokens_to_ids("<0x0A>") in stops  # the byte-fallback newline too
    assert len(stops) >= 4  # also pieces such as ".\n"
    assert all("\n" in tok.decode([t]) for t in stops if t != tok.eos_token_id)


def test_hf_text_cuts_at_the_first_newline_and_keeps_spaces(tiny):
    _, _, processor, _ = tiny("idefics3")
    tok = processor.tokenizer
    ids = tok("red car\nQuestion:", add_special_tokens=False)["input_ids"]
    assert H.hf_text(tok, ids) == "red car"
    ids = tok.convert_tokens_to_ids([H.IMAGE, "▁red", "▁", "▁car", "\n"])
    assert H.hf_text(tok, ids) == "red  car"  # special token skipped, Metaspace's leading space dropped


@pytest.mark.parametrize("variant", ["idefics", "idefics2", "idefics3"])
def test_text_only_batches_and_mixed_batches(tiny, variant):
    family, model, processor, _ = tiny(variant)
    text_only = Prompt([Chunk(None, "Output:a dog."), Chunk(None, "Output:")], separator="\n")
    inputs = H.processor_inputs(family, processor, [text_only, text_only])
    assert ("pixel_values" in inputs) == (family == "idefics")  # idefics2/3: images=None
    alone = H.hf_generate(model, processor, family, [text_only], 3, 4)
    mixed = H.hf_generate(model, processor, family, [H.vqa_prompt(images((1, (40, 32)))), text_only], 3, 4)
    assert mixed[1] == alone[0]


@pytest.mark.parametrize("variant", ["idefics", "idefics2", "idefics3", "idefics3-split"])
def test_option_logprob_agrees_with_generate_scores(tiny, variant):
    """The appended-ids forward scores the greedy continuation as generate did step by step (for v1: the
    appended tokens attend to the last image, as generate extends image_attention_mask)."""
    family, model, processor, _ = tiny(variant)
    prompt = H.harness_prompt("hateful_memes", images((4, (40, 32)), (5, (50, 50))))
    inputs = H.processor_inputs(family, processor, [prompt])
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False,
                             output_logits=True, return_dict_in_generate=True,
                             pad_token_id=processor.tokenizer.pad_token_id)
    new = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    expected = sum(float(torch.log_softmax(s[0].float(), -1)[t]) for s, t in zip(out.logits, new, strict=True))
    assert H.hf_ids_logprob(model, processor, family, prompt, new) == pytest.approx(expected, abs=1e-4)
    yes, no = (H.hf_option_logprob(model, processor, family, prompt, o) for o in ("yes", "no"))
    assert yes < 0 and no < 0 and yes != no
    ids = processor.tokenizer("no", add_special_tokens=False)["input_ids"]
    assert no == H.hf_ids_logprob(model, processor, family, prompt, ids)


def test_harness_prompt_follows_the_task_templates():
    imgs = images((0, (40, 32)), (1, (40, 32)))
    memes = H.harness_prompt("hateful_memes", imgs)
    assert memes.separator == "" and [c.image for c in memes] == imgs
    assert memes[0].text.startswith("is an image with: '") and memes[0].text.endswith("Answer:no")
    assert memes[1].text.endswith("Is it hateful? Answer:")
    caption = H.harness_prompt("coco", imgs[1:], shots=0)
    assert [c.image for c in caption] == [None, None, imgs[1]] and caption[-1].text == "Output:"
    assert caption[0].text.startswith("Output:") and caption.separator == "\n"
    with pytest.raises(ValueError):
        H.vqa_prompt(imgs, shots=0)
