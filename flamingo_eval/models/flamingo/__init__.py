"""The bundled Flamingo, numerically OpenFlamingo 2.0.1 (see scripts/parity for the proof).

vision.py      open_clip tower -> patch tokens without ln_post
perceiver.py   patch tokens -> 64 latents per image
xattn.py       gated cross-attention (media K/V computable once per image)
lm.py          transformers causal LM + cross-attention layers (MPT, GPT-NeoX, Llama)
mosaic_gpt.py  OpenFlamingo-3B's MosaicGPT LM mapped onto MPT
model.py       Flamingo: encode_images / media_kv / forward / prefill / extend
decode.py      greedy and beam search with transformers' generate semantics
checkpoint.py  safe loading of OpenFlamingo checkpoints, hub resolution
presets.py     of-3b ... of-9b and model spec files
adapter.py     the ModelAdapter the harness uses (load_flamingo)
render.py      OpenFlamingo's prompt text
"""
