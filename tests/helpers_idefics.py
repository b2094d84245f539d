"""Tiny random Idefics, Idefics2 and Idefics3 models on disk, and transformers "oracles" to compare adapters with.

Builders write a complete model directory through ``save_pretrained`` (config.json, model.safetensors,
generation_config.json, tokenizer and processor files), offline and in well under a second, so adapter
tests load exactly what they would load from the hub. Oracles run the same prompts through transformers'
public API (the processor, ``generate``, one forward): the protocol the adapters must reproduce token for
token.

The tokenizer is a Llama-style BPE (Metaspace, byte fallback) trained here on the harness's prompt text:
``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, bytes ``<0x00>``..``<0xFF>`` 3..258, then the learned pieces, then the
added special tokens. Four ids decode to text holding a newline (the byte ``<0x0A>`` 13 as in Llama, and
the pieces "\\n" 259, ".\\n" 334, ".\\n\\n" 372), so stopping on "EOS or any token whose text holds a
newline" is exercised with more than one newline id.

How each 5.25 processor renders the 1-shot VQA prompt ``vqa_prompt([tiny_image(0, (40, 32)), tiny_image(1,
(64, 20))])`` = ``[Chunk(img0, "Question:what color is the car? Short answer:red"), Chunk(img1, "Question:how
many dogs are there? Short answer:")]``, separator "\\n" (``render``; F = ``<fake_token_around_image>``,
I = ``<image>``, G = ``<global-img>``, ``▁`` = Metaspace's space; the pieces "Question" 336 / "▁Question" 369,
":" 272, "what" 343, "▁color" 512, "▁is" 320, "▁the" 311, "▁car" 496, "?" 273, "▁Short" 338, "▁answer" 333,
"red" 414, "\\n" 259, "how" 429, "▁many" 431, "▁dogs" 511, "▁are" 394, "▁there" 395):

- idefics (v1), items ``[img0, "Question:...answer:red\\n", img1, "Question:...answer:"]``; F 739, I 740::

    <s> F I F Question : what ▁color ... answer : red \\n F I F Question : how ▁many ... ▁answer :
    [1, 739, 740, 739, 336, 272, 343, 512, 320, 311, 496, 273, 338, 333, 272, 414, 259,
     739, 740, 739, 336, 272, 429, 431, 511, 394, 395, 273, 338, 333, 272]

  One I per image. ``<s>`` is text written by the processor (tokenized with add_special_tokens=False), so
  the word after it or after F has no "▁". Each text item is stripped of spaces at both ends.
  ``image_attention_mask`` (B, L, N): 0 before the first I, then one-hot on the latest image from its I on
  (the closing F included).

- idefics2 (image_seq_len 4, no splitting), text ``"<image>Question:...red\\n<image>Question:...answer:"``;
  F 739, I 740::

    <s> F I I I I F ▁Question : what ... red \\n F I I I I F ▁Question : how ... ▁answer :
    [1, 739, 740, 740, 740, 740, 739, 369, 272, 343, 512, 320, 311, 496, 273, 338, 333, 272, 414, 259,
     739, 740, 740, 740, 740, 739, 369, 272, 429, 431, 511, 394, 395, 273, 338, 333, 272]

  The processor inserts a space after a closing F followed directly by a word ("▁Question", not
  "Question"); the tokenizer adds ``<s>``. With splitting: ``F IIII`` x 5 then F (crops + original).

- idefics3 (image_seq_len 4, no splitting); F 740, I 741, G 743::

    <s> F G I I I I F Question : what ... red \\n F G I I I I F Question : how ... ▁answer :
    [1, 740, 743, 741, 741, 741, 741, 740, 336, 272, 343, 512, 320, 311, 496, 273, 338, 333, 272, 414, 259,
     740, 743, 741, 741, 741, 741, 740, 336, 272, 429, 431, 511, 394, 395, 273, 338, 333, 272]

  No space after F here. With splitting, an image of r x c tiles is, row by row, ``F <row_i_col_j> IIII``
  per tile then "\\n", then "\\n" and ``F G IIII F``: img0 (2 x 2) is ``F R11 IIII F R12 IIII \\n F R21 IIII
  F R22 IIII \\n \\n F G IIII F`` (the two newlines are two 259s), img1 (1 x 2) ``F R11 IIII F R12 IIII
  \\n \\n F G IIII F`` (R11 = ``<row_1_col_1>`` 744, R12 745, R21 750, R22 751). Two images with no text
  between them keep both F (``...F F G...``); idefics2 merges them into one F; idefics (v1) merges only
  when the items are adjacent, and the harness's empty chunk text is an item, so ``F I F F I F``.

A prompt that starts with text gets ``<s> ▁Question`` (369) from idefics2/3 (the first text segment takes
Metaspace's prefix space) but ``<s> Question`` (336) from idefics (v1).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Sequence
from pathlib import Path

FAMILIES = ("idefics", "idefics2", "idefics3")

FAKE = "<fake_token_around_image>"
IMAGE = "<image>"
EOU = "<end_of_utterance>"
GLOBAL_IMG = "<global-img>"
ROW_COL = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]

# Text the BPE is trained on: the harness's templates (tasks/*.yaml) filled with everyday words and digits,
# so prompts tokenize into word pieces rather than bytes. Newlines follow answers and captions as in the
# prompts, which gives the vocabulary pieces that end in a newline.
_WORDS = (
    "a an the is are was on in of with and to it this that what where who which how many much color colour "
    "red blue green white black yellow brown orange pink gray one two three four five six seven eight nine ten "
    "zero dog dogs cat cats man men woman women people person child boy girl sitting standing riding walking "
    "holding playing eating horse bench table street road car cars bus train plane boat plate pizza food water "
    "sign signs written word words hateful hate love yes no answer question short output image photo picture "
    "room kitchen bed chair window door tree trees grass sky field park beach snow ball game tennis baseball "
    "frisbee umbrella phone computer laptop book cake sandwich banana apple bowl cup cups glass bottle shirt hat "
    "left right top bottom front back big small large little old young next near there here they he she his "
    "her their you your when me my we our not do does did can will be been have has sport kind type time"
).split()
_QUESTIONS = (
    "what color is the car?", "how many dogs are there?", "what is on the table?", "is the man riding a horse?",
    "what sport is this?", "where is the cat sitting?", "what is written on the sign?", "how many people are there?",
)
_ANSWERS = ("red", "two", "pizza", "yes", "tennis", "on the bed", "stop", "3")
_CAPTIONS = (
    "a dog sitting on a bench.", "a man riding a horse on the beach.", "two cats on a bed.",
    "a plate of food on a table.", "a red bus on the street.", "people playing frisbee in a park.",
)
_MEMES = ("when you see it", "love your neighbor", "they are not like us", "my dog ate my homework", "hello there")


def _corpus() -> list[str]:
    lines = []
    for i, w in enumerate(_WORDS):
        q, a = _QUESTIONS[i % len(_QUESTIONS)], _ANSWERS[i % len(_ANSWERS)]
        lines.append(f"Question:{q} Short answer:{a}\nQuestion:what is the {w}? Short answer:{w}\n")
        lines.append(f"Output:{_CAPTIONS[i % len(_CAPTIONS)]}\nOutput:a {w} next to the {_WORDS[-1 - i]}.\n\n")
        lines.append(f"is an image with: '{_MEMES[i % len(_MEMES)]} {w}' written on it. Is it hateful? "
                     f"Answer:{'yes' if i % 3 else 'no'}")
        lines.append(f"{i} {i * 7 % 100} {w} {i % 10}\n")
    return lines


@functools.lru_cache(maxsize=1)
def _bpe() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """The Llama-layout vocabulary and merges: a BPE trained on ``_corpus`` (deterministic, ~40 ms)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token=None, byte_fallback=True))
    # Training splits words at spaces and isolates punctuation runs (newlines attach to the punctuation
    # before them) and newline runs, so no piece spans two words or continues past a newline.
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(r"[^\w▁\n]+\n*|\n+"), behavior="isolated"),
    ])
    bpe.train_from_iterator(_corpus(), trainer=trainers.BpeTrainer(vocab_size=480, show_progress=False))
    learned = json.loads(bpe.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"<0x{b:02X}>": 3 + b for b in range(256)}
    for piece in learned["vocab"]:
        vocab.setdefault(piece, len(vocab))
    return tuple(vocab.items()), tuple(tuple(m) for m in learned["merges"])


