"""Few-shot decode throughput of the Hugging Face families: the project's adapter vs transformers' generate.

Models (random weights, the real architectures at modest size, saved with save_pretrained beside their
processor and loaded back as a harness run loads them; tokenizer: a LLaMA-style BPE (Metaspace, byte
fallback, <s> </s> <unk>, 1000 entries) trained offline on the bench's words, with <fake_token_around_image>,
<image> and <end_of_utterance> added and <unk> as padding):
  idefics   IdeficsForVisionText2Text: LLaMA 8 layers of width 512 (8 heads, MLP 1376), gated cross-attention
            before every 4th layer (idefics-9b's cross_layer_interval) with alpha gates in +-[0.4, 1]; a ViT at
            224 px / patch 14 (256 patches + CLS, as CLIP ViT-H/14) of width 128 and 8 layers; the released
            Perceiver shape (6 layers, 64 latents) at the ViT's width (2 heads of 64)
  idefics2  Idefics2ForConditionalGeneration: Mistral 8 layers of width 512 (8 heads, 2 KV heads, MLP 1792);
            SigLIP at patch 14 of width 256 and 2 layers; the released connector (modality MLP, Perceiver of
            3 layers and 64 latents, 8 heads of 64, 2 KV heads). Image processor with do_image_splitting=False,
            shortest edge 224 (--idefics2-edge; longest edge twice it): a 640 x 480 image is 21 x 16 patches.
            Not the released 378 (27 x 36 patches): next to an LM of 8 layers instead of 32, an image would
            then cost ~160 LM tokens of compute where idefics2-8b's costs ~65; at 224, ~55
Weights are unit-scale (linears std 1/sqrt(fan-in), embeddings std 1, norms 1 +- 0.2), with the vision
towers' and Perceivers' query/key projections 3x that: at unit scale their attention averages and two random
images get features of cosine 0.97-0.99, with it about 0.3-0.4, so swapping query images changes most
answers. The EOS and newline output rows are scaled up a little (STOP_BOOST) so that answers end at varied
lengths. Idefics' ViT costs ~17 LM tokens per image (idefics-9b: ~21); its Perceiver, which transformers
reruns at every decode step, ~4 (idefics-9b: ~1.8), so the Idefics ratio here is flattered about 2x in the
decode part (a FLOP count at idefics-9b's sizes for the 16-shot row gives ~12x).

Workload: captioning prompts ("Output:a dog on a mat", separator "\n"), beam 3, at most 20 new tokens,
length_penalty 0, batch 8 (--task vqa: "Question:what is on the table? Short answer:two", at most 5 new
tokens), through flamingo_eval.prompt. Demonstration images come from a pool scaled down from a real run
(demonstrations for 5000 test items drawn from a 2048-item query set: N x 2048 / 5000 pool images for N
queries, each used as often as in a real run); every query has its own query image. Images are PIL in memory
(Image(key, pil): random smooth noise at COCO-like sizes, 480-640 x 360-480). Idefics at 0, 4 and 16 shots,
Idefics2 at 0, 4 and 8 (0 shots: two text-only demonstrations, as Flamingo's protocol).

Systems, side by side in this process on the same torch threads, each loaded fresh and warmed up on one
other prompt for each row, then timed cold (the project's image cache emptied):
  project       load_model(spec).generate_ids, the harness's path: the processor per prompt for the exact ids,
                each distinct image encoded once (an LRU cache by key), each prompt prefilled once for its
                beams (K/V once per query), Idefics' cross-attention K/V once per image and only the last
                image at decode
  transformers  the processor on each batch of prompts (left padding) with the inputs of
                flamingo_eval/models/hf/protocol.py, then model.generate(num_beams=3, do_sample=False, stop at
                EOS or a newline token, length_penalty 0): Idefics processor(text=[items per prompt]),
                Idefics2 processor(text=[strings], images=[[images per prompt]], padding=True)

Columns: prompt tok = mean prompt length; new tok = mean new tokens per answer (with the stop token); project s
/ transf s = each system's whole time, processor included; (proc) = of which inside the processor (and for the
project its image processor calls); samples/s = queries per second; x = project / transformers samples/s;
outputs = whether the new ids per prompt (up to and including the stop token: what follows in transformers'
output is padding) are identical. Targets (issue 15): at least 5x at 16 shots for Idefics and 2x at 8 shots
for Idefics2, with identical outputs. --profile prints each system's cProfile. Exit status 1 if any differ.

What bounds each system (--profile at the default sizes, captions, 16 / 8 shots): transformers' Idefics reruns
the Perceiver on all B x beams x images at every decode step (~80% of its time), after the ViT on as many
(~10%); transformers' Idefics2 encodes every image of every prompt (72 at 8 shots, ~45%), then prefills each
prompt once per beam (~50%). The project is bound by its one prefill per prompt (the LM's linears; Idefics
~60%, Idefics2 ~70%), then the vision tower on the distinct images (~10% / ~20%) and the decode steps
(~20% / ~8%); its processor calls take ~10% / ~3%.

    python bench/idefics.py [--families idefics idefics2] [--queries 8] [--task caption] [--threads 1] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flamingo_eval.models import GenerationSettings, load_model  # noqa: E402
from flamingo_eval.models.hf.protocol import idefics_items, image_text, stop_ids  # noqa: E402
from flamingo_eval.prompt import Chunk, Image, Prompt  # noqa: E402

REAL_QUERY_SET, REAL_TEST_ITEMS = 2048, 5000
SPECIAL = ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]
WORDS = ("a an on the dog cat car bus door in with of is two man woman people table plate pizza street red "
         "blue white black sitting standing next to near room kitchen bed train sign field grass water").split()
QUESTIONS = ["what is on the table?", "what color is the bus?", "how many people are there?", "is the dog sitting?",
             "what is the man holding?", "where is the cat?"]
ANSWERS = ["pizza", "red", "two", "yes", "no", "a sign", "on the bed", "white"]
# EOS and newline output rows scaled up, so that answers end at varied lengths as real ones do (set by trial at the
# default sizes: these random models otherwise stop at once or never)
STOP_BOOST = {"idefics": 1.3, "idefics2": 1.8}
QK_SHARPEN = 3.0
DEFAULT_SHOTS = {"idefics": [0, 4, 16], "idefics2": [0, 4, 8]}
TARGETS = {("idefics", 16): 5.0, ("idefics2", 8): 2.0}


# ---- models -------------------------------------------------------------------------------------------
def build_tokenizer(vocab_size: int):
    """A LLaMA-style tokenizer (Metaspace BPE with byte fallback, <s> </s> <unk>) trained offline on the
    bench's words, with the Idefics special tokens added and <unk> as padding (as the released ones)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    words = WORDS + " ".join(QUESTIONS + ANSWERS).replace("?", " ").split() + ["Output:", "Question:", "Short", "answer:"]
    rng = random.Random(0)
    corpus = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)]
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens],
                                  show_progress=False)
    trainer_tok.train_from_iterator(corpus, trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = LlamaTokenizer(vocab=model["vocab"], merges=merges, pad_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL})
    tok.padding_side = "left"
    return tok


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Unit-scale linears and embeddings, non-identity norms, alpha gates in +-[0.4, 1]: every component moves
    the output. The vision towers' and Perceivers' query and key projections are 3x that, so that their
    attention is peaked as a trained one is: at unit scale it averages and two random images get features of
    cosine 0.97-0.99; with this, about 0.3-0.4."""
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.ndim == 2 and any(k in name for k in ("vision", "perceiver")) and name.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(QK_SHARPEN * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif "alpha_" in name:
                p.copy_((torch.rand(p.shape, generator=gen) * 0.6 + 0.4) * torch.sign(torch.randn(p.shape, generator=gen)))
            elif p.ndim == 0:
                continue
            elif p.ndim == 1 and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name or "additional_embedding" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))


def boost_stops(head: torch.Tensor, tok, factor: float) -> None:
    with torch.no_grad():
        for i in stop_ids(tok):
            head[i] *= factor


def build_idefics(folder: Path, tok, args, gen: torch.Generator) -> None:
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor, IdeficsProcessor

    base = len(tok) - len(SPECIAL)
    config = IdeficsConfig(
        vocab_size=base, additional_vocab_size=len(SPECIAL), hidden_size=args.width, intermediate_size=args.width * 43 // 16,
        num_hidden_layers=args.layers, num_attention_heads=args.width // 64, cross_layer_interval=4,
        max_position_embeddings=2048, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, use_resampler=True,
        vision_config={"embed_dim": args.vit_width, "image_size": 224, "patch_size": 14, "num_hidden_layers": args.vit_layers,
                       "num_attention_heads": args.vit_width // 64, "intermediate_size": 4 * args.vit_width},
        perceiver_config={"use_resampler": True, "resampler_n_latents": 64, "resampler_depth": 6,
                          "resampler_n_heads": args.vit_width // 64, "resampler_head_dim": 64},
    )
    model = IdeficsForVisionText2Text(config).eval()
    randomize(model, gen)
    boost_stops(model.lm_head.weight, tok, STOP_BOOST["idefics"])
    model.save_pretrained(folder)
    IdeficsProcessor(image_processor=IdeficsImageProcessor(image_size=224), tokenizer=tok).save_pretrained(folder)


def build_idefics2(folder: Path, tok, args, gen: torch.Generator) -> None:
    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    config = Idefics2Config(
        image_token_id=tok.convert_tokens_to_ids("<image>"), tie_word_embeddings=False,
        text_config={"model_type": "mistral", "vocab_size": len(tok), "hidden_size": args.width,
                     "intermediate_size": args.width * 7 // 2, "num_hidden_layers": args.layers,
                     "num_attention_heads": args.width // 64, "num_key_value_heads": max(1, args.width // 256),
                     "max_position_embeddings": 4096, "sliding_window": 4096, "pad_token_id": tok.pad_token_id,
                     "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id},
        vision_config={"hidden_size": args.siglip_width, "intermediate_size": 4 * args.siglip_width,
                       "num_hidden_layers": args.siglip_layers, "num_attention_heads": args.siglip_width // 64,
                       "image_size": 980, "patch_size": 14},
        perceiver_config={"hidden_size": args.width, "resampler_n_latents": 64, "resampler_depth": 3,
                          "resampler_n_heads": args.width // 64, "resampler_head_dim": 64,
                          "num_key_value_heads": max(1, args.width // 256)},
    )
    model = Idefics2ForConditionalGeneration(config).eval()
    randomize(model, gen)
    boost_stops(model.lm_head.weight, tok, STOP_BOOST["idefics2"])
    model.save_pretrained(folder)
    edge = args.idefics2_edge
    images = Idefics2ImageProcessor(size={"shortest_edge": edge, "longest_edge": 2 * edge}, do_image_splitting=False)
    Idefics2Processor(image_processor=images, tokenizer=tok, image_seq_len=64).save_pretrained(folder)


def build(root: Path, family: str, args) -> Path:
    """The saved model directory and its spec file; returns the spec file."""
    folder = root / family
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    tok = build_tokenizer(args.vocab)
    (build_idefics if family == "idefics" else build_idefics2)(folder, tok, args, gen)
    spec = root / f"{family}.yaml"
    spec.write_text(f"family: {family}\nmodel: {folder}\n")
    return spec


# ---- workload -----------------------------------------------------------------------------------------
def picture(rng: random.Random):
    from PIL import Image as PILImage

    w, h = rng.randint(480, 640), rng.randint(360, 480)
    data = bytes(rng.getrandbits(8) for _ in range(32 * 24 * 3))
    return PILImage.frombytes("RGB", (32, 24), data).resize((w, h), PILImage.BILINEAR)


def demonstration(task: str, rng: random.Random) -> tuple[str, str]:
    if task == "vqa":
        return f"Question:{rng.choice(QUESTIONS)} Short answer:", rng.choice(ANSWERS)
    return "Output:", " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 8)))


def workload(queries: int, shots: int, task: str, seed: int) -> list[Prompt]:
    """Prompts whose demonstration images are drawn, with replacement, from a scaled-down pool."""
    rng = random.Random(seed * 1000 + shots)
    pool = [Image(key=f"pool{i}", pil=picture(rng)) for i in range(max(1, round(queries * REAL_QUERY_SET / REAL_TEST_ITEMS)))]
    prompts = []
    for q in range(queries):
        demos = []
        for _ in range(shots or 2):
            head, answer = demonstration(task, rng)
            demos.append(Chunk(rng.choice(pool) if shots else None, head + answer))
        query = Image(key=f"s{shots}-query{q}", pil=picture(rng))
        prompts.append(Prompt(demos + [Chunk(query, demonstration(task, rng)[0])], separator="\n"))
    return prompts


# ---- systems ------------------------------------------------------------------------------------------
def batches(prompts: list[Prompt], size: int) -> list[list[Prompt]]:
    return [prompts[i : i + size] for i in range(0, len(prompts), size)]


class Clock:
    """Seconds spent inside wrapped calls."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


