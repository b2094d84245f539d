"""The device check: one call on a GPU machine says how fast the harness is where it is meant to run.

Models (random weights at the released shapes, built in memory on the device in bf16, nothing downloaded):
  of-9b        the bundled Flamingo: open_clip ViT-L/14 (224 px, 256 patches), MPT-7B (32 layers of width
               4096, 32 heads, vocabulary 50,280 as OpenFlamingo resizes it), gated cross-attention before
               every 4th layer, the released Perceiver (6 layers, 64 latents); the golden byte-level BPE
               tokenizer (captions tokenise to OpenFlamingo's lengths, see bench/decode.py)
  idefics2-8b  Idefics2: SigLIP-so400m (27 layers of width 1152, patch 14), the connector (Perceiver of 3
               layers, 64 latents, 16 heads of 96, 4 KV heads), Mistral-7B (32 layers of width 4096, 8 KV
               heads, MLP 14336, vocabulary 32,003); processor without image splitting, shortest edge 378
               (a 640 x 480 image is 27 x 36 patches, 64 tokens); the bench's BPE tokenizer (bench/idefics.py)
  qwen2.5-vl-7b  Qwen2.5-VL-7B-Instruct's config: the ViT (32 blocks of width 1280, 16 heads, MLP 3420, patch 14,
               2 x 2 merge, temporal patch 2, 112 px windows, full attention in blocks 7, 15, 23, 31, out width
               3584), Qwen2 (28 layers of width 3584, 28 heads, 4 KV heads, MLP 18944, vocabulary 152,064,
               M-RoPE sections 16/24/24, untied output matrix; 8.29B); the processor saved and loaded back
               through the family's load_processor with the preset's max_pixels (512 tokens per image: a
               640 x 480 photo is 391), raw prompt format (the bench tokenizer has no chat template); the model
               built from its config on the device and wrapped in TransformersAdapter and its load-time
               self-check, as load_transformers does after from_pretrained (nothing written but the processor)

Sections (estimated time on one H100 SXM; each has a time guard: a section whose estimate does not fit what is
left of --budget is skipped with a line saying so, and the batch search stops doubling when the next try would
not fit):
  card         the device's name, memory bandwidth and peak dense bf16 FLOP/s (CARDS; --bandwidth / --flops
               override)                                                                            ~0 s
  build        each model in bf16 on the device, then its family's load-time self-check             ~30 s each
  agreement    bf16 against fp32 (the same weights upcast) on a few 4-shot prompts: how many prompts get
               identical ids, the largest log-probability difference of a few captions (``rank``),
               and whether bf16 ids are the same before and after the round trip (they must be)  ~20 s each
  throughput   COCO-shaped captioning (beam 3, <= 20 new tokens, length penalty 0) at 4 and 32 shots, batch 8
               and the largest batch that fits (doubling from 16, OOM caught): samples/s, tokens/s, peak
               memory; at batch 8 also the prefill (a one-new-token generation with the images' features
               cached, so tokenising is included: Idefics2's and Qwen's processors resize every image of a
               prompt) against the FLOP floor (2 x LM weights but the embedding and output matrix x
               prompt tokens / peak FLOP/s), and the decode step (20 new tokens forced, minus the prefill,
               / 19) against the bandwidth floor (the LM and cross-attention weight bytes a step reads /
               bandwidth; the KV cache's reads come on top); the batch search gets what is left of the
               section's 45 s                                                                       ~45 s each
  rank         of-9b only: bench/rank.py's 4-shot ImageNet prompts at the plan's batch ranked over the 1000 class
               names by the project's rank, and over the first 100 by get_rank_classifications' algorithm on
               the project's kernels (time scaled to 1000 by token count): the ratio before OpenFlamingo's own
               per-pass overhead, and whether the two agree                                         ~30 s
  rices        (first) FAISS GPU (where faiss has no GPU: the exact torch search on the GPU, RICES's path
               without faiss; the line says which backend the project picks there) against the exact CPU index at VQAv2's shape: the project indexes images, so 82,783 train images
               searched by 40,504 val images (its questions, 443,757 and 214,354, are expanded from
               those), 768-d CLIP ViT-L/14 features, top-32: identical neighbours (up to float ties), both times
                                                                                                    ~30 s
Total: at most 30 + 30 + 3 x (30 + 20 + 2 x 45) = 480 s of sections; --budget (default 450 s) bounds it (the
guard skips what would not fit), so the whole call, imports and CUDA start included, stays under 8 minutes. The
estimates are not yet measured: no GPU has been available to this project; a run's JSON records each build's
seconds and the total.

--tiny runs the same code on the CPU in seconds: tiny shapes, fp32 against bf16 on the CPU, faiss-cpu against
the exact torch search at a small shape. Output: a markdown table (what the README shows) and, with --out, the
figures as JSON.

    python bench/gpu.py --out results/gpu/<card>.json [--budget 450] [--bandwidth 3.35e12] [--flops 989e12]
    python bench/gpu.py --tiny
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from flamingo_eval.models import GenerationSettings  # noqa: E402
from flamingo_eval.models.flamingo.sizes import OPENFLAMINGO, FlamingoSizes  # noqa: E402
from flamingo_eval.models.transformers.presets import QWEN2_MAX_PIXELS  # noqa: E402
from flamingo_eval.prompt import Prompt  # noqa: E402

SETTINGS = GenerationSettings(num_beams=3, max_new_tokens=20, min_new_tokens=0, length_penalty=0.0)
# captions scored by ``rank`` in both precisions; every word is in both bench tokenizers' vocabularies
OPTIONS = ["a dog on the car", "the cat in the door", "a car with a dog"]
TIE = 1e-5  # cosine similarities closer than this are a tie: exact searches may order them either way

# name pattern (lower case, first match wins) -> card, memory bandwidth (bytes/s), peak dense bf16 FLOP/s
# (vendor datasheet figures; dense, not the 2:4-sparse ones the datasheets also print)
CARDS = [
    ("h100 nvl", "H100 NVL", 3.9e12, 835e12),  # H100 PCIe / NVL FLOP/s: half the datasheets' sparse figures
    ("h100 pcie", "H100 PCIe", 2.0e12, 756e12),
    ("h100", "H100 SXM", 3.35e12, 989e12),
    ("h200", "H200", 4.8e12, 989e12),
    ("a100-sxm4-80gb", "A100 80GB SXM", 2.039e12, 312e12),
    ("a100 80gb pcie", "A100 80GB PCIe", 1.935e12, 312e12),
    ("a100", "A100 40GB", 1.555e12, 312e12),
    ("l40s", "L40S", 0.864e12, 362e12),
]


# ---- shapes ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlamingoShape:
    layers: int = 32
    width: int = 4096
    vocab: int = 50280
    every: int = 4
    max_positions: int = 2048
    vit: str = "ViT-L-14"  # an open_clip model config name, or "tiny"
    sizes: FlamingoSizes = OPENFLAMINGO  # the Perceiver and cross-attention


@dataclass(frozen=True)
class Idefics2Shape:
    layers: int = 32
    width: int = 4096
    kv_heads: int = 8
    mlp: int = 14336
    vocab: int = 32003
    siglip_width: int = 1152
    siglip_mlp: int = 4304
    siglip_layers: int = 27
    siglip_heads: int = 16
    perceiver_heads: int = 16
    perceiver_head_dim: int = 96
    perceiver_kv_heads: int = 4
    latents: int = 64
    perceiver_layers: int = 3
    edge: int = 378


@dataclass(frozen=True)
class QwenVLShape:
    layers: int = 28
    width: int = 3584
    heads: int = 28
    kv_heads: int = 4
    mlp: int = 18944
    vocab: int = 152064
    mrope_section: tuple[int, int, int] = (16, 24, 24)  # halves of head_dim 128 for time, height, width
    vit_layers: int = 32
    vit_width: int = 1280
    vit_mlp: int = 3420
    vit_heads: int = 16
    full_attention: tuple[int, ...] = (7, 15, 23, 31)  # the other blocks attend within 112 px windows
    max_pixels: int = QWEN2_MAX_PIXELS  # the presets' cap: 512 tokens per image


TINY_FLAMINGO = FlamingoShape(layers=2, width=64, vocab=0, every=1, vit="tiny",  # vocab 0: the tokenizer's
                              sizes=FlamingoSizes(num_latents=4, perceiver_depth=1, perceiver_heads=2,
                                                  perceiver_dim_head=16, xattn_heads=2, xattn_dim_head=16))
TINY_IDEFICS2 = Idefics2Shape(layers=2, width=64, kv_heads=1, mlp=128, vocab=0, siglip_width=64, siglip_mlp=128,
                              siglip_layers=1, siglip_heads=1, perceiver_heads=2, perceiver_head_dim=16,
                              perceiver_kv_heads=1, latents=4, perceiver_layers=1, edge=56)
TINY_QWEN = QwenVLShape(layers=2, width=64, heads=2, kv_heads=1, mlp=128, vocab=0, mrope_section=(4, 6, 6),
                        vit_layers=2, vit_width=64, vit_mlp=128, vit_heads=1, full_attention=(1,), max_pixels=112 * 112)

MODELS = ("of-9b", "idefics2-8b", "qwen2.5-vl-7b")

# VQAv2 as the project's RICES searches it (bench/rices.py): images, not questions
POOL_IMAGES, QUERY_IMAGES, FEATURE_DIM, DEPTH = 82_783, 40_504, 768, 32


@dataclass(frozen=True)
class Plan:
    """What the check runs, and each section's expected seconds (on one H100 SXM for the full plan): a section
    runs only when its estimate fits what is left of the budget; the batch search stays within its section's."""

    shots: tuple[int, ...] = (4, 32)
    batch: int = 8
    max_batch: int = 512
    agreement_prompts: int = 4
    rices: tuple[int, int, int] = (POOL_IMAGES, QUERY_IMAGES, FEATURE_DIM)
    build_s: float = 30.0
    agreement_s: float = 20.0
    throughput_s: float = 45.0
    rices_s: float = 30.0
    rank: tuple[int, int] = (1000, 100)  # ImageNet classes the project ranks; of them, the reference algorithm's
    rank_s: float = 30.0