def tiny_tokenizer(special: Sequence[str] = (), pad_token: str = "<unk>"):
    """A LlamaTokenizer (BPE, Metaspace, byte fallback; adds ``<s>``) with ``special`` appended as additional
    special tokens in order, after the base vocabulary. ``pad_token`` is ``<unk>`` (as idefics and idefics2
    ship) or a new token appended before ``special``."""
    from transformers import LlamaTokenizer

    vocab, merges = _bpe()
    tok = LlamaTokenizer(vocab=dict(vocab), merges=[tuple(m) for m in merges], add_bos_token=True,
                         add_eos_token=False)
    if pad_token != "<unk>":
        tok.add_special_tokens({"pad_token": pad_token})
    tok.pad_token = pad_token
    if special:
        tok.add_special_tokens({"additional_special_tokens": list(special)})
    return tok


def _base_vocab_size() -> int:
    return len(_bpe()[0])


def _finish_weights(model, tokenizer, eos_scale: float, newline_scale: float) -> None:
    """Make the random model behave a little like a trained one: the output rows of special tokens other
    than EOS and of the byte-fallback tokens shrink to 5% (their logits sit near 0, below the likely
    tokens but without exact ties, so generation does not emit image/fake/pad tokens or stray bytes), and
    the EOS and newline rows grow so that some generations stop early and others run to max_new_tokens."""
    import torch

    head = model.get_output_embeddings()
    out = head.weight
    eos = tokenizer.eos_token_id
    # added_tokens_decoder, not all_special_ids: Idefics3Processor replaces the tokenizer's additional
    # special tokens, after which all_special_ids misses <global-img> and <row_i_col_j>.
    rare = set(tokenizer.added_tokens_decoder) | set(range(3, 3 + 256))
    newline = set(stop_ids(tokenizer)) - {eos}
    with torch.no_grad():
        for tid in rare - newline - {eos}:
            if tid < out.shape[0]:
                out[tid] *= 0.05
        if hasattr(head, "additional_fc"):  # idefics (v1): the additional vocabulary's own rows
            head.additional_fc.weight.mul_(0.05)
        out[eos] *= eos_scale
        for tid in newline:
            out[tid] *= newline_scale


