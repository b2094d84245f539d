"""Few-shot captioning decode throughput: the project vs a naive uncached decoder vs OpenFlamingo 2.0.1.

Model (random weights, real shapes at modest size): an MPT LM, 8 layers of width 512 (8 heads, MLP x4),
gated cross-attention before every 4th layer (OpenFlamingo-9B's density) with non-zero gates; an open_clip
ViT at 224 px / patch 14 (256 patch tokens, as ViT-L/14) of width 256 and 2 layers; the released
Perceiver shape (6 layers, 64 latents). Tokenizer: the golden byte-level BPE (a small vocabulary, so the
LM head is as small a share of the work as in the 9B model).

Workload: OpenFlamingo's captioning prompts and generation settings (beam 3, at most 20 new tokens,
length_penalty 0, stop at <|endofchunk|>, batch 8, left padding) at 0, 4 and 32 shots (0 = two text-only
demonstrations). Demonstration images come from a pool scaled down from a real run: OpenFlamingo draws
demonstrations for 5000 test items from a 2048-item query set, so the pool here has N x 2048 / 5000
images and each serves as often as in a real run (about 78 times at 32 shots, scaled to N). Every query
has its own query image. Each system starts cold (no cached image) for each shot count.

Systems, one after another in this process (the reference in a subprocess with its own python):
  project    FlamingoAdapter.generate_ids (prefill once per query, cached KV, latent cache)
  naive      uncached decoding by definition (full forward over the whole sequence every step), on fewer
             queries: it is slow
  reference  open_flamingo 2.0.1 Flamingo.generate (HF generate) on the same saved weights, as its
             evaluation calls it; run when /work/refvenv or $OPENFLAMINGO_VENV has it, else skipped

Columns: samples/s = queries per second; tokens/s = new tokens in the returned outputs per second; "vs"
columns are samples/s ratios. Every system runs on the same number of torch threads (default 1: on the
2 shared cores of the dev machine more threads oversubscribe and timings become noise).

    python bench/decode.py [--queries 8] [--shots 0 4 32] [--naive-queries 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flamingo_eval.models import GenerationSettings  # noqa: E402
from flamingo_eval.models.flamingo.adapter import load_flamingo  # noqa: E402
from flamingo_eval.models.flamingo.checkpoint import to_openflamingo_keys  # noqa: E402
from flamingo_eval.models.flamingo.model import Flamingo  # noqa: E402
from flamingo_eval.models.flamingo.render import render  # noqa: E402
from flamingo_eval.models.flamingo.tokens import load_tokenizer  # noqa: E402
from flamingo_eval.models.flamingo.uncached import generate_ids_uncached  # noqa: E402
from flamingo_eval.models.flamingo.vision import load_vision  # noqa: E402
from flamingo_eval.models.lm.load import load_lm  # noqa: E402
from flamingo_eval.prompt import Chunk, Image, Prompt  # noqa: E402

GOLDEN_TOKENIZER = REPO / "tests" / "golden" / "flamingo" / "lm-mpt"
REFERENCE_SCRIPT = Path(__file__).resolve().parent / "_openflamingo_reference.py"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
REAL_QUERY_SET, REAL_TEST_ITEMS = 2048, 5000
SETTINGS = GenerationSettings(num_beams=3, max_new_tokens=20, min_new_tokens=0, length_penalty=0.0)
# words of at most two tokens in that BPE, so a demonstration is ~18 tokens, as OpenFlamingo's are with its tokenizer
WORDS = "a on the dog cat car door in with what is".split()
EOC_BOOST = 2.0  # the <|endofchunk|> output row, so that captions end at different lengths as real ones do


def vision_config(width: int, layers: int) -> dict:
    return {
        "embed_dim": 64,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": layers, "width": width, "head_width": 64, "patch_size": 14},
        "text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1},
    }


def randomize(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Unit-scale linears, non-identity norms, gates in +-[0.4, 1]: every component changes the output."""
    for name, p in module.named_parameters():
        with torch.no_grad():
            if name.endswith(("attn_gate", "ff_gate")):
                p.copy_((torch.rand(p.shape, generator=gen) * 0.6 + 0.4) * torch.sign(torch.randn(p.shape, generator=gen)))
            elif p.ndim == 0:
                continue
            elif p.ndim == 1 and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "wte" in name or "embed" in name:
                p.copy_(0.35 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))