FULL = Plan()
# the same sections at sizes a shared CPU core runs in seconds; generous estimates, so no guard trips in CI
TINY = Plan(shots=(1, 2), batch=2, max_batch=4, agreement_prompts=2, rices=(2000, 500, 64), build_s=1.0,
            agreement_s=1.0, throughput_s=60.0, rices_s=1.0, rank=(30, 10), rank_s=1.0)


@functools.cache
def sibling(name: str):
    """Another bench script as a module (bench/ is not a package), loaded once."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the device -------------------------------------------------------------------------------------------
def detect_card(device: str, bandwidth: float | None, flops: float | None) -> dict:
    """The card's name and the two figures the floors need; an unknown card needs --bandwidth and --flops."""
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"CPU ({platform.processor() or 'cpu'})"
    known = next(((card, bw, fl) for pattern, card, bw, fl in CARDS if pattern in name.lower()), (None, None, None))
    return {"device_name": name, "card": known[0], "bandwidth": bandwidth or known[1], "flops": flops or known[2],
            "figures": "given" if bandwidth or flops else ("table" if known[0] else "unknown")}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        gc.collect()  # what a caught OOM left referenced
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: str) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None


def out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def timed(device: str, work: Callable):
    """(seconds, result) with the device synchronised on both sides, so queued kernels are counted."""
    sync(device)
    start = time.perf_counter()
    out = work()
    sync(device)
    return time.perf_counter() - start, out