def _save(model, processor, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch's global RNG inside a fork: building a model neither depends on nor disturbs the caller's
    RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_idefics(directory: Path, seed: int = 0, *, qk_layer_norms: bool = True, end_of_utterance: bool = False,
                  hidden_size: int = 32, num_hidden_layers: int = 4, image_size: int = 30, patch_size: int = 10,
                  n_latents: int = 4, eos_scale: float = 1.8, newline_scale: float = 1.3) -> Path:
    """Idefics (v1): a 4-layer LLaMA with gated cross-attention before layers 0 and 2 (cross_layer_interval 2),
    a 2-layer CLIP-like ViT (30 px, 10 px patches: 9 patches + CLS) and a 2-layer Perceiver (4 latents).

    As idefics-9b: ``<fake_token_around_image>`` and ``<image>`` are the two additional-vocabulary ids right
    after the base vocabulary (vocab_size V + additional_vocab_size 2), pad is ``<unk>`` (0), and
    qk_layer_norms (the gated cross-attention's) and qk_layer_norms_perceiver are on: idefics-80b-instruct's
    config has both, and so do the configs fine-tunes saved from idefics-9b. ``end_of_utterance=True`` adds
    ``<end_of_utterance>`` as id V+2 (the instruct tokenizers' layout) with additional_vocab_size 3 so it
    embeds. The float alpha gates (zero-initialised in transformers) are drawn from +-[0.5, 1.5] so images
    reach the text.
    """
    import torch
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor, IdeficsProcessor

    special = [FAKE, IMAGE] + ([EOU] if end_of_utterance else [])
    tok = tiny_tokenizer(special)
    base = _base_vocab_size()
    assert tok.convert_tokens_to_ids(special) == list(range(base, base + len(special)))
    config = IdeficsConfig(
        vocab_size=base, additional_vocab_size=len(special), hidden_size=hidden_size,
        intermediate_size=2 * hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=4,
        cross_layer_interval=2, use_resampler=True, qk_layer_norms=qk_layer_norms, initializer_range=0.2,
        alpha_initializer="zeros", alpha_type="float", max_position_embeddings=512, rms_norm_eps=1e-6,
        freeze_text_layers=False, freeze_vision_layers=False, freeze_lm_head=False,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
        vision_config=dict(embed_dim=hidden_size, image_size=image_size, patch_size=patch_size,
                           num_hidden_layers=2, num_attention_heads=4, intermediate_size=2 * hidden_size,
                           initializer_range=0.2),
        perceiver_config=dict(use_resampler=True, resampler_n_latents=n_latents, resampler_depth=2,
                              resampler_n_heads=2, resampler_head_dim=8, qk_layer_norms_perceiver=qk_layer_norms),
    )
    processor = IdeficsProcessor(image_processor=IdeficsImageProcessor(image_size=image_size), tokenizer=tok)
    with _seeded(seed):
        model = IdeficsForVisionText2Text(config).eval()
        with torch.no_grad():
            for layer in model.model.gated_cross_attn_layers:
                for alpha in (layer.alpha_cross_attn, layer.alpha_dense):
                    sign = 1.0 if torch.rand(()) < 0.7 else -1.0
                    alpha.fill_(sign * float(torch.empty(()).uniform_(0.5, 1.5)))
        _finish_weights(model, tok, eos_scale, newline_scale)
    return _save(model, processor, directory)


def build_idefics2(directory: Path, seed: int = 0, *, do_image_splitting: bool = False, hidden_size: int = 32,
                   num_hidden_layers: int = 4, n_latents: int = 4, patch_size: int = 10,
                   sliding_window: int | None = 4096, eos_scale: float = 1.8,
                   newline_scale: float = 1.3) -> Path:
    """Idefics2: a Mistral text model (sliding_window 4096 as idefics2-8b: never binding here), a 2-layer
    SigLIP (60 px positions, 10 px patches), the modality MLP and a 2-layer Perceiver with 4 latents, so each
    image (or crop) is 4 ``<image>`` tokens. Images keep their aspect ratio (shortest edge 30, longest 60);
    ``do_image_splitting`` gives 4 crops + the original (5 x 4 tokens). Pad is ``<unk>`` (0), ``<s>`` added by
    the tokenizer."""
    import torch
    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    tok = tiny_tokenizer([FAKE, IMAGE, EOU])
    image_processor = Idefics2ImageProcessor(size={"shortest_edge": 30, "longest_edge": 60},
                                             do_image_splitting=do_image_splitting)
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=n_latents)
    config = Idefics2Config(
        image_token_id=tok.convert_tokens_to_ids(IMAGE), tie_word_embeddings=False,
        text_config=dict(model_type="mistral", vocab_size=len(tok), hidden_size=hidden_size,
                         intermediate_size=2 * hidden_size, num_hidden_layers=num_hidden_layers,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=hidden_size // 4,
                         max_position_embeddings=4096, sliding_window=sliding_window, rms_norm_eps=1e-5,
                         initializer_range=0.2, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False),
        vision_config=dict(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
                           num_attention_heads=4, image_size=60, patch_size=patch_size, initializer_range=0.2),
        perceiver_config=dict(hidden_size=hidden_size, resampler_n_latents=n_latents, resampler_depth=2,
                              resampler_n_heads=2, resampler_head_dim=8, num_key_value_heads=1,
                              initializer_range=0.2),
    )
    with _seeded(seed):
        model = Idefics2ForConditionalGeneration(config).eval()
        # transformers initialises the Perceiver latents to ones: every latent would then pool the image
        # identically and all image tokens would be one vector.
        with torch.no_grad():
            model.model.connector.perceiver_resampler.latents.normal_(0.0, 0.2)
        _finish_weights(model, tok, eos_scale, newline_scale)
    return _save(model, processor, directory)


