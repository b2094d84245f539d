"""Seeded toy data for all seven tasks, in their real on-disk formats and default --data-root layout.

It exists so that tests and the toy model's training can run the real readers, prompts and metrics
without downloads, and so that a small Flamingo trained on CPU shows genuine few-shot behaviour:

- One tiny world (``scenes``): 1-4 same-coloured shapes (6 colours, 4 shapes) on a white, gray or black
  background, 64x64 pixels. Every text uses a closed vocabulary of under 200 words (``language``).
- Vocabularies: each data set's annotators call the colours by their own words (``datasets.NAMES``:
  COCO says "crimson" and "navy", Flickr30k "scarlet" and "azure", ...). No image shows which word a
  data set uses; demonstrations do, the more of them the likelier they name the query's colour, and
  similar images (RICES) share it. So shots carry information the query alone does not, as in real
  benchmarks whose conventions only examples show.
- Captioning (COCO, Flickr30k): five templated references per image; both tasks share the "Output:"
  prompt and the same caption distribution.
- VQA (VQAv2, OK-VQA over the COCO toy images; TextVQA signs; VizWiz photos): ten annotators, about
  90% agreeing. The question family depends on the background and a sign's colour and icon on its word,
  so look-alike images (what RICES retrieves) share questions and answers. OK-VQA maps what is seen to
  "knowledge" (a fruit of the colour, an object of the shape, its number of corners); VizWiz has ~30%
  blank or blurred photos answered "unanswerable", and asks the colour of a third of the rest.
- HatefulMemes: hateful exactly when an insulting text meets pointy shapes (triangles, diamonds), so
  neither modality alone decides; ~40% positive.

``ensure_toy_data(root)`` is cheap to call every time; ``generate(root, seed, sizes)`` always writes.
"""

from flamingo_eval.toy.datasets import GENERATOR_VERSION, Sizes, default_root, ensure_toy_data, generate

__all__ = ["GENERATOR_VERSION", "Sizes", "default_root", "ensure_toy_data", "generate"]