class Budget:
    """Wall-clock guard: a section runs only when its estimate fits what is left."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, section: str, estimate: float) -> bool:
        if estimate <= self.left():
            return True
        self.skipped.append(section)
        print(f"  skipped {section}: time guard ({estimate:.0f} s estimated, {max(0.0, self.left()):.0f} s left)",
              flush=True)
        return False


@contextmanager
def default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


# ---- random weights ------------------------------------------------------------------------------------------
def randomize(module: torch.nn.Module, seed: int, embeddings: tuple[str, ...], embed_std: float,
              qk_sharpen: float = 1.0) -> None:
    """On the module's device (a 7B model's normals are not drawn on the CPU): unit-scale linears, non-identity
    norms, gates in +-[0.4, 1] (every component moves the output), as bench/decode.py and bench/idefics.py;
    vision and Perceiver query/key projections ``qk_sharpen`` x, so their attention is peaked as a trained one."""
    gen = None
    with torch.no_grad():
        for name, p in module.named_parameters():
            if gen is None:
                gen = torch.Generator(device=p.device).manual_seed(seed)
            draw = lambda p=p, gen=gen: torch.randn(p.shape, generator=gen, device=p.device)  # noqa: E731
            if name.endswith(("attn_gate", "ff_gate")) or "alpha_" in name:
                u = torch.rand(p.shape, generator=gen, device=p.device)
                p.copy_((u * 0.6 + 0.4) * torch.sign(draw()))
            elif p.ndim == 0:
                continue
            elif p.ndim == 1:
                p.copy_(1.0 + 0.2 * draw() if name.endswith("weight") else 0.1 * draw())
            elif any(e in name for e in embeddings):
                p.copy_(embed_std * draw())
            elif any(k in name for k in ("vision", "perceiver")) and name.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(qk_sharpen * draw() / math.sqrt(p.shape[1]))
            else:
                p.copy_(draw() / math.sqrt(p[0].numel()))


def clip_config(vit: str) -> dict:
    import open_clip

    if vit == "tiny":
        return sibling("decode").vision_config(width=64, layers=1)
    return open_clip.get_model_config(vit)


def build_of9b(shape: FlamingoShape, device: str, dtype: torch.dtype):
    """A FlamingoAdapter over a random-weight Flamingo at ``shape``, built directly on ``device`` in ``dtype``."""
    import open_clip
    from transformers import MptConfig

    from flamingo_eval.models.flamingo.adapter import FlamingoAdapter
    from flamingo_eval.models.flamingo.model import Flamingo
    from flamingo_eval.models.flamingo.presets import ModelSpec
    from flamingo_eval.models.flamingo.selfcheck import check_fast_path
    from flamingo_eval.models.flamingo.tokens import END_OF_CHUNK, IMAGE, load_tokenizer
    from flamingo_eval.models.lm.config import from_hf
    from flamingo_eval.models.lm.decoder import DecoderLM

    decode = sibling("decode")
    tokenizer = load_tokenizer(str(decode.GOLDEN_TOKENIZER))
    vocab = shape.vocab or len(tokenizer)
    mpt = MptConfig(d_model=shape.width, n_heads=shape.width // 128 if shape.width >= 1024 else shape.width // 32,
                    n_layers=shape.layers, expansion_ratio=4, max_seq_len=shape.max_positions, vocab_size=vocab)
    cfg = clip_config(shape.vit)
    with torch.device(device), default_dtype(dtype):
        clip = open_clip.model.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"],
                                    quick_gelu=cfg.get("quick_gelu", True))
        visual = clip.visual
        del clip
        lm = DecoderLM(from_hf(mpt.to_dict(), "random MPT"))
        model = Flamingo(visual, lm, shape.every, tokenizer.convert_tokens_to_ids(IMAGE),
                         tokenizer.convert_tokens_to_ids(END_OF_CHUNK), sizes=shape.sizes)
    randomize(model, seed=0, embeddings=("embed", "wte"), embed_std=0.35)
    with torch.no_grad():
        emb = lm.embed.weight  # tied: also the output rows
        emb[model.eoc_token_id] *= decode.EOC_BOOST  # captions end at varied lengths, as bench/decode.py
    model.eval()
    check_fast_path(model)
    transform = open_clip.image_transform(224, is_train=False, mean=decode.OPENAI_MEAN, std=decode.OPENAI_STD)
    spec = ModelSpec("of-9b (random weights)", "random", "golden", shape.every, "none", sizes=shape.sizes)
    precision = {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]
    return FlamingoAdapter(model, tokenizer, transform, spec, "none", device, precision)


def build_idefics2(shape: Idefics2Shape, device: str, dtype: torch.dtype):
    """An HFAdapter over a random-weight Idefics2 at ``shape``, built directly on ``device`` in ``dtype``."""
    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    from flamingo_eval.models.hf.adapter import HFAdapter
    from flamingo_eval.models.hf.spec import HFSpec
    from flamingo_eval.models.idefics2.engine import ImageTokenEngine

    idefics = sibling("idefics")
    tok = idefics.build_tokenizer(1000)
    vocab = shape.vocab or len(tok)
    config = Idefics2Config(
        image_token_id=tok.convert_tokens_to_ids("<image>"), tie_word_embeddings=False,
        text_config={"model_type": "mistral", "vocab_size": vocab, "hidden_size": shape.width,
                     "intermediate_size": shape.mlp, "num_hidden_layers": shape.layers,
                     "num_attention_heads": shape.width // 128 if shape.width >= 1024 else shape.width // 32,
                     "num_key_value_heads": shape.kv_heads, "max_position_embeddings": 32768,
                     "sliding_window": 4096, "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
                     "eos_token_id": tok.eos_token_id},
        vision_config={"hidden_size": shape.siglip_width, "intermediate_size": shape.siglip_mlp,
                       "num_hidden_layers": shape.siglip_layers, "num_attention_heads": shape.siglip_heads,
                       "image_size": 980, "patch_size": 14},
        perceiver_config={"hidden_size": shape.width, "resampler_n_latents": shape.latents,
                          "resampler_depth": shape.perceiver_layers,
                          "resampler_n_heads": shape.perceiver_heads, "resampler_head_dim": shape.perceiver_head_dim,
                          "num_key_value_heads": shape.perceiver_kv_heads},
    )
    with torch.device(device), default_dtype(dtype):
        hf = Idefics2ForConditionalGeneration(config).eval()
    randomize(hf, seed=0, embeddings=("embed_tokens",), embed_std=1.0, qk_sharpen=idefics.QK_SHARPEN)
    idefics.boost_stops(hf.lm_head.weight, tok, idefics.STOP_BOOST["idefics2"])
    images = Idefics2ImageProcessor(size={"shortest_edge": shape.edge, "longest_edge": 980}, do_image_splitting=False)
    processor = Idefics2Processor(image_processor=images, tokenizer=tok, image_seq_len=shape.latents)
    engine = ImageTokenEngine.build(hf, processor, "idefics2-8b (random weights)", device, None, dtype)
    spec = HFSpec("idefics2-8b (random weights)", "idefics2", "random")
    precision = {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]
    return HFAdapter(spec, engine, processor, engine.device, precision)


def qwen_tokenizer():
    """bench/idefics.py's offline BPE with Qwen's special tokens appended, as bench/transformers_family.py."""
    tok = sibling("idefics").build_tokenizer(1000)
    tok.add_special_tokens({"additional_special_tokens": sibling("transformers_family").QWEN_SPECIAL})
    tok.eos_token = "<|im_end|>"
    return tok


def qwen2_5_vl_config(shape: QwenVLShape, tok):
    """Qwen2.5-VL-7B-Instruct's config.json at the default ``shape``, with the bench tokenizer's special ids."""
    import transformers as tf

    special = sibling("transformers_family").QWEN_SPECIAL
    ids = dict(zip(special, tok.convert_tokens_to_ids(special), strict=True))
    return tf.Qwen2_5_VLConfig(
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
        text_config=dict(vocab_size=shape.vocab or len(tok), hidden_size=shape.width, intermediate_size=shape.mlp,
                         num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                         num_key_value_heads=shape.kv_heads, max_position_embeddings=128000, rms_norm_eps=1e-6,
                         bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                                     "mrope_section": list(shape.mrope_section)}),
        vision_config=dict(depth=shape.vit_layers, hidden_size=shape.vit_width, intermediate_size=shape.vit_mlp,
                           num_heads=shape.vit_heads, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                           window_size=112, fullatt_block_indexes=list(shape.full_attention),
                           out_hidden_size=shape.width, tokens_per_second=2),
    )


def build_qwen2_5_vl(shape: QwenVLShape, folder: Path, device: str, dtype: torch.dtype):
    """A TransformersAdapter over a random-weight Qwen2.5-VL at ``shape``, built directly on ``device`` in
    ``dtype``: the processor goes through the family's loader from ``folder``, the model from its config (an
    8B checkpoint is not written to disk to be read back), then the adapter and its self-check as
    load_transformers runs them."""
    import transformers as tf

    from flamingo_eval.models.transformers.adapter import TransformersAdapter, load_processor
    from flamingo_eval.models.transformers.presets import TRANSFORMERS_PRESETS
    from flamingo_eval.models.transformers.selfcheck import check_cached_decoding

    tok = qwen_tokenizer()
    config = qwen2_5_vl_config(shape, tok)
    pixels = dict(min_pixels=56 * 56, max_pixels=12845056)  # the checkpoint's; the spec's max_pixels caps it
    tf.Qwen2_5_VLProcessor(image_processor=tf.Qwen2VLImageProcessor(**pixels), tokenizer=tok,
                           video_processor=tf.Qwen2VLVideoProcessor(**pixels)).save_pretrained(folder)
    spec = replace(TRANSFORMERS_PRESETS["qwen2.5-vl-7b"], name="qwen2.5-vl-7b (random weights)", model=str(folder),
                   prompt_format="raw", processor={"max_pixels": shape.max_pixels})
    processor = load_processor(spec)
    with torch.device(device), default_dtype(dtype):
        hf = tf.Qwen2_5_VLForConditionalGeneration(config).eval()
    randomize(hf, seed=0, embeddings=("embed_tokens",), embed_std=1.0)
    sibling("idefics").boost_stops(hf.lm_head.weight, tok, sibling("transformers_family").STOP_BOOST["qwen2_5_vl"])
    hf.generation_config.eos_token_id = [config.text_config.eos_token_id, tok.convert_tokens_to_ids("<|endoftext|>")]
    precision = {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]
    adapter = TransformersAdapter(spec, hf, processor, precision)
    check_cached_decoding(adapter)
    return adapter


def lm_parts(model) -> tuple[list[torch.nn.Parameter], torch.Tensor, torch.Tensor | None]:
    """The weights a decode step reaches (the LM's, cross-attention's, the output matrix), the input embedding
    and the output matrix (None where tied): the project's own models (``.lm``) or a transformers one."""
    if hasattr(model, "lm"):
        lm = model.lm
        weights = list(lm.parameters()) + (list(model.xattn.parameters()) if hasattr(model, "xattn") else [])
        return weights, lm.embed.weight, (lm.head.weight if lm.head is not None else None)
    text, head = model.get_decoder(), model.get_output_embeddings().weight
    embed = model.get_input_embeddings().weight
    return list(text.parameters()) + [head], embed, (None if head is embed else head)