class TimedProcessor:
    """A processor whose calls (its own and its image processor's) are timed; everything else passes through."""

    def __init__(self, processor, clock: Clock):
        self._processor, self._clock = processor, clock
        self.image_processor = _TimedCallable(processor.image_processor, clock)

    def __call__(self, *a, **k):
        return self._clock.wrap(self._processor)(*a, **k)

    def __getattr__(self, name):
        return getattr(self._processor, name)


class _TimedCallable:
    def __init__(self, target, clock: Clock):
        self._target, self._clock = target, clock

    def __call__(self, *a, **k):
        return self._clock.wrap(self._target)(*a, **k)

    def __getattr__(self, name):
        return getattr(self._target, name)


def warm_prompt() -> Prompt:
    return Prompt([Chunk(Image(key="warm-up", pil=picture(random.Random(9))), "Output:")])


def run_project(spec: Path, prompts: list[Prompt], batch: int, settings: GenerationSettings,
                profile: bool = False) -> tuple[float, float, list[list[int]]]:
    """Seconds, of which in the processor, and the new ids per prompt."""
    adapter = load_model(str(spec))
    adapter.generate_ids([warm_prompt()], GenerationSettings(num_beams=3, max_new_tokens=2))
    adapter.features.clear()  # cold: an empty image cache
    clock = Clock()
    adapter.engine.processor = TimedProcessor(adapter.engine.processor, clock)
    seconds, out = timed(lambda: [ids for chunk in batches(prompts, batch) for ids in adapter.generate_ids(chunk, settings)],
                         "project" if profile else None)
    return seconds, clock.seconds, out


