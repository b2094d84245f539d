"""The ``transformers`` family: any checkpoint that ``AutoModelForImageTextToText`` and ``AutoProcessor`` load
(Llama 3.2 Vision, Qwen2/2.5/3-VL, Gemma 3, ...), run through the model's own public forward with a cache
object; the harness owns the prompt protocol (render.py), the batching (inputs.py) and the search loops
(models/decoding/run.py) over each prompt's single prefill (decode.py)."""