class Bench:
    """One model under test: its adapter, how its prompts are made, which weights bound decode and prefill."""

    def __init__(self, name: str, adapter, workload: Callable[[int, int], list[Prompt]]):
        from flamingo_eval.models.transformers.adapter import TransformersAdapter

        self.name, self.adapter, self.workload = name, adapter, workload
        self.transformers_family = isinstance(adapter, TransformersAdapter)
        self.model = adapter.model if hasattr(adapter, "model") else adapter.engine.model
        weights, embed, head = lm_parts(self.model)
        size = lambda ps: sum(p.numel() * p.element_size() for p in ps)  # noqa: E731
        # a decode step reads every LM and cross-attention weight once, the output matrix included, but only
        # rows of an untied embedding; a prefill's matmuls are all but the embedding and the output matrix
        # (logits of the last position only)
        self.decode_bytes = size(weights) - (size([embed]) if head is not None else 0)
        self.matmul_params = sum(p.numel() for p in weights) - embed.numel() - (head.numel() if head is not None else 0)
        self.params = sum(p.numel() for p in self.model.parameters())

    def clear_images(self) -> None:
        adapter = self.adapter
        if self.transformers_family:
            if adapter.features is not None:  # an architecture whose image features it caches
                adapter.features.cache.clear()
        else:
            (adapter.latent_cache if hasattr(adapter, "latent_cache") else adapter.features).clear()

    def prompt_tokens(self, prompts: list[Prompt]) -> int:
        """Real (unpadded) prompt tokens, as the adapter tokenises them (images' tokens included)."""
        if hasattr(self.adapter, "_tokenize"):
            return sum(map(len, self.adapter._tokenize(prompts)))
        if self.transformers_family:  # its processor on the rendered text, as the adapter calls it
            from flamingo_eval.models.transformers.inputs import encode

            return sum(int(encode(self.adapter.processor, self.adapter.render(p),
                                  [im.load() for c in p for im in c.images])["input_ids"].shape[1]) for p in prompts)
        engine = self.adapter.engine
        return sum(len(engine.encode_prompt(p, [c.image.load() for c in p if c.image is not None])[0]) for p in prompts)

    def to(self, dtype: torch.dtype) -> None:
        """Cast the weights (bf16 -> fp32 -> bf16 is exact) and drop image features of the old precision. Buffers
        built in fp32 stay so, as a bf16 load keeps them (Qwen's rotary frequencies): a round trip through bf16
        would round them and move every position."""
        kept = [(m, name, b) for m in self.model.modules() for name, b in m.named_buffers(recurse=False)
                if b.dtype == torch.float32]
        self.model.to(dtype)
        for module, name, buffer in kept:
            setattr(module, name, buffer)  # a registered buffer's name: the buffer is replaced
        self.clear_images()