def build_idefics3(directory: Path, seed: int = 0, *, do_image_splitting: bool = False, hidden_size: int = 32,
                   num_hidden_layers: int = 4, tile: int = 32, patch_size: int = 8, scale_factor: int = 2,
                   max_tiles_per_side: int = 2, eos_scale: float = 1.8,
                   newline_scale: float = 1.3) -> Path:
    """Idefics3: a Llama text model, a 2-layer SigLIP on 32 px tiles (8 px patches: 16 patches), pixel
    shuffle with scale_factor 2 and a linear connector, so each tile is 4 ``<image>`` tokens
    (image_seq_len = (tile / patch)^2 / scale^2). Unsplit images are one square tile (only the global
    part); with ``do_image_splitting`` an image is resized to a longest edge of 64 px and cut into up to
    2 x 2 tiles plus the global tile. Pad is a dedicated ``<pad>`` token (not 0), ``<s>`` added by the
    tokenizer; ``<global-img>`` and ``<row_i_col_j>`` (i, j <= 6) are special tokens."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    tok = tiny_tokenizer([FAKE, IMAGE, EOU, GLOBAL_IMG, *ROW_COL], pad_token="<pad>")
    seq_len = (tile // patch_size) ** 2 // scale_factor**2
    image_processor = Idefics3ImageProcessor(size={"longest_edge": max_tiles_per_side * tile},
                                             max_image_size={"longest_edge": tile},
                                             do_image_splitting=do_image_splitting)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=seq_len)
    config = Idefics3Config(
        image_token_id=tok.convert_tokens_to_ids(IMAGE), scale_factor=scale_factor, tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=hidden_size,
                         intermediate_size=2 * hidden_size, num_hidden_layers=num_hidden_layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rms_norm_eps=1e-5, initializer_range=0.2, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False),
        vision_config=dict(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
                           num_attention_heads=4, image_size=tile, patch_size=patch_size, initializer_range=0.2),
    )
    with _seeded(seed):
        model = Idefics3ForConditionalGeneration(config).eval()
        _finish_weights(model, tok, eos_scale, newline_scale)
    return _save(model, processor, directory)


BUILDERS = {"idefics": build_idefics, "idefics2": build_idefics2, "idefics3": build_idefics3}


def load(family: str, directory: Path):
    """(model, processor) as an adapter would load them: AutoProcessor, and IdeficsForVisionText2Text (v1) or
    AutoModelForImageTextToText."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, IdeficsForVisionText2Text

    cls = IdeficsForVisionText2Text if family == "idefics" else AutoModelForImageTextToText
    return cls.from_pretrained(directory).eval(), AutoProcessor.from_pretrained(directory)


