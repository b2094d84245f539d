"""The language models the project defines itself (MPT and MosaicGPT, GPT-NeoX, Llama, Mistral).

transformers supplies their configs, tokenizers and weight files and serves as the test oracle; the math
runs here (decoder.py), so a transformers release cannot change an output without a test failing.
"""