def flamingo_workload(root: Path) -> Callable[[int, int], list[Prompt]]:
    decode = sibling("decode")
    return lambda queries, shots: decode.workload(root, queries, shots, seed=1)


def caption_workload(queries: int, shots: int) -> list[Prompt]:
    """bench/idefics.py's captioning prompts (PIL images in memory), as bench/transformers_family.py runs them."""
    return sibling("idefics").workload(queries, shots, "caption", seed=1)


# ---- sections --------------------------------------------------------------------------------------------
def agreement(bench: Bench, device: str, plan: Plan) -> dict:
    """bf16 against the same weights in fp32 on a few prompts at the plan's first shot count."""
    prompts = bench.workload(plan.agreement_prompts, plan.shots[0])
    adapter = bench.adapter
    bench.clear_images()
    bf16_ids, bf16_lp = adapter.generate_ids(prompts, SETTINGS), adapter.rank(prompts, OPTIONS)
    bench.to(torch.float32)
    fp32_ids, fp32_lp = adapter.generate_ids(prompts, SETTINGS), adapter.rank(prompts, OPTIONS)
    bench.to(torch.bfloat16)
    again = adapter.generate_ids(prompts, SETTINGS)
    reset_peak(device)
    diff = max(abs(a - b) for ra, rb in zip(bf16_lp, fp32_lp, strict=True) for a, b in zip(ra, rb, strict=True))
    return {"prompts": len(prompts), "ids_agree": sum(a == b for a, b in zip(bf16_ids, fp32_ids, strict=True)),
            "max_logprob_diff": diff, "bf16_repeatable": again == bf16_ids}