# ---------------------------------------------------------------------------------------------------------
# Harness prompts


def tiny_image(seed: int, size: tuple[int, int] = (40, 32)):
    """A harness Image holding random RGB pixels (width x height ``size``), key ``tiny/<seed>-<w>x<h>``."""
    import numpy as np
    from PIL import Image as PILImage

    from flamingo_eval.prompt import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image(key=f"tiny/{seed}-{size[0]}x{size[1]}", pil=PILImage.fromarray(pixels, "RGB"))


def harness_prompt(task: str, images: Sequence, shots: int | None = None, offset: int = 0):
    """The Prompt the harness builds for ``task`` (tasks/<task>.yaml templates, prompt_builder.build_prompt):
    ``images[:shots]`` are the demonstrations' images, ``images[shots]`` the query's. ``shots`` defaults to
    len(images) - 1; 0 shots gives two text-only demonstrations (OpenFlamingo's trick) and the query image.
    ``offset`` picks other questions/answers/captions."""
    from flamingo_eval.data.sample import Sample
    from flamingo_eval.prompt_builder import build_prompt, effective_shots
    from flamingo_eval.task import load_task

    spec = load_task(task)
    shots = len(images) - 1 if shots is None else shots
    if len(images) != shots + 1:
        raise ValueError(f"{shots} shots need {shots + 1} images, not {len(images)}")

    def sample(i: int, image) -> Sample:
        k = offset + i
        return Sample(id=str(k), image=image, question=_QUESTIONS[k % len(_QUESTIONS)],
                      answers=(_CAPTIONS[k % len(_CAPTIONS)],) if spec.kind == "caption"
                      else (_ANSWERS[k % len(_ANSWERS)],),
                      text=_MEMES[k % len(_MEMES)], label=k % 2)

    demos = [sample(i, images[i] if shots else images[-1]) for i in range(effective_shots(shots))]
    return build_prompt(spec, demos, sample(len(demos), images[-1]), demo_images=shots > 0)


