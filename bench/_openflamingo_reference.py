"""The reference side of bench/decode.py, run with OpenFlamingo 2.0.1's own python (not the project's).

    <refvenv>/bin/python bench/_openflamingo_reference.py job.json result.json

Builds open_flamingo's Flamingo from the bench's saved files (open_clip config + weights, the MPT
directory, checkpoint.pt loaded as OpenFlamingo loads it, strict=False) and generates exactly as its
evaluation does (open_flamingo/eval/models/open_flamingo.py): per batch, every image preprocessed and
stacked into (B, T_img, 1, 3, H, W), zero-padded; the texts tokenised with left padding; then
``Flamingo.generate`` under inference_mode. ``<image>`` is banned (bad_words_ids), as the project does.
Writes the new token ids per prompt and the seconds spent generating (model loading excluded).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def bench_vit(config: dict):
    """While a model is built, open_clip knows the bench's tower config as "bench-vit" (warnings silenced)."""
    import open_clip

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bench-vit.json"
        cfg.write_text(json.dumps(config))
        open_clip.add_model_config(str(cfg))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield "bench-vit"


def load_tower(vision_encoder: torch.nn.Module, path: str) -> None:
    """The bench's saved open_clip weights into OpenFlamingo's vision encoder (its ``visual.`` keys)."""
    from safetensors.torch import load_file

    weights = load_file(path)
    vision_encoder.load_state_dict({k[len("visual."):]: v for k, v in weights.items() if k.startswith("visual.")})


def build(job: dict):
    from open_flamingo import create_model_and_transforms

    with bench_vit(job["vision_config"]) as name:
        model, image_processor, tokenizer = create_model_and_transforms(
            clip_vision_encoder_path=name,
            clip_vision_encoder_pretrained=None,
            lang_encoder_path=job["lm"],
            tokenizer_path=job["lm"],
            cross_attn_every_n_layers=job["cross_attn_every_n_layers"],
            use_local_files=True,
        )
    load_tower(model.vision_encoder, job["vision_weights"])
    model.load_state_dict(torch.load(job["checkpoint"], map_location="cpu", weights_only=True), strict=False)
    model.eval()
    tokenizer.padding_side = "left"
    return model, image_processor, tokenizer


def generate(model, image_processor, tokenizer, prompts: list[dict], settings: dict, max_new_tokens: int) -> list[list[int]]:
    from PIL import Image

    media_id = tokenizer.convert_tokens_to_ids("<image>")
    per_example = max(len(p["images"]) for p in prompts)
    vision_x = None
    for b, p in enumerate(prompts):
        for t, path in enumerate(p["images"]):
            with Image.open(path) as im:
                pixels = image_processor(im.convert("RGB"))
            if vision_x is None:
                vision_x = torch.zeros((len(prompts), per_example, 1) + pixels.shape, dtype=pixels.dtype)
            vision_x[b, t, 0] = pixels
    enc = tokenizer([p["text"] for p in prompts], padding="longest", truncation=True, return_tensors="pt", max_length=2000)
    with torch.inference_mode():
        out = model.generate(
            vision_x, enc["input_ids"], attention_mask=enc["attention_mask"],
            min_new_tokens=settings["min_new_tokens"], max_new_tokens=max_new_tokens, num_beams=settings["num_beams"],
            length_penalty=settings["length_penalty"], bad_words_ids=[[media_id]], use_cache=True, do_sample=False,
        )
    return out[:, enc["input_ids"].shape[1]:].tolist()


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(job["threads"])
    model, image_processor, tokenizer = build(job)
    settings, size, prompts = job["settings"], job["batch_size"], job["prompts"]
    generate(model, image_processor, tokenizer, prompts[:1], settings, 2)  # warm-up
    start = time.perf_counter()
    new_ids = []
    for i in range(0, len(prompts), size):
        new_ids += generate(model, image_processor, tokenizer, prompts[i : i + size], settings, settings["max_new_tokens"])
    seconds = time.perf_counter() - start
    Path(sys.argv[2]).write_text(json.dumps({"seconds": seconds, "new_ids": new_ids}))


if __name__ == "__main__":
    main()