def imagenet_rank(bench: Bench, device: str, plan: Plan) -> dict:
    """bench/rank.py's workload (4-shot ImageNet prompts, the plan's batch) ranked over the first C class names by
    the project's ``rank`` (token trees), and by get_rank_classifications' algorithm (each class's tokens one
    pass at a time over the cached prompt) on the project's kernels for the first c of them, its time scaled to
    C by the classes' token count: OpenFlamingo's own code adds its per-pass overhead to that."""
    rank = sibling("rank")
    classes, measured = plan.rank
    names = rank.class_names(classes)
    adapter = bench.adapter
    with tempfile.TemporaryDirectory(prefix="bench-gpu-rank-") as tmp:
        adapter.rank(rank.workload(Path(tmp), names, 1, 4, "w", seed=1), names[:2])  # kernels, allocator
        prompts = rank.workload(Path(tmp), names, plan.batch, 4, "q")
        bench.clear_images()
        reset_peak(device)
        ours_s, ours = timed(device, lambda: adapter.rank(prompts, names))
        peak = peak_bytes(device)
        bench.clear_images()
        ref_s, ref = timed(device, lambda: rank.reference_rank(adapter, prompts, names[:measured]))
    lengths = adapter.option_lengths(names)
    scale = sum(lengths) / sum(lengths[:measured])
    diff = max(abs(a - b) / n for r, q in zip(ours, ref, strict=True)
               for a, b, n in zip(r[:measured], q, lengths[:measured], strict=True))
    top1 = lambda rows: [max(range(measured), key=lambda j: r[j] / lengths[j]) for r in rows]  # noqa: E731
    return {"classes": classes, "batch": plan.batch, "shots": 4, "seconds": ours_s, "peak_bytes": peak,
            "reference_classes": measured, "reference_seconds": ref_s, "reference_scaled_s": ref_s * scale,
            "ratio": ref_s * scale / ours_s, "max_mean_diff": diff, "top1_same": top1(ours) == top1(ref)}


def generation_run(bench: Bench, device: str, prompts: list[Prompt], settings: GenerationSettings,
                   cold: bool = True) -> dict:
    if cold:
        bench.clear_images()
    reset_peak(device)
    seconds, out = timed(device, lambda: bench.adapter.generate_ids(prompts, settings))
    return {"batch": len(prompts), "seconds": seconds, "samples_s": len(prompts) / seconds,
            "tokens_s": sum(map(len, out)) / seconds, "peak_bytes": peak_bytes(device)}


def throughput(bench: Bench, device: str, card: dict, shots: int, budget: Budget, plan: Plan) -> dict:
    """The plan's batch (with the prefill / decode split), then doubling until OOM, the plan's largest batch
    or the time guard (the next try, about twice the last, must end within the section's estimate)."""
    until = time.perf_counter() + min(plan.throughput_s, budget.left())
    prompts = bench.workload(plan.batch, shots)
    row = {"shots": shots, "prompt_tokens": bench.prompt_tokens(prompts) / len(prompts)}
    row["base"] = generation_run(bench, device, prompts, SETTINGS)
    # images now cached: one new token is the prefill; 20 forced new tokens add 19 decode steps
    prefill = generation_run(bench, device, prompts, replace(SETTINGS, max_new_tokens=1), cold=False)
    full = generation_run(bench, device, prompts, replace(SETTINGS, min_new_tokens=SETTINGS.max_new_tokens), cold=False)
    tokens = row["prompt_tokens"] * len(prompts)
    row["prefill_s"] = prefill["seconds"]
    row["prefill_tokens_s"] = tokens / prefill["seconds"]
    row["step_s"] = max(0.0, full["seconds"] - prefill["seconds"]) / (SETTINGS.max_new_tokens - 1)
    if card["flops"]:
        row["prefill_floor_s"] = 2 * bench.matmul_params * tokens / card["flops"]
    if card["bandwidth"]:
        row["step_floor_s"] = bench.decode_bytes / card["bandwidth"]
    largest, batch, last = None, 2 * plan.batch, row["base"]["seconds"]
    while batch <= plan.max_batch and time.perf_counter() + 2.5 * last < until:
        start = time.perf_counter()
        try:
            run = generation_run(bench, device, bench.workload(batch, shots), SETTINGS)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not out_of_memory(e):
                raise
            row["oom_at"] = batch
            break
        finally:
            reset_peak(device)
        largest, last, batch = run, time.perf_counter() - start, batch * 2  # making the prompts included
    else:
        row["stopped"] = "max batch" if batch > plan.max_batch else "time guard"
    row["largest"] = largest
    return row


def same_neighbours(ids_a: np.ndarray, sims_a: np.ndarray, ids_b: np.ndarray, sims_b: np.ndarray) -> dict:
    """Rows with identical ids, rows that differ only by the order or choice of tied neighbours, the rest.
    A tie: the similarities agree position by position, every neighbour both found has the same similarity in
    both, and a neighbour only one found ties the k-th similarity."""
    exact = (ids_a == ids_b).all(axis=1)
    close = np.abs(sims_a - sims_b).max(axis=1) <= TIE
    ties = 0
    for r in np.flatnonzero(~exact & close):
        in_a = dict(zip(ids_a[r].tolist(), sims_a[r].tolist(), strict=True))
        in_b = dict(zip(ids_b[r].tolist(), sims_b[r].tolist(), strict=True))
        both = in_a.keys() & in_b.keys()
        boundary = float(sims_a[r, -1])
        ties += all(abs(in_a[i] - in_b[i]) <= TIE for i in both) and all(
            abs(s - boundary) <= TIE for i, s in (*in_a.items(), *in_b.items()) if i not in both)
    return {"rows": len(ids_a), "identical": int(exact.sum()), "ties": int(ties),
            "differ": int(len(ids_a) - exact.sum() - ties)}


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rices(device: str, pool: int, queries: int, dim: int) -> dict:
    """The exact CPU index against the GPU searches (faiss-gpu where faiss has GPU support; the exact torch
    search on the GPU always); on the CPU (--tiny), faiss-cpu against torch. Each time: index build + search."""
    from flamingo_eval.demos.index import FlatIPIndex, choose_backend, faiss_has_gpu

    try:
        import faiss
    except ImportError:
        faiss = None
    rng = np.random.default_rng(0)
    base, query = unit_rows(rng, pool, dim), unit_rows(rng, queries, dim)
    reference = "faiss-cpu" if faiss is not None else "torch"
    out = {"pool": pool, "queries": queries, "dim": dim, "k": DEPTH, "reference": f"{reference} (cpu)",
           "project_choice": choose_backend(device), "faiss_gpu": bool(faiss is not None and faiss_has_gpu(faiss))}
    search = lambda backend, on: FlatIPIndex(base, backend=backend, device=on).search(query, DEPTH)  # noqa: E731
    out["reference_s"], (sims, ids) = timed("cpu", lambda: search(reference, "cpu"))
    others = ["torch"] if device.startswith("cuda") or reference == "faiss-cpu" else []
    if device.startswith("cuda") and out["faiss_gpu"]:
        others.insert(0, "faiss-gpu")
    out["against"] = []
    for backend in others:
        FlatIPIndex(base[:64], backend=backend, device=device).search(query[:8], DEPTH)  # warm-up: kernels, handles
        seconds, (s, i) = timed(device, lambda backend=backend: search(backend, device))
        out["against"].append({"backend": f"{backend} ({device})", "seconds": seconds,
                               **same_neighbours(ids, sims, i, s)})
    return out