def vqa_prompt(images: Sequence, shots: int | None = None, offset: int = 0):
    """A VQAv2 prompt (``Question:... Short answer:...``, separator "\\n"); see ``harness_prompt``."""
    return harness_prompt("vqav2", images, shots, offset)


# ---------------------------------------------------------------------------------------------------------
# Oracles: the protocol the adapters follow, through transformers' public API only


def _pil(image):
    return image.load()


def processor_inputs(family: str, processor, prompts: Sequence) -> dict:
    """The processor's batch for harness prompts, left-padded, as tensors.

    Idefics (v1): per prompt an item list, chunk by chunk the chunk's PIL images (if any) then its text, each
    demonstration's text followed by the separator (the query's text without), passed as ``text=[items,
    ...]`` (the v1 processor takes interleaved lists through ``text``; a positional list would go to
    ``images``). ``add_end_of_utterance_token=False`` pins what the 5.25 default already does.
    Idefics2/3: per prompt the string joining, chunk by chunk, one ``<image>`` per image of the chunk and the
    text (+ separator after a demonstration), with ``images=[[PIL images of that prompt], ...]``, or
    ``images=None`` when no prompt in the batch has an image. Never adds ``<end_of_utterance>`` or EOS.
    """
    from flamingo_eval.prompt import separator_of

    processor.tokenizer.padding_side = "left"
    if family == "idefics":
        batch = []
        for prompt in prompts:
            sep, items = separator_of(prompt), []
            for i, chunk in enumerate(prompt):
                items.extend(_pil(im) for im in chunk.images)
                items.append(chunk.text + (sep if i < len(prompt) - 1 else ""))
            batch.append(items)
        return dict(processor(text=batch, padding="longest", add_end_of_utterance_token=False,
                              return_tensors="pt"))
    if family not in ("idefics2", "idefics3"):
        raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")
    texts, images = [], []
    for prompt in prompts:
        sep, parts, pils = separator_of(prompt), [], []
        for i, chunk in enumerate(prompt):
            for im in chunk.images:
                parts.append(IMAGE)
                pils.append(_pil(im))
            parts.append(chunk.text + (sep if i < len(prompt) - 1 else ""))
        texts.append("".join(parts))
        images.append(pils)
    any_image = any(images)
    return dict(processor(text=texts, images=images if any_image else None, padding="longest",
                          return_tensors="pt"))


