"""The reference side of bench/rank.py: OpenFlamingo 2.0.1's own ``EvalModel.get_rank_classifications``, run
with OpenFlamingo's python (not the project's).

    OPENFLAMINGO_SRC=<open_flamingo checkout at v2.0.1> <refvenv>/bin/python bench/_openflamingo_rank_reference.py job.json result.json

The wheel of open-flamingo 2.0.1 leaves out ``open_flamingo/eval/models/`` (it has no ``__init__.py``), so
``EvalModel`` is loaded from a checkout of the repository at tag 2.0.1 (``$OPENFLAMINGO_SRC``); the rest of
``open_flamingo`` is the installed package. The model is built by ``EvalModel.__init__`` from the bench's saved
files (open_clip config registered under a name, the MPT directory, checkpoint.pt loaded strict=False), then the
open_clip tower's weights are loaded as bench/_openflamingo_reference.py does.

One change, and only one: with the transformers OpenFlamingo's evaluation now runs on, the prompt's cache is a
``DynamicCache`` that every class's forward extends in place, so each class would also attend to every earlier
class (and MPT fails once the cache outgrows its position limit). ``CutBack.__call__`` crops the cache back to the prompt after each
class's pass, which is what the code intends (with the tuple caches of 2023 nothing grew). Everything else,
the per-token loop over each class name included, is OpenFlamingo's.

Writes the (B, classes) scores ``get_rank_classifications(use_cache=True, normalize_length=True)`` returns and
the seconds the timed call took (model loading and a warm-up call excluded).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import torch


def eval_model_class():
    src = Path(os.environ["OPENFLAMINGO_SRC"]) / "open_flamingo" / "eval" / "models" / "open_flamingo.py"
    if not src.exists():
        raise SystemExit(f"OPENFLAMINGO_SRC: {src} not found (a checkout of open_flamingo at tag 2.0.1)")
    spec = importlib.util.spec_from_file_location("open_flamingo.eval.models.open_flamingo", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EvalModel


def build(job: dict):
    from _openflamingo_reference import bench_vit, load_tower  # beside this file

    EvalModel = eval_model_class()

    class CutBack(EvalModel):
        """OpenFlamingo's EvalModel; a cached call leaves the prompt's cache as it found it (see above)."""

        def __call__(self, lang_x, vision_x, attention_mask, past_key_values=None, clear_conditioned_layers=False,
                     use_cache=False):
            keep = None if past_key_values is None else past_key_values.get_seq_length()
            out = super().__call__(lang_x, vision_x, attention_mask, past_key_values, clear_conditioned_layers, use_cache)
            if keep is not None:
                past_key_values.crop(keep)
            return out

    with bench_vit(job["vision_config"]) as name:
        model = CutBack({
            "vision_encoder_path": name, "vision_encoder_pretrained": None, "lm_path": job["lm"],
            "lm_tokenizer_path": job["lm"], "checkpoint_path": job["checkpoint"],
            "cross_attn_every_n_layers": job["cross_attn_every_n_layers"], "precision": job["precision"],
            "device": job["device"],
        })
    load_tower(model.model.vision_encoder, job["vision_weights"])
    return model


def main() -> None:
    from PIL import Image

    job = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(job["threads"])
    model = build(job)
    sync = torch.cuda.synchronize if job["device"] >= 0 else (lambda: None)

    def images(prompts):
        out = []
        for p in prompts:
            row = []
            for path in p["images"]:
                with Image.open(path) as im:
                    row.append(im.convert("RGB"))
            out.append(row)
        return out

    def rank(prompts, names):
        return model.get_rank_classifications([p["text"] for p in prompts], images(prompts), names,
                                              use_cache=True, normalize_length=True)

    rank(job["warmup"], job["class_names"][:2])
    sync()
    start = time.perf_counter()
    scores = rank(job["prompts"], job["class_names"])
    sync()
    seconds = time.perf_counter() - start
    Path(sys.argv[2]).write_text(json.dumps({"seconds": seconds, "scores": scores.float().tolist()}))


if __name__ == "__main__":
    main()