def timed(work, profile_as: str | None = None):
    """Seconds and result of ``work()``; under cProfile (its top functions printed) when ``profile_as`` names it."""
    profiler = cProfile.Profile() if profile_as else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    out = work()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    if profiler:
        print(f"--- profile: {profile_as}, {seconds:.2f} s")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    return seconds, out


class Transformers:
    """The family's processor and model as transformers runs them, on the protocol's inputs."""

    def __init__(self, family: str, folder: Path):
        from transformers import AutoModelForImageTextToText, AutoProcessor, IdeficsForVisionText2Text

        self.family = family
        self.processor = AutoProcessor.from_pretrained(folder)
        self.processor.tokenizer.padding_side = "left"
        cls = IdeficsForVisionText2Text if family == "idefics" else AutoModelForImageTextToText
        self.model = cls.from_pretrained(folder).eval()
        self.stops = stop_ids(self.processor.tokenizer)
        self.processor_seconds = 0.0
        self.prompt_tokens = 0

    def inputs(self, prompts: list[Prompt]):
        """The processor on the batch (left padding), timed: Idefics ``text=`` the interleaved items, Idefics2
        ``text=`` the <image> strings with ``images=`` per prompt."""
        start = time.perf_counter()
        if self.family == "idefics":
            items = [idefics_items(p, [im.load() for im in p.images()]) for p in prompts]
            out = self.processor(text=items, padding="longest", return_tensors="pt")
        else:
            images = [[im.load() for im in p.images()] for p in prompts]
            out = self.processor(text=[image_text(p) for p in prompts], images=images, padding=True, return_tensors="pt")
        self.processor_seconds += time.perf_counter() - start
        self.prompt_tokens += int(out["attention_mask"].sum())
        return out

    @torch.inference_mode()
    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[list[int]]:
        inputs = self.inputs(prompts)
        out = self.model.generate(**inputs, num_beams=settings.num_beams, max_new_tokens=settings.max_new_tokens,
                                  min_new_tokens=settings.min_new_tokens, length_penalty=settings.length_penalty,
                                  do_sample=False, eos_token_id=self.stops,
                                  pad_token_id=self.processor.tokenizer.pad_token_id)
        return [cut(row, self.stops) for row in out[:, inputs["input_ids"].shape[1] :].tolist()]