# ---- report ------------------------------------------------------------------------------------------------
def gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.3g}"


def ms(s: float | None) -> str:
    return "-" if s is None else f"{1000 * s:.1f}"


def markdown(report: dict) -> str:
    card = report["card"]
    bw = f"{card['bandwidth'] / 1e12:.2f} TB/s" if card["bandwidth"] else "unknown bandwidth"
    fl = f"{card['flops'] / 1e12:.0f} TFLOP/s bf16" if card["flops"] else "unknown peak FLOP/s"
    lines = [f"Device: {card['device_name']} ({card['card'] or 'not in the table'}: {bw}, {fl}; figures: "
             f"{card['figures']}); {report['precision']}; torch {report['torch']}", "",
             "| model | shots | prompt tok | new tok | batch | samples/s | tokens/s | peak GiB | largest batch | "
             "samples/s | tokens/s | peak GiB | prefill tok/s | prefill ms (floor) | decode step ms (floor) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in report["models"]:
        for r in m.get("throughput", []):
            b, big = r["base"], r["largest"]
            why = f" (OOM at {r['oom_at']})" if "oom_at" in r else (f" ({r['stopped']})" if "stopped" in r else "")
            largest = (f"{big['batch']}{why} | {big['samples_s']:.2f} | {big['tokens_s']:.1f} | {gib(big['peak_bytes'])}"
                       if big else f"-{why} | - | - | -")
            lines.append(
                f"| {m['name']} | {r['shots']} | {r['prompt_tokens']:.0f} | {b['tokens_s'] / b['samples_s']:.1f} | "
                f"{b['batch']} | {b['samples_s']:.2f} | "
                f"{b['tokens_s']:.1f} | {gib(b['peak_bytes'])} | {largest} | {r['prefill_tokens_s']:.0f} | "
                f"{ms(r['prefill_s'])} ({ms(r.get('prefill_floor_s'))}) | {ms(r['step_s'])} ({ms(r.get('step_floor_s'))}) |")
    lines.append("(new tok: mean new tokens per answer, which with random weights is not a real caption's length: "
                 "samples/s scales with it, tokens/s much less; samples/s and tokens/s: whole generate "
                 "calls, images encoded cold; prefill: a one-new-token "
                 "generation, images cached; decode step: 20 forced tokens less the prefill, / 19; floors in "
                 "brackets: 2 x matmul weights x prompt tokens / peak FLOP/s, weight bytes / bandwidth)")
    lines += ["", "| model | params | decode weights GiB | bf16 vs fp32: ids agree | max abs log-prob diff | "
              "bf16 repeatable |", "|---|---:|---:|---:|---:|---|"]
    for m in report["models"]:
        a = m.get("agreement")
        agree = (f"{a['ids_agree']}/{a['prompts']} | {a['max_logprob_diff']:.3g} | "
                 f"{'yes' if a['bf16_repeatable'] else 'NO'} |") if a else "- | - | - |"
        lines.append(f"| {m['name']} | {m['params'] / 1e9:.3g}B | {gib(m['decode_bytes'])} | {agree}")
    for m in report["models"]:
        k = m.get("rank")
        if k:
            lines += ["", f"ImageNet rank, {m['name']}: {k['classes']} classes, batch {k['batch']}, {k['shots']} shots: "
                      f"project {k['seconds']:.2f} s (peak {gib(k['peak_bytes'])}{' GiB' if k['peak_bytes'] else ''}); "
                      f"get_rank_classifications' "
                      f"algorithm on the project's kernels {k['reference_seconds']:.2f} s for {k['reference_classes']} "
                      f"classes, {k['reference_scaled_s']:.1f} s scaled to {k['classes']}: {k['ratio']:.1f}x; "
                      f"means agree to {k['max_mean_diff']:.2g}, top-1 over those classes "
                      f"{'same' if k['top1_same'] else 'DIFFERS'}"]
    r = report.get("rices")
    if r:
        lines += ["", f"RICES search, {r['queries']:,} x {r['pool']:,} x {r['dim']}-d, top-{r['k']}: "
                  f"{r['reference']} {r['reference_s']:.2f} s; faiss GPU: {'yes' if r['faiss_gpu'] else 'no'}; "
                  f"the project picks {r['project_choice']} here"]
        for a in r["against"]:
            lines.append(f"  {a['backend']}: {a['seconds']:.2f} s; neighbours: {a['identical']:,} rows identical, "
                         f"{a['ties']:,} differ only by ties, {a['differ']:,} differ")
    if report["skipped"]:
        lines.append("skipped by the time guard: " + ", ".join(report["skipped"]))
    return "\n".join(lines)


# ---- main ----------------------------------------------------------------------------------------------------
def attempt(label: str, work: Callable, device: str, budget: Budget, recover: Callable | None = None):
    """``work()``, or None when the device runs out of memory: the section is listed as skipped, the rest runs."""
    try:
        return work()
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
    budget.skipped.append(f"{label} (out of memory)")
    print(f"  {label}: out of memory", flush=True)
    if recover:
        recover()
    reset_peak(device)
    return None


def run_model(name: str, make: Callable[[], Bench], report: dict, device: str, card: dict, budget: Budget,
              plan: Plan) -> None:
    if not budget.allows(f"{name} build", plan.build_s):
        return
    seconds, bench = timed(device, make)
    entry = {"name": name, "build_s": seconds, "params": bench.params, "decode_bytes": bench.decode_bytes,
             "throughput": []}
    report["models"].append(entry)
    print(f"  {name}: built in {seconds:.1f} s, {bench.params / 1e9:.3g}B parameters", flush=True)
    warm = bench.workload(1, 4)
    bench.adapter.generate_ids(warm, replace(SETTINGS, max_new_tokens=2))  # kernels, allocator
    if budget.allows(f"{name} agreement", plan.agreement_s):
        # fp32 needs twice bf16's memory: where it does not fit, the weights go back to bf16
        result = attempt(f"{name} agreement", lambda: agreement(bench, device, plan), device, budget,
                         recover=lambda: bench.to(torch.bfloat16))
        if result:
            entry["agreement"] = result
            print(f"  {name} agreement: {result}", flush=True)
    if hasattr(bench.adapter, "latent_cache") and budget.allows(f"{name} ImageNet rank", plan.rank_s):
        result = attempt(f"{name} ImageNet rank", lambda: imagenet_rank(bench, device, plan), device, budget)
        if result:
            entry["rank"] = result
            print(f"  {name} ImageNet rank: {json.dumps(result)}", flush=True)
    for shots in plan.shots:
        if budget.allows(f"{name} {shots}-shot throughput", plan.throughput_s):
            row = attempt(f"{name} {shots}-shot throughput at batch {plan.batch}",
                          lambda shots=shots: throughput(bench, device, card, shots, budget, plan), device, budget)
            if row:
                entry["throughput"].append(row)
                print(f"  {name} {shots} shots: {json.dumps(row)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU: the same code in seconds")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("--device", default=None, help="default: cuda (--tiny: cpu)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check (time guards)")
    ap.add_argument("--max-batch", type=int, default=None, help="largest batch the search tries (default 512; tiny 4)")
    ap.add_argument("--bandwidth", type=float, help="memory bandwidth in bytes/s (overrides the card table)")
    ap.add_argument("--flops", type=float, help="peak dense bf16 FLOP/s (overrides the card table)")
    ap.add_argument("--no-rices", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; tiny: 1)")
    args = ap.parse_args(argv)
    device = args.device or ("cpu" if args.tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device visible (the full shapes need a GPU); --tiny runs the CPU check",
              file=sys.stderr)
        return 2
    if args.threads or args.tiny:
        torch.set_num_threads(args.threads or 1)
    plan = TINY if args.tiny else FULL
    if args.max_batch:
        plan = replace(plan, max_batch=args.max_batch)
    import transformers

    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    card = detect_card(device, args.bandwidth, args.flops)
    budget = Budget(args.budget)
    report = {"precision": "bf16", "torch": torch.__version__, "fp32_matmul": torch.get_float32_matmul_precision(),
              "tiny": args.tiny, "card": card, "models": [], "skipped": budget.skipped}
    print(f"device check: {card['device_name']}, budget {args.budget:.0f} s{' (tiny shapes)' if args.tiny else ''}",
          flush=True)
    if not args.no_rices and budget.allows("rices", plan.rices_s):  # first: small, and no model holds the GPU
        report["rices"] = rices(device, *plan.rices)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        makers = {
            "of-9b": lambda: Bench("of-9b", build_of9b(TINY_FLAMINGO if args.tiny else FlamingoShape(), device,
                                                          torch.bfloat16), flamingo_workload(Path(tmp))),
            "idefics2-8b": lambda: Bench("idefics2-8b", build_idefics2(TINY_IDEFICS2 if args.tiny else Idefics2Shape(),
                                                                         device, torch.bfloat16), caption_workload),
            "qwen2.5-vl-7b": lambda: Bench("qwen2.5-vl-7b", build_qwen2_5_vl(TINY_QWEN if args.tiny else QwenVLShape(),
                                                                             Path(tmp) / "qwen2.5-vl", device,
                                                                             torch.bfloat16), caption_workload),
        }
        for name in args.models:
            run_model(name, makers[name], report, device, card, budget, plan)
            reset_peak(device)  # the model is gone with run_model's frame: its memory goes back before the next
    report["seconds"] = time.perf_counter() - budget.start
    table = markdown(report)
    print(table)
    print(f"total {report['seconds']:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**report, "table": table}, indent=1, default=str) + "\n")
        print(f"wrote {args.out}")
    differ = [a for a in (report.get("rices") or {}).get("against", []) if a["differ"]]
    unrepeatable = [m["name"] for m in report["models"] if m.get("agreement") and not m["agreement"]["bf16_repeatable"]]
    return 1 if differ or unrepeatable else 0


if __name__ == "__main__":
    raise SystemExit(main())