def render(family: str, processor, prompt) -> tuple[str, list[int]]:
    """The prompt's ids (one prompt, no padding) and their tokens joined, special tokens spelled out."""
    ids = processor_inputs(family, processor, [prompt])["input_ids"][0].tolist()
    return "".join(processor.tokenizer.convert_ids_to_tokens(ids)), ids


def stop_ids(tokenizer) -> list[int]:
    """EOS plus every id whose own text (``tokenizer.decode([id])``) contains a newline: generation stops
    at the end of the answer line, as the harness's decoders do."""
    ids = {tokenizer.eos_token_id}
    ids.update(i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i]))
    return sorted(ids)


def hf_generate(model, processor, family: str, prompts: Sequence, num_beams: int, max_new_tokens: int,
                length_penalty: float = 0.0, min_new_tokens: int = 0) -> list[list[int]]:
    """transformers' ``generate`` (greedy or beam search, ``do_sample=False``; beam search with
    ``early_stopping=False``, the generation config's default) stopping on ``stop_ids``: per prompt the new
    ids, the stop token kept when generated, the padding after it removed (a row without a stop token has
    exactly max_new_tokens ids)."""
    import torch

    tok = processor.tokenizer
    stops = stop_ids(tok)
    inputs = processor_inputs(family, processor, prompts)
    width = inputs["input_ids"].shape[1]
    # length_penalty only matters to beam search (greedy generate warns that it ignores it)
    beam = {"length_penalty": length_penalty, "early_stopping": False} if num_beams > 1 else {}
    with torch.no_grad():
        out = model.generate(**inputs, num_beams=num_beams, max_new_tokens=max_new_tokens,
                             min_new_tokens=min_new_tokens, do_sample=False, eos_token_id=stops,
                             pad_token_id=tok.pad_token_id, **beam)
    rows = []
    stop_set = set(stops)
    for row in out[:, width:].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in stop_set), len(row))
        rows.append(row[:end])
    return rows


def hf_text(tokenizer, new_ids: Sequence[int]) -> str:
    """The answer text: decoded with skip_special_tokens (the tokenizer's own clean-up setting), cut before
    the first newline, not stripped."""
    return tokenizer.decode(list(new_ids), skip_special_tokens=True).split("\n", 1)[0]


def hf_option_logprob(model, processor, family: str, prompt, option: str) -> float:
    """Sum of log P(option token | prompt, earlier option tokens), the option tokenized alone
    (add_special_tokens=False; with this Metaspace tokenizer "no" alone is "▁no"), appended to the prompt's
    ids, by one forward: see ``hf_ids_logprob``."""
    ids = processor.tokenizer(option, add_special_tokens=False)["input_ids"]
    return hf_ids_logprob(model, processor, family, prompt, ids)


def hf_ids_logprob(model, processor, family: str, prompt, ids: Sequence[int]) -> float:
    """Sum of the log-probabilities of ``ids`` appended to the prompt's ids, by one plain forward.
    Idefics (v1): the appended tokens' image_attention_mask rows repeat the prompt's last row (they attend to
    the last image, as generate extends the mask); Idefics2/3: ids appended, attention mask extended."""
    import torch

    inputs = processor_inputs(family, processor, [prompt])
    n = len(ids)
    extra = torch.tensor([list(ids)], dtype=inputs["input_ids"].dtype)
    width = inputs["input_ids"].shape[1]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], 1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(extra)], 1)
    if family == "idefics":
        iam = inputs["image_attention_mask"]
        inputs["image_attention_mask"] = torch.cat([iam, iam[:, -1:].expand(-1, n, -1)], 1)
    with torch.no_grad():
        logits = model(**inputs).logits[0, width - 1: width - 1 + n].float()
    return float(torch.log_softmax(logits, -1)[torch.arange(n), extra[0]].sum())


def build(family: str, directory: Path, seed: int = 0, **options) -> Path:
    """``build_<family>(directory, seed, **options)``."""
    if family not in BUILDERS:
        raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")
    return BUILDERS[family](directory, seed, **options)
