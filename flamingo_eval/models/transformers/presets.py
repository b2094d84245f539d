"""Presets of the ``transformers`` family: the checkpoints people evaluate, each with its prompt format.

Names follow the other Hugging Face presets: ``-base`` for a pretrained checkpoint (``raw`` format), no suffix
for the instruction-tuned one (``chat`` format). Qwen presets cap the pixels per image (``max_pixels``): the
checkpoints' own preprocessor allows 12845056 pixels, up to 16384 tokens for one image, which makes a few-shot
prompt of photos tens of thousands of tokens. 512 tokens per image is ``512 * 28 * 28`` pixels for Qwen2-VL
and Qwen2.5-VL (14 px patches merged 2 x 2) and ``512 * 32 * 32`` for Qwen3-VL (16 px patches); a COCO photo
(640 x 480) stays under either cap and keeps its native resolution (about 390 tokens in Qwen2/2.5-VL).
``max_pixels`` changes only the image processor's ``size["longest_edge"]`` and keeps the checkpoint's
``shortest_edge``; transformers 5.25 accepts it with a FutureWarning (its non-deprecated form, ``size``, must
name both edges).
"""

from __future__ import annotations

from flamingo_eval.models.transformers.spec import TransformersSpec

QWEN2_MAX_PIXELS = 512 * 28 * 28  # 401408: at most 512 tokens per image
QWEN3_MAX_PIXELS = 512 * 32 * 32  # 524288: at most 512 tokens per image


def _preset(name: str, model: str, prompt_format: str, description: str, **processor) -> TransformersSpec:
    return TransformersSpec(name, model, prompt_format, processor=processor, description=description)


def _table() -> dict[str, TransformersSpec]:
    rows = []
    for size in ("11b", "90b"):
        hub = f"meta-llama/Llama-3.2-{size.upper()}-Vision"
        rows += [_preset(f"llama3.2-{size}-vision-base", hub, "raw", f"Llama 3.2 {size.upper()} Vision (base, gated)"),
                 _preset(f"llama3.2-{size}-vision", f"{hub}-Instruct", "chat",
                         f"Llama 3.2 {size.upper()} Vision Instruct (gated)")]
    for size in ("2b", "7b"):
        rows.append(_preset(f"qwen2-vl-{size}-base", f"Qwen/Qwen2-VL-{size.upper()}", "raw",
                            f"Qwen2-VL {size.upper()} (base)", max_pixels=QWEN2_MAX_PIXELS))
    for size in ("3b", "7b", "72b"):
        rows.append(_preset(f"qwen2.5-vl-{size}", f"Qwen/Qwen2.5-VL-{size.upper()}-Instruct", "chat",
                            f"Qwen2.5-VL {size.upper()} Instruct", max_pixels=QWEN2_MAX_PIXELS))
    for size in ("2b", "4b", "8b", "32b"):
        rows.append(_preset(f"qwen3-vl-{size}", f"Qwen/Qwen3-VL-{size.upper()}-Instruct", "chat",
                            f"Qwen3-VL {size.upper()} Instruct (dense)", max_pixels=QWEN3_MAX_PIXELS))
    for size in ("4b", "12b", "27b"):
        rows += [_preset(f"gemma3-{size}-base", f"google/gemma-3-{size}-pt", "raw",
                         f"Gemma 3 {size.upper()} (pretrained, gated)"),
                 _preset(f"gemma3-{size}", f"google/gemma-3-{size}-it", "chat",
                         f"Gemma 3 {size.upper()} (instruction-tuned, gated)")]
    rows += [_preset("smolvlm2-2.2b-base", "HuggingFaceTB/SmolVLM2-2.2B-Base", "raw", "SmolVLM2 2.2B (base)"),
             _preset("smolvlm2-2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "chat", "SmolVLM2 2.2B Instruct")]
    for size in ("0.5b", "7b"):
        rows.append(_preset(f"llava-ov-{size}", f"llava-hf/llava-onevision-qwen2-{size}-ov-hf", "chat",
                            f"LLaVA-OneVision {size.upper()} (-ov: the multi-image stage)"))
    for size in ("1b", "2b", "8b", "14b", "38b", "78b"):
        rows.append(_preset(f"internvl3-{size}", f"OpenGVLab/InternVL3-{size.upper()}-hf", "chat",
                            f"InternVL3 {size.upper()} (transformers-native -hf)"))
    return {p.name: p for p in rows}


TRANSFORMERS_PRESETS: dict[str, TransformersSpec] = _table()
