"""The bundled Flamingo, numerically OpenFlamingo 2.0.1 (see scripts/parity for the proof).

The model:
  model.py       THE definition, top to bottom: vision patch tokens, Perceiver, masked cross-attention,
                 gated blocks, the LM (models/lm) with its cross-attention layers; ``forward`` by definition
What makes it fast (the same function, less work):
  fast.py        prefill / extend: per-image cross-attention K/V once, the last image at decode, the KV cache
                 and cascade kernel of models/decoding; training's packed forward
  latent_cache.py  Perceiver latents per image key, LRU, for a whole run
  selfcheck.py   at every load, a tiny twin decodes by cache and by definition; any difference stops the run
  uncached.py    decoding by definition (tests, bench)
Loading and use:
  vision.py      the open_clip tower and its transform
  checkpoint.py  OpenFlamingo checkpoint names onto the model's, every key accounted for
  tokens.py      the tokenizer with OpenFlamingo's tokens, decoding clean-up
  render.py      OpenFlamingo's prompt text
  presets.py     of-3b ... of-9b, of-toy and model spec files; sizes.py their Perceiver/cross-attention shapes
  adapter.py     the ModelAdapter the harness uses (load_flamingo)
"""
