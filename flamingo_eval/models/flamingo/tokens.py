"""The LM tokenizer as OpenFlamingo uses it: its two added tokens, left padding, and how it decodes text."""

from __future__ import annotations

from flamingo_eval.errors import WeightsError

END_OF_CHUNK = "<|endofchunk|>"
IMAGE = "<image>"
PAD = "<PAD>"


def load_tokenizer(path: str):
    """The LM tokenizer with OpenFlamingo's tokens added exactly as OpenFlamingo adds them."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise WeightsError(
            f"tokenizer {path}: cannot load ({str(e).splitlines()[0]}); "
            "download it into the HF cache or point tokenizer at a local directory"
        ) from None
    add_flamingo_tokens(tok)
    return tok


def add_flamingo_tokens(tok) -> None:
    """``<|endofchunk|>`` and ``<image>`` as additional special tokens, then ``<PAD>`` if there is no pad token."""
    tok.add_special_tokens({"additional_special_tokens": [END_OF_CHUNK, IMAGE]})
    if tok.pad_token is None:
        tok.add_special_tokens({"pad_token": PAD})
    tok.padding_side = "left"


# What transformers < 4.45 did to decoded text unless the tokenizer config said otherwise. OpenFlamingo's
# published numbers were made that way (transformers 4.28-4.33); transformers 5 skips it for BPE.
LEGACY_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                  (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def cleans_up_spaces(tok) -> bool:
    """Whether decoding removes spaces before punctuation: the config's value, else the old default (yes)."""
    value = tok.init_kwargs.get("clean_up_tokenization_spaces")
    return True if value is None else bool(value)


def clean_up_spaces(text: str) -> str:
    for before, after in LEGACY_CLEANUP:
        text = text.replace(before, after)
    return text