def cut(ids: list[int], stops: list[int]) -> list[int]:
    """New ids up to and including the first stop id: what follows is generate's padding of a finished beam."""
    for i, t in enumerate(ids):
        if t in stops:
            return ids[: i + 1]
    return ids


def run_transformers(family: str, folder: Path, prompts: list[Prompt], batch: int, settings: GenerationSettings,
                     profile: bool = False) -> tuple[float, float, int, list[list[int]]]:
    """Seconds, of which in the processor, mean prompt tokens, and the new ids per prompt."""
    system = Transformers(family, folder)
    system.generate([warm_prompt()], GenerationSettings(num_beams=3, max_new_tokens=2))
    system.processor_seconds, system.prompt_tokens = 0.0, 0
    seconds, out = timed(lambda: [ids for chunk in batches(prompts, batch) for ids in system.generate(chunk, settings)],
                         "transformers" if profile else None)
    return seconds, system.processor_seconds, system.prompt_tokens // len(prompts), out


# ---- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=["idefics", "idefics2"], choices=["idefics", "idefics2"])
    ap.add_argument("--queries", type=int, default=8, help="queries per shot count (N)")
    ap.add_argument("--idefics-shots", type=int, nargs="+", default=DEFAULT_SHOTS["idefics"])
    ap.add_argument("--idefics2-shots", type=int, nargs="+", default=DEFAULT_SHOTS["idefics2"])
    ap.add_argument("--task", choices=["caption", "vqa"], default="caption",
                    help="caption: at most 20 new tokens; vqa: at most 5")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--vit-width", type=int, default=128, help="Idefics' ViT (and Perceiver) width")
    ap.add_argument("--vit-layers", type=int, default=8, help="Idefics' ViT layers")
    ap.add_argument("--siglip-width", type=int, default=256, help="Idefics2's SigLIP width")
    ap.add_argument("--siglip-layers", type=int, default=2, help="Idefics2's SigLIP layers")
    ap.add_argument("--idefics2-edge", type=int, default=224,
                    help="Idefics2 image processor's shortest edge (longest: twice it; released: 378)")
    ap.add_argument("--vocab", type=int, default=1000, help="base vocabulary of the BPE tokenizer")
    ap.add_argument("--profile", action="store_true", help="cProfile both systems on every row")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every system (default 1: on shared cores more threads oversubscribe)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.disable_progress_bar()
    settings = GenerationSettings(num_beams=3, max_new_tokens=20 if args.task == "caption" else 5, length_penalty=0.0)
    shots_of = {"idefics": args.idefics_shots, "idefics2": args.idefics2_shots}
    root = Path(tempfile.mkdtemp(prefix="bench-idefics-"))
    try:
        print(f"models: LM {args.layers}x{args.width}; Idefics ViT {args.vit_layers}x{args.vit_width} 224px/14, Perceiver "
              f"6 layers x 64 latents; Idefics2 SigLIP {args.siglip_layers}x{args.siglip_width} shortest edge "
              f"{args.idefics2_edge}px/14, Perceiver 3 layers x 64 latents; fp32 CPU, {torch.get_num_threads()} threads")
        print(f"workload: {args.task}, N={args.queries} queries per shot count, beam {settings.num_beams}, <= "
              f"{settings.max_new_tokens} new tokens, batch {args.batch}, pool N x {REAL_QUERY_SET}/{REAL_TEST_ITEMS} images")
        print(f"{'family':<9} {'shots':>5} {'N':>3} {'prompt tok':>10} {'new tok':>7} {'project s':>9} {'(proc)':>6} "
              f"{'transf s':>8} {'(proc)':>6} {'project/s':>9} {'transf/s':>8} {'x':>6}  outputs")
        all_agree, missed = True, []
        for family in args.families:
            spec = build(root, family, args)
            for shots in shots_of[family]:
                prompts = workload(args.queries, shots, args.task, seed=1)
                p_secs, p_proc, project = run_project(spec, prompts, args.batch, settings, args.profile)
                t_secs, t_proc, tokens, theirs = run_transformers(family, root / family, prompts, args.batch, settings,
                                                              args.profile)
                same = project == theirs
                all_agree &= same
                for i, (a, b) in enumerate(zip(project, theirs, strict=True)):
                    if a != b:
                        print(f"  query {i}: project {a}\n           transformers {b}")
                ratio = t_secs / p_secs
                target = TARGETS.get((family, shots))
                if target and ratio < target:
                    missed.append(f"{family} at {shots} shots: {ratio:.1f}x < {target:.0f}x")
                new = sum(map(len, project)) / len(project)
                print(f"{family:<9} {shots:>5} {len(prompts):>3} {tokens:>10} {new:>7.1f} {p_secs:>9.2f} {p_proc:>6.2f} "
                      f"{t_secs:>8.2f} {t_proc:>6.2f} {len(prompts) / p_secs:>9.3f} {len(prompts) / t_secs:>8.3f} "
                      f"{ratio:>5.1f}x  {'identical' if same else 'DIFFER'}", flush=True)
        print("outputs: " + ("all identical" if all_agree else "SOME DIFFER"))
        print("targets (Idefics 5x at 16 shots, Idefics2 2x at 8): " + ("; ".join(missed) if missed else "met where run"))
        return 0 if all_agree else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
