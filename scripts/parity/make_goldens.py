"""Build tiny OpenFlamingo models with the reference package and record its outputs as golden files.

Run with the reference environment (open-flamingo 2.0.1, open_clip 2.20, transformers 4.57; see
README.md next to this file). Writes tests/golden/flamingo/: the tiny models in their published
formats (LM directories, an open_clip local-dir, OpenFlamingo checkpoint.pt files, model spec
files) and golden.json per model, so the test suite needs no reference environment.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flamingo_eval.models.flamingo.render import render  # noqa: E402
from flamingo_eval.prompt import Chunk, Image, Prompt  # noqa: E402

VISION_CFG = {
    "embed_dim": 8,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 16, "head_width": 8, "patch_size": 8},
    "text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1},
}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
EMB_STD = 0.35
EOC_BOOST = 2.6  # scales the output row of <|endofchunk|> so that some generations stop early
LM_DIM, LM_LAYERS, LM_HEADS, MAX_LEN = 32, 4, 4, 256
MODELS = [("mpt", 1), ("mpt", 2), ("gpt_neox", 2), ("llama", 1)]
OPTIONS = ["yes", "no", "a dog"]
SETTINGS = {
    "greedy": {"num_beams": 1, "max_new_tokens": 10, "min_new_tokens": 0, "length_penalty": 0.0},
    "beam3": {"num_beams": 3, "max_new_tokens": 10, "min_new_tokens": 0, "length_penalty": 0.0},
    "beam3_lp": {"num_beams": 3, "max_new_tokens": 8, "min_new_tokens": 2, "length_penalty": -2.0},
}
CORPUS = [
    "Output:a dog on the grass", "Output:two cats sleeping on a red sofa", "Question:what is it? Short answer:dog",
    "Question:what color is the car? Short answer:red", "Question:how many people? Short answer:three",
    "is an image with: 'hello world' written on it. Is it hateful? Answer:no", "Answer:yes", "a man riding a bike",
    "a house with a blue door near the river", "the quick brown fox jumps over the lazy dog", "birds in the sky",
]
CASES = [
    ("single", [("img0.png", "Output:")], "\n"),
    ("two_shot", [("img1.png", "Output:a dog on the grass"), ("img2.png", "Output:")], "\n"),
    ("three_images_vqa", [("img0.png", "Question:what is it? Short answer:dog"),
                          ("img3.png", "Question:what color is the car? Short answer:red"),
                          ("img1.png", "Question:how many people? Short answer:")], "\n"),
    ("zero_shot_text_demos", [(None, "Output:two cats sleeping"), (None, "Output:birds in the sky"), ("img2.png", "Output:")], "\n"),
    ("text_chunk_between_images", [("img1.png", "Output:a red car"), (None, "Output:a house"), ("img3.png", "Output:")], "\n"),
    ("memes", [("img3.png", "is an image with: 'hello' written on it. Is it hateful? Answer:no"),
               ("img0.png", "is an image with: 'world' written on it. Is it hateful? Answer:")], ""),
    ("repeated_image", [("img2.png", "Output:birds in the sky"), ("img0.png", "Output:a man"), ("img2.png", "Output:")], "\n"),
    ("text_only_query", [("img3.png", "Output:a red car"), (None, "Question:what color? Short answer:")], "\n"),
]


def make_images(out: Path, rng: np.random.Generator) -> None:
    from PIL import Image as PILImage

    out.mkdir(parents=True, exist_ok=True)
    for i, (w, h) in enumerate([(40, 56), (64, 48), (33, 33), (50, 37)]):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * (i + 3)) % 256, (yy * (7 - i)) % 256, ((xx + yy) * 5) % 256], -1)
        noise = rng.integers(0, 64, size=(h, w, 3))
        PILImage.fromarray(((base + noise) % 256).astype(np.uint8)).save(out / f"img{i}.png")


def make_tokenizer(bos: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>"] + (["<s>"] if bos else [])
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kwargs = {"bos_token": "<s>"} if bos else {"bos_token": "<|endoftext|>"}
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="<|endoftext|>", **kwargs)


def randomize(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Weights that make every component matter: unit-scale linears, non-identity norms, non-zero gates."""
    for name, p in module.named_parameters():
        with torch.no_grad():
            if name.endswith(("attn_gate", "ff_gate")):
                p.copy_((torch.rand(p.shape, generator=gen) * 0.6 + 0.4) * torch.sign(torch.randn(p.shape, generator=gen)))
            elif p.ndim == 1 and ("norm" in name or "ln" in name or name.endswith(".0.weight") or "layernorm" in name):
                p.copy_((1.0 + 0.3 * torch.randn(p.shape, generator=gen)) if name.endswith("weight") else 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 2 and ("wte" in name or "embed" in name or "lm_head" in name):
                p.copy_(EMB_STD * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            p.copy_(p.half().float())  # exactly representable in the fp16 files we ship


def make_vision(out: Path, gen: torch.Generator):
    import open_clip
    from safetensors.torch import save_file

    cfg_file = out / "tiny-vit.json"
    out.mkdir(parents=True, exist_ok=True)
    cfg_file.write_text(json.dumps(VISION_CFG))
    open_clip.add_model_config(str(cfg_file))
    cfg_file.unlink()
    clip = open_clip.create_model("tiny-vit", pretrained=None)
    randomize(clip, gen)
    with torch.no_grad():  # ln_post far from identity, and per channel (a uniform affine would cancel in the
        w, b = clip.visual.ln_post.weight, clip.visual.ln_post.bias  # Perceiver's own LayerNorm)
        w.copy_((0.3 + 2.0 * torch.rand(w.shape, generator=gen)).half().float())
        b.copy_((0.8 * torch.randn(b.shape, generator=gen)).half().float())
    save_file({k: v.contiguous().half() for k, v in clip.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    preprocess = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic", "resize_mode": "shortest"}
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": VISION_CFG, "preprocess_cfg": preprocess}, indent=1))
    return clip


def make_lm(family: str, out: Path, tokenizer, gen: torch.Generator) -> None:
    import transformers

    vocab = 64 * math.ceil((len(tokenizer) + 3) / 64)  # padded like the released LMs: OpenFlamingo shrinks it
    common = {"vocab_size": vocab, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    if family == "mpt":
        config = transformers.MptConfig(d_model=LM_DIM, n_heads=LM_HEADS, n_layers=LM_LAYERS, expansion_ratio=2, max_seq_len=MAX_LEN, **common)
        model = transformers.MptForCausalLM(config)
    elif family == "gpt_neox":
        config = transformers.GPTNeoXConfig(hidden_size=LM_DIM, num_attention_heads=LM_HEADS, num_hidden_layers=LM_LAYERS,
                                            intermediate_size=2 * LM_DIM, rotary_pct=0.25, max_position_embeddings=MAX_LEN,
                                            tie_word_embeddings=False, **common)
        model = transformers.GPTNeoXForCausalLM(config)
    else:
        config = transformers.LlamaConfig(hidden_size=LM_DIM, num_attention_heads=LM_HEADS, num_key_value_heads=2,
                                          num_hidden_layers=LM_LAYERS, intermediate_size=2 * LM_DIM,
                                          max_position_embeddings=MAX_LEN, tie_word_embeddings=False, **common)
        model = transformers.LlamaForCausalLM(config)
    randomize(model, gen)
    if family == "llama":  # its output head is not in checkpoint.pt: boost the future <|endofchunk|> row here
        with torch.no_grad():
            model.lm_head.weight[len(tokenizer)] = (model.lm_head.weight[len(tokenizer)] * EOC_BOOST).half().float()
    model.to(torch.float16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What OpenFlamingo's training saves: trainable parameters and embeddings, without the duplicate
    registrations (old_decoder_blocks, gated_cross_attn_layers) and without the vision tower."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad or "embed" in n}
    out = {}
    for name, value in model.state_dict().items():
        if name.startswith(("vision_encoder.", "lang_encoder.old_decoder_blocks.", "lang_encoder.gated_cross_attn_layers.")):
            continue
        if name in trainable:
            out[name] = value.detach().clone().half()
    return out


def build_reference(family: str, every_n: int, root: Path, clip, gen: torch.Generator):
    from open_flamingo import create_model_and_transforms

    lm_dir = root / f"lm-{family}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, image_processor, tokenizer = create_model_and_transforms(
            clip_vision_encoder_path="tiny-vit",
            clip_vision_encoder_pretrained=None,
            lang_encoder_path=str(lm_dir),
            tokenizer_path=str(lm_dir),
            cross_attn_every_n_layers=every_n,
            use_local_files=True,
        )
    model.vision_encoder.load_state_dict(clip.visual.state_dict())
    randomize(model.perceiver, gen)
    for block in model.lang_encoder.gated_cross_attn_layers:
        if block is not None:
            randomize(block, gen)
    emb = model.lang_encoder.get_input_embeddings().weight
    with torch.no_grad():  # the rows OpenFlamingo adds are trained: give them real values
        for token in ("<|endofchunk|>", "<image>"):
            emb[tokenizer.convert_tokens_to_ids(token)] = (EMB_STD * torch.randn(emb.shape[1], generator=gen)).half().float()
        if family != "llama":  # output embeddings saved in checkpoint.pt (tied for MPT, embed_out for GPT-NeoX)
            out_emb = model.lang_encoder.get_output_embeddings().weight
            eoc = tokenizer.convert_tokens_to_ids("<|endofchunk|>")
            out_emb[eoc] = (out_emb[eoc] * EOC_BOOST).half().float()
    model.eval()
    return model, image_processor, tokenizer


def prompt_of(chunks, separator: str) -> Prompt:
    return Prompt([Chunk(Image(key=f, path=f) if f else None, text) for f, text in chunks], separator=separator)


@torch.no_grad()
def reference_outputs(model, image_processor, tokenizer, images: Path) -> dict:
    from PIL import Image as PILImage

    media_id = tokenizer.convert_tokens_to_ids("<image>")
    tokenizer.padding_side = "left"

    def vision(chunk_lists):
        n = max(sum(1 for f, _ in c if f) for c in chunk_lists)
        x = torch.zeros((len(chunk_lists), n, 1, 3, 32, 32))
        for b, chunks in enumerate(chunk_lists):
            for t, f in enumerate([f for f, _ in chunks if f]):
                x[b, t, 0] = image_processor(PILImage.open(images / f))
        return x

    def generate(chunk_lists, texts, s):
        enc = tokenizer(texts, padding="longest", return_tensors="pt")
        out = model.generate(vision(chunk_lists), enc["input_ids"], attention_mask=enc["attention_mask"],
                             max_new_tokens=s["max_new_tokens"], min_new_tokens=s["min_new_tokens"],
                             num_beams=s["num_beams"], length_penalty=s["length_penalty"],
                             bad_words_ids=[[media_id]], do_sample=False)
        new = out[:, enc["input_ids"].shape[1]:]
        return [row.tolist() for row in new], tokenizer.batch_decode(new, skip_special_tokens=True)

    cases = []
    for name, chunks, sep in CASES:
        text = render(prompt_of(chunks, sep))
        ids = tokenizer(text)["input_ids"]
        case = {"name": name, "chunks": [{"image": f, "text": t} for f, t in chunks], "separator": sep,
                "rendered": text, "input_ids": ids, "rank": {"options": OPTIONS, "logprobs": []}}
        for option in OPTIONS:
            opt = tokenizer(option, add_special_tokens=False)["input_ids"]
            seq = torch.tensor([ids + opt])
            logits = model(vision([chunks]), seq, attention_mask=torch.ones_like(seq)).logits
            logp = torch.log_softmax(logits.float(), -1)[0]
            case["rank"]["logprobs"].append(sum(float(logp[len(ids) + j - 1, t]) for j, t in enumerate(opt)))
        for key, s in SETTINGS.items():
            new_ids, texts = generate([chunks], [text], s)
            case[key] = {"text": texts[0], "new_ids": [t for t in new_ids[0]]}
        cases.append(case)
    batched = {}
    all_chunks = [c for _, c, _ in CASES]
    all_texts = [render(prompt_of(c, sep)) for _, c, sep in CASES]
    for key, s in SETTINGS.items():
        batched[key] = generate(all_chunks, all_texts, s)[1]
    return {"cases": cases, "batched_reference": batched}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(REPO / "tests" / "golden" / "flamingo"))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    import open_flamingo
    import transformers

    root = Path(args.out)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    make_images(root / "images", np.random.default_rng(args.seed))
    clip = make_vision(root / "vit", gen)
    for family in sorted({f for f, _ in MODELS}):
        make_lm(family, root / f"lm-{family}", make_tokenizer(bos=family == "llama"), gen)
    versions = {"open_flamingo": getattr(open_flamingo, "__version__", "2.0.1"), "transformers": transformers.__version__,
                "torch": torch.__version__}
    for family, every_n in MODELS:
        name = f"{family}-x{every_n}"
        model, image_processor, tokenizer = build_reference(family, every_n, root, clip, gen)
        d = root / name
        d.mkdir()
        ckpt = trainable_state_dict(model)
        if family == "gpt_neox":  # as in OpenFlamingo-4B: stale causal-mask buffers that loaders must ignore
            for i in range(1, LM_LAYERS, 2):
                ckpt[f"lang_encoder.gpt_neox.layers.{i}.decoder_layer.attention.bias"] = torch.ones(1, 1, 4, 4, dtype=torch.bool)
                ckpt[f"lang_encoder.gpt_neox.layers.{i}.decoder_layer.attention.masked_bias"] = torch.tensor(-1e9)
        torch.save(ckpt, d / "checkpoint.pt")
        (d / "spec.yaml").write_text(
            "vision_encoder: {name: 'local-dir:../vit', pretrained: null}\n"
            f"lang_encoder: ../lm-{family}\ntokenizer: ../lm-{family}\n"
            f"cross_attn_every_n_layers: {every_n}\ncheckpoint: checkpoint.pt\n"
        )
        golden = {"model": name, "family": family, "cross_attn_every_n_layers": every_n, "versions": versions,
                  "settings": SETTINGS, **reference_outputs(model, image_processor, tokenizer, root / "images")}
        (d / "golden.json").write_text(json.dumps(golden, indent=1))
        print(name, "written;", len(ckpt), "checkpoint keys")


if __name__ == "__main__":
    main()