def build_model(root: Path, args) -> Path:
    """Random weights saved as the project and OpenFlamingo both load them; returns the spec file."""
    import transformers
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    cfg = vision_config(args.vit_width, args.vit_layers)
    clip = CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=True)
    randomize(clip, gen)
    (root / "vit").mkdir()
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(root / "vit" / "open_clip_model.safetensors"))
    preprocess = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "interpolation": "bicubic", "resize_mode": "shortest"}
    (root / "vit" / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": preprocess}))

    lm_dir = root / "lm"
    config = transformers.MptConfig(d_model=args.width, n_heads=args.width // 64, n_layers=args.layers, expansion_ratio=4,
                                    max_seq_len=2048, vocab_size=320, use_cache=True, bos_token_id=0, eos_token_id=0)
    lm = transformers.MptForCausalLM(config)
    randomize(lm, gen)
    lm.save_pretrained(lm_dir, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(GOLDEN_TOKENIZER / f, lm_dir / f)

    visual, _ = load_vision(f"local-dir:{root / 'vit'}", None)
    tokenizer = load_tokenizer(str(lm_dir))
    lm = load_lm(str(lm_dir), vocab_size=len(tokenizer))
    model = Flamingo(visual, lm, args.every, tokenizer.convert_tokens_to_ids("<image>"),
                     tokenizer.convert_tokens_to_ids("<|endofchunk|>"))
    randomize(model.perceiver, gen)
    for block in model.xattn.values():
        randomize(block, gen)
    emb = lm.embed.weight  # tied: also the output rows
    with torch.no_grad():
        emb[model.media_token_id] = 0.35 * torch.randn(emb.shape[1], generator=gen)
        emb[model.eoc_token_id] = EOC_BOOST * 0.35 * torch.randn(emb.shape[1], generator=gen)
    torch.save({k: v.clone() for k, v in sorted(to_openflamingo_keys(model).items())}, root / "checkpoint.pt")
    spec = root / "model.yaml"
    spec.write_text(f"vision_encoder: {{name: 'local-dir:{root / 'vit'}', pretrained: null}}\n"
                    f"lang_encoder: {lm_dir}\ntokenizer: {lm_dir}\ncross_attn_every_n_layers: {args.every}\n"
                    f"checkpoint: {root / 'checkpoint.pt'}\n")
    return spec


def make_images(folder: Path, names: list[str], rng: random.Random) -> None:
    from PIL import Image as PILImage

    folder.mkdir(exist_ok=True)
    for name in names:
        w, h = rng.randint(200, 320), rng.randint(200, 320)
        data = bytes(rng.getrandbits(8) for _ in range(48 * 48 * 3))
        PILImage.frombytes("RGB", (48, 48), data).resize((w, h), PILImage.BILINEAR).save(folder / f"{name}.png")


def caption(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 7)))


def workload(root: Path, queries: int, shots: int, seed: int) -> list[Prompt]:
    """Captioning prompts; demonstration images drawn with replacement from a scaled-down pool."""
    rng = random.Random(seed * 1000 + shots)
    pool = max(1, round(queries * REAL_QUERY_SET / REAL_TEST_ITEMS))
    folder = root / "images"
    names = [f"pool{i}" for i in range(pool)] + [f"s{shots}-query{q}" for q in range(queries)]
    make_images(folder, [n for n in names if not (folder / f"{n}.png").exists()], rng)

    def im(name: str) -> Image:
        return Image(key=name, path=str(folder / f"{name}.png"))

    prompts = []
    for q in range(queries):
        if shots == 0:
            demos = [Chunk(None, f"Output:{caption(rng)}") for _ in range(2)]
        else:
            demos = [Chunk(im(f"pool{rng.randrange(pool)}"), f"Output:{caption(rng)}") for _ in range(shots)]
        prompts.append(Prompt(demos + [Chunk(im(f"s{shots}-query{q}"), "Output:")], separator="\n"))
    return prompts


def normalize(ids: list[int], eoc: int, pad: int) -> list[int]:
    """New tokens up to and including <|endofchunk|>, pads dropped (HF pads finished beams)."""
    out = []
    for t in ids:
        if t == pad:
            continue
        out.append(t)
        if t == eoc:
            break
    return out


def run_project(spec: Path, prompts: list[Prompt], batch: int) -> tuple[float, list[list[int]]]:
    adapter = load_flamingo(str(spec))  # cold: an empty latent cache
    adapter.generate_ids(prompts[:1], GenerationSettings(num_beams=3, max_new_tokens=2))  # warm-up, then cold again
    adapter.latent_cache.clear()
    start = time.perf_counter()
    out = [ids for i in range(0, len(prompts), batch) for ids in adapter.generate_ids(prompts[i : i + batch], SETTINGS)]
    return time.perf_counter() - start, out


def run_naive(spec: Path, prompts: list[Prompt], batch: int) -> tuple[float, list[list[int]]]:
    adapter = load_flamingo(str(spec))
    start = time.perf_counter()
    out = [ids for i in range(0, len(prompts), batch) for ids in generate_ids_uncached(adapter, prompts[i : i + batch], SETTINGS)]
    return time.perf_counter() - start, out


def reference_python() -> str | None:
    venv = os.environ.get("OPENFLAMINGO_VENV", "/work/refvenv")
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        return None
    ok = subprocess.run([str(python), "-c", "import open_flamingo"], capture_output=True).returncode == 0
    return str(python) if ok else None


def run_reference(python: str, root: Path, prompts: list[Prompt], batch: int, every: int, vit: dict) -> tuple[float, list[list[int]]]:
    job = {
        "vision_config": vit,
        "vision_weights": str(root / "vit" / "open_clip_model.safetensors"),
        "lm": str(root / "lm"),
        "checkpoint": str(root / "checkpoint.pt"),
        "cross_attn_every_n_layers": every,
        "batch_size": batch,
        "settings": SETTINGS.to_dict(),
        "prompts": [{"text": render(p), "images": [im.path for c in p for im in c.images]} for p in prompts],
        "threads": torch.get_num_threads(),
    }
    (root / "job.json").write_text(json.dumps(job))
    done = subprocess.run([python, str(REFERENCE_SCRIPT), str(root / "job.json"), str(root / "result.json")],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{done.stderr[-3000:]}")
    result = json.loads((root / "result.json").read_text())
    return result["seconds"], result["new_ids"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=8, help="queries per shot count (N)")
    ap.add_argument("--shots", type=int, nargs="+", default=[0, 4, 32])
    ap.add_argument("--naive-queries", type=int, default=1, help="queries the naive decoder runs (0: skip it)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--every", type=int, default=4, help="cross-attention before every n-th LM layer")
    ap.add_argument("--vit-width", type=int, default=256)
    ap.add_argument("--vit-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every system (default 1: on shared cores more threads oversubscribe)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    python = None if args.no_reference else reference_python()
    root = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    try:
        spec = build_model(root, args)
        adapter = load_flamingo(str(spec))
        eoc, pad = adapter.model.eoc_token_id, adapter.tokenizer.pad_token_id
        print(f"model: MPT {args.layers}x{args.width}, xattn every {args.every}, ViT {args.vit_layers}x{args.vit_width} "
              f"224px/14, Perceiver 6x64; fp32 CPU, {torch.get_num_threads()} threads")
        print(f"workload: N={args.queries} queries per shot count, beam {SETTINGS.num_beams}, <= {SETTINGS.max_new_tokens} "
              f"new tokens, batch {args.batch}; naive on {args.naive_queries} queries; "
              f"reference: {python or 'not found (skipped)'}")
        header = f"{'shots':>5} {'system':<10} {'N':>3} {'prompt tok':>10} {'seconds':>8} {'samples/s':>10} {'tokens/s':>9} {'vs ref':>7} {'vs naive':>8}  outputs"
        print(header)
        all_agree = True
        for shots in args.shots:
            prompts = workload(root, args.queries, shots, seed=1)
            prompt_tokens = sum(map(len, adapter._tokenize(prompts))) // len(prompts)
            rows = {}
            secs, out = run_project(spec, prompts, args.batch)
            project = [normalize(o, eoc, pad) for o in out]
            rows["project"] = (len(prompts), secs, sum(map(len, project)), "")
            if args.naive_queries:
                sub = prompts[: args.naive_queries]
                secs, out = run_naive(spec, sub, args.batch)
                same = [normalize(o, eoc, pad) for o in out] == project[: len(sub)]
                all_agree &= same
                rows["naive"] = (len(sub), secs, sum(len(normalize(o, eoc, pad)) for o in out), "identical" if same else "DIFFER")
            if python:
                secs, out = run_reference(python, root, prompts, args.batch, args.every, vision_config(args.vit_width, args.vit_layers))
                same = [normalize(o, eoc, pad) for o in out] == project
                all_agree &= same
                rows["reference"] = (len(prompts), secs, sum(len(normalize(o, eoc, pad)) for o in out), "identical" if same else "DIFFER")
            rate = {name: n / secs for name, (n, secs, _, _) in rows.items()}
            for name, (n, secs, tokens, agree) in rows.items():
                vs_ref = f"{rate[name] / rate['reference']:.1f}x" if "reference" in rate else "-"
                vs_naive = f"{rate[name] / rate['naive']:.1f}x" if "naive" in rate else "-"
                print(f"{shots:>5} {name:<10} {n:>3} {prompt_tokens:>10} {secs:>8.2f} {n / secs:>10.3f} {tokens / secs:>9.1f} "
                      f"{vs_ref:>7} {vs_naive:>8}  {agree or 'project'}", flush=True)
        print("outputs: " + ("all identical" if all_agree else "SOME DIFFER"))
        return 0 if all_agree else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
