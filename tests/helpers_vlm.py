"""Tiny random checkpoints of today's interleaved VLMs on disk, and transformers "oracles" to compare with.

``build_tiny(arch, root)`` writes ``root/<arch>`` through ``save_pretrained``: config.json, model.safetensors,
generation_config.json and the processor (image processor, tokenizer with the model's special tokens, chat
template), offline and in about a second, so the ``transformers`` family loads exactly what it would load from
the hub. Each architecture keeps the real model's layout at toy sizes (2 text layers, 2 vision layers, width
32, images of tens of pixels) and the real processor class, and its chat template is written here after the
structure of the real one (turn markers, where images go, the default system turn, Llama 3.2's date line).

The tokenizer is the Llama-style offline BPE of ``tests/helpers_idefics.py`` (trained on the harness's prompt
text, ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, bytes 3..258) with each model's special tokens appended; models
whose real tokenizer adds no BOS (Qwen) get none here either. Weights are drawn with a wide initializer and
the gates that transformers zero-initialises (Llama 3.2 Vision's cross-attention gates) are opened, so an image
changes the greedy output (``test_helpers_vlm`` checks it per architecture).

Oracles (``hf_generate``, ``hf_option_logprob``) run a prompt string and its images through the model's
processor and transformers' ``generate`` / one plain forward: the protocol the family must reproduce.
``chat_messages`` / ``prompt_text`` turn a harness Prompt into that string as the README's protocol says.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from tests.helpers_idefics import _bpe, _finish_weights, _seeded, stop_ids, tiny_image

ARCHS = ("qwen2_5_vl", "mllama", "qwen2_vl", "gemma3", "smolvlm2", "llava_onevision", "internvl", "qwen3_vl")

# ---------------------------------------------------------------------------------------------------------
# Chat templates: written here after the real ones' structure (not copied).

# Qwen2-VL / Qwen2.5-VL: a default system turn when the first message is not one, <|im_start|>role ...
# <|im_end|> turns, each image item as <|vision_start|><|image_pad|><|vision_end|> where it sits in the content.
QWEN_TEMPLATE = (
    "{% set ns = namespace(images=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}"
    "{% set ns.images = ns.images + 1 %}"
    "{% if add_vision_id %}Picture {{ ns.images }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3-VL (Instruct): the same turns and image markers, without a default system turn.
QWEN3_TEMPLATE = QWEN_TEMPLATE.replace("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n", "")

# Llama 3.2 Vision: <|begin_of_text|>, a system header with the knowledge cutoff and today's date only when no
# message holds an image, then <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|> turns with <|image|>
# where each image item sits.
MLLAMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if not date_string is defined %}"
    "{% if strftime_now is defined %}{% set date_string = strftime_now('%d %b %Y') %}"
    "{% else %}{% set date_string = '26 Jul 2024' %}{% endif %}"
    "{% endif %}"
    "{% set ns = namespace(has_image=false) %}"
    "{% for message in messages %}{% if message['content'] is not string %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}"
    "{% set ns.has_image = true %}{% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system_message = messages[0]['content'] if messages[0]['content'] is string"
    " else messages[0]['content'][0]['text'] %}"
    "{% set messages = messages[1:] %}"
    "{% else %}{% set system_message = '' %}{% endif %}"
    "{% if not ns.has_image or system_message %}"
    "<|start_header_id|>system<|end_header_id|>\n\n"
    "{% if not ns.has_image %}Cutting Knowledge Date: December 2023\nToday Date: {{ date_string }}\n\n"
    "{% endif %}"
    "{{ system_message }}<|eot_id|>"
    "{% endif %}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|image|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


# Gemma 3: BOS, a leading system message folded into the first user turn, <start_of_turn>user|model ...
# <end_of_turn> turns, text items trimmed, <start_of_image> where each image item sits.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set prefix = (messages[0]['content'] if messages[0]['content'] is string"
    " else messages[0]['content'][0]['text']) + '\\n\\n' %}"
    "{% set messages = messages[1:] %}"
    "{% else %}{% set prefix = '' %}{% endif %}"
    "{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if loop.first %}{{ prefix }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


# SmolVLM2: <|im_start|> once, then per message "Role:" (no space before an image) or "Role: ", its items in
# order (``<image>`` for an image item), <end_of_utterance> and a newline; the generation prompt "Assistant:".
SMOLVLM_TEMPLATE = (
    "<|im_start|>"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'] is not string and message['content'] and message['content'][0]['type'] == 'image' %}"
    ":{% else %}: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


# LLaVA-OneVision (Qwen2 text): <|im_start|>role ... <|im_end|> turns, no default system turn, and in each
# message all its images first ("<image>\\n" each) and then its text items.
LLAVA_ONEVISION_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for item in message['content'] if item['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# InternVL3 (-hf): Qwen2-style turns with a default system turn of its own, each image item as
# "<IMG_CONTEXT>\\n" where it sits (the processor wraps it in <img> ... </img> and expands it per tile).
INTERNVL_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are InternVL, a multimodal assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<IMG_CONTEXT>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ---------------------------------------------------------------------------------------------------------
# Builders


def _save(model, processor, directory: Path, eos_ids: Sequence[int] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if eos_ids is not None:
        model.generation_config.eos_token_id = list(eos_ids)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _tokenizer(special: Sequence[str], *, eos: str | None = None, pad: str = "<unk>", bos: bool = True,
               bos_token: str | None = None, **named: str):
    """The offline BPE of helpers_idefics (a LlamaTokenizer) with ``pad`` (when new) then ``special`` appended
    as special tokens. ``eos``/``bos_token`` give those roles to one of them (Qwen's <|im_end|>, Llama 3's
    <|begin_of_text|>), ``bos=False`` adds no BOS (Qwen adds none), and ``named`` sets the model-specific
    token attributes processors read (Gemma 3's ``boi_token``, ``image_token``...)."""
    from transformers import LlamaTokenizer

    vocab, merges = _bpe()
    tok = LlamaTokenizer(vocab=dict(vocab), merges=[tuple(m) for m in merges], add_bos_token=bos,
                         add_eos_token=False, **named)
    if pad != "<unk>":
        tok.add_special_tokens({"pad_token": pad})
    tok.pad_token = pad
    tok.add_special_tokens({"additional_special_tokens": list(special)})
    if eos is not None:
        tok.eos_token = eos
    if bos_token is not None:
        tok.bos_token = bos_token
    return tok


def _qwen_vl(directory: Path, seed: int, version: str) -> Path:
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL: a 2-layer Qwen2 text model with M-RoPE (mrope_section [2, 1, 1] of head_dim 8),
    a 2-layer ViT on 4 px patches (temporal patch 2) whose 2 x 2 merger gives one token per 8 x 8 pixels;
    images are resized to multiples of 8 with 256 <= pixels <= 2304 (4 to 36 tokens). Qwen2.5-VL's ViT uses
    window attention (16 px windows) except in its last block, as the real one does except in 4 blocks.
    Qwen3-VL: a Qwen3 text model (q/k norms, interleaved M-RoPE), learned position embeddings interpolated
    over a 4 x 4 grid, and DeepStack (block 0's merged features added into the first text layer); its
    template has no default system turn."""
    import transformers as tf

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]
    tok = _tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", bos=False)
    ids = dict(zip(special, tok.convert_tokens_to_ids(special), strict=True))
    hidden, patch = 32, 4
    text = dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6,
                initializer_range=0.2, bos_token_id=None, eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 1e6})
    vision = dict(depth=2, hidden_size=hidden, intermediate_size=2 * hidden, num_heads=4, patch_size=patch,
                  spatial_merge_size=2, temporal_patch_size=2, initializer_range=0.2)
    common = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                  tie_word_embeddings=False)
    template = QWEN_TEMPLATE
    if version == "3":
        text |= dict(head_dim=8, rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1],
                                                  "mrope_interleaved": True, "rope_theta": 5e6})
        vision |= dict(out_hidden_size=hidden, num_position_embeddings=16, deepstack_visual_indexes=[0])
        config = tf.Qwen3VLConfig(text_config=text, vision_config=vision, **common)
        model_cls, processor_cls, template = tf.Qwen3VLForConditionalGeneration, tf.Qwen3VLProcessor, QWEN3_TEMPLATE
        video_processor_cls = tf.Qwen3VLVideoProcessor
    elif version == "2.5":
        vision |= dict(out_hidden_size=hidden, window_size=16, fullatt_block_indexes=[1])
        config = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
        model_cls, processor_cls = tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor
        video_processor_cls = tf.Qwen2VLVideoProcessor
    else:
        vision |= dict(embed_dim=hidden, hidden_size=hidden, mlp_ratio=2)
        config = tf.Qwen2VLConfig(text_config=text, vision_config=vision, **common)
        model_cls, processor_cls = tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
        video_processor_cls = tf.Qwen2VLVideoProcessor
    pixels = dict(patch_size=patch, merge_size=2, temporal_patch_size=2, min_pixels=256, max_pixels=2304)
    processor = processor_cls(image_processor=tf.Qwen2VLImageProcessor(**pixels), tokenizer=tok,
                              video_processor=video_processor_cls(**pixels), chat_template=template)
    with _seeded(seed):
        model = model_cls(config).eval()
        _finish_weights(model, tok, eos_scale=1.8, newline_scale=1.3)
    return _save(model, processor, directory, [ids["<|im_end|>"], ids["<|endoftext|>"]])


def build_qwen2_5_vl(directory: Path, seed: int = 0) -> Path:
    return _qwen_vl(directory, seed, "2.5")


def build_qwen3_vl(directory: Path, seed: int = 0) -> Path:
    return _qwen_vl(directory, seed, "3")


def build_qwen2_vl(directory: Path, seed: int = 2) -> Path:
    # seed 2: with seeds 0 and 1 the chat-format answer of this tiny model starts with a newline whatever the image
    return _qwen_vl(directory, seed, "2")


def build_mllama(directory: Path, seed: int = 0) -> Path:
    """Llama 3.2 Vision: a 4-layer Llama whose layers 1 and 3 are gated cross-attention layers (as 3, 8, ...
    in the 11B), a ViT of 2 local + 1 global layers on 16 px tiles (4 px patches: 16 patches + CLS, up to 4
    tiles per image) whose features are its layers 0 and 1 plus the last (vision_output_dim 3 x 32).
    ``<|image|>`` is the id right after the text vocabulary (vocab_size = its id, as 128256 in the real one);
    the tokenizer adds ``<|begin_of_text|>``; EOS is ``<|eot_id|>``. The gates transformers zero-initialises
    (cross-attention, tile embeddings) are drawn from [0.5, 1.5] (cross-attention: sign random) so images
    reach the text."""
    import torch
    import transformers as tf

    special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               "<|eom_id|>", "<|finetune_right_pad_id|>", "<|python_tag|>", "<|image|>"]
    tok = _tokenizer(special, eos="<|eot_id|>", pad="<|finetune_right_pad_id|>", bos_token="<|begin_of_text|>")
    ids = dict(zip(special, tok.convert_tokens_to_ids(special), strict=True))
    assert ids["<|image|>"] == len(tok) - 1
    hidden, tile = 32, 16
    config = tf.MllamaConfig(
        image_token_index=ids["<|image|>"],
        text_config=dict(vocab_size=ids["<|image|>"], hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         cross_attention_layers=[1, 3], max_position_embeddings=4096, rms_norm_eps=1e-5,
                         initializer_range=0.2, bos_token_id=ids["<|begin_of_text|>"],
                         eos_token_id=ids["<|eot_id|>"], pad_token_id=ids["<|finetune_right_pad_id|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 5e5}),
        vision_config=dict(hidden_size=hidden, num_hidden_layers=2, num_global_layers=1, attention_heads=4,
                           intermediate_size=2 * hidden, image_size=tile, patch_size=4, max_num_tiles=4,
                           intermediate_layers_indices=[0, 1], vision_output_dim=3 * hidden,
                           initializer_range=0.2),
    )
    image_processor = tf.MllamaImageProcessor(size={"height": tile, "width": tile}, max_image_tiles=4)
    processor = tf.MllamaProcessor(image_processor=image_processor, tokenizer=tok, chat_template=MLLAMA_TEMPLATE)
    with _seeded(seed):
        model = tf.MllamaForConditionalGeneration(config).eval()
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(("cross_attn_attn_gate", "cross_attn_mlp_gate")):
                    sign = 1.0 if torch.rand(()) < 0.7 else -1.0
                    param.fill_(sign * float(torch.empty(()).uniform_(0.5, 1.5)))
                elif name.endswith("gate") and "vision" in name:
                    param.uniform_(0.5, 1.5)
        _finish_weights(model, tok, eos_scale=1.8, newline_scale=1.3)
    return _save(model, processor, directory, [ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]])


def build_gemma3(directory: Path, seed: int = 0) -> Path:
    """Gemma 3: a 2-layer Gemma 3 text model (one sliding-window layer with a 32-token window, then one
    global layer, as the real 5:1 pattern; head_dim 8), a 2-layer SigLIP on 16 px images (4 px patches) average
    pooled to 4 tokens per image (mm_tokens_per_image 4, the processor's image_seq_length). Images are resized
    to 16 x 16 (no pan and scan); the processor expands ``<start_of_image>`` to "\\n\\n<start_of_image>" + 4
    ``<image_soft_token>`` + "<end_of_image>\\n\\n". The tokenizer adds BOS and the chat template writes it
    too (the real pair does the same); EOS is ``<end_of_turn>`` in the generation config."""
    import torch
    import transformers as tf

    special = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
    tok = _tokenizer(special, pad="<pad>", boi_token="<start_of_image>", eoi_token="<end_of_image>",
                     image_token="<image_soft_token>")
    ids = dict(zip(special, tok.convert_tokens_to_ids(special), strict=True))
    hidden, size, tokens = 32, 16, 4
    config = tf.Gemma3Config(
        text_config=dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8,
                         sliding_window=32, layer_types=["sliding_attention", "full_attention"],
                         max_position_embeddings=4096, initializer_range=0.2, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=2, num_attention_heads=4, image_size=size, patch_size=4),
        mm_tokens_per_image=tokens, boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"], image_token_index=ids["<image_soft_token>"], initializer_range=0.2,
        tie_word_embeddings=False,
    )
    image_processor = tf.Gemma3ImageProcessor(size={"height": size, "width": size}, do_pan_and_scan=False)
    processor = tf.Gemma3Processor(image_processor=image_processor, tokenizer=tok, chat_template=GEMMA3_TEMPLATE,
                                   image_seq_length=tokens)
    with _seeded(seed):
        model = tf.Gemma3ForConditionalGeneration(config).eval()
        with torch.no_grad():  # transformers zero-initialises the image projection: images would be all zeros
            model.model.multi_modal_projector.mm_input_projection_weight.normal_(0.0, 0.2)
        _finish_weights(model, tok, eos_scale=1.8, newline_scale=1.3)
    return _save(model, processor, directory, [tok.eos_token_id, ids["<end_of_turn>"]])


def build_smolvlm2(directory: Path, seed: int = 0) -> Path:
    """SmolVLM2 (model type ``smolvlm``): a 2-layer Llama text model, a 2-layer SigLIP on 32 px tiles (8 px
    patches), pixel shuffle (scale_factor 2) and a linear connector: 4 ``<image>`` tokens per tile. As the real
    one, images are split: resized to a longest edge of 64 px and cut into up to 2 x 2 tiles plus the global
    tile, ``<row_i_col_j>`` and ``<global-img>`` marking them. No BOS from the tokenizer (the template writes
    ``<|im_start|>``); EOS ``<end_of_utterance>``, pad ``<|im_end|>``."""
    import transformers as tf

    special = ["<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>",
               "<global-img>", *[f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]]
    tok = _tokenizer(special, eos="<end_of_utterance>", pad="<|im_end|>", bos=False, bos_token="<|im_start|>")
    hidden, tile, patch, scale = 32, 32, 8, 2
    seq_len = (tile // patch) ** 2 // scale**2
    config = tf.SmolVLMConfig(
        image_token_id=tok.convert_tokens_to_ids("<image>"), scale_factor=scale, tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, rms_norm_eps=1e-5, initializer_range=0.2,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False),
        vision_config=dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                           num_attention_heads=4, image_size=tile, patch_size=patch, initializer_range=0.2),
    )
    sizes = dict(size={"longest_edge": 2 * tile}, max_image_size={"longest_edge": tile})
    processor = tf.SmolVLMProcessor(image_processor=tf.SmolVLMImageProcessor(do_image_splitting=True, **sizes),
                                    tokenizer=tok, video_processor=tf.SmolVLMVideoProcessor(**sizes),
                                    image_seq_len=seq_len, chat_template=SMOLVLM_TEMPLATE)
    with _seeded(seed):
        model = tf.SmolVLMForConditionalGeneration(config).eval()
        _finish_weights(model, tok, eos_scale=1.8, newline_scale=1.3)
    return _save(model, processor, directory, [tok.eos_token_id])


def build_llava_onevision(directory: Path, seed: int = 0) -> Path:
    """LLaVA-OneVision: a 2-layer Qwen2 text model, a 2-layer SigLIP on 16 px images (4 px patches: 16 tokens,
    feature strategy "full" as the real one), the 2-layer MLP projector and the learned image newline. As the
    real processor: one image in a prompt goes "anyres" (base image + tiles from the grid pinpoints 16..32 px,
    newline tokens per row, capped at anyres_max_9); several images in one prompt are each the base image
    only (16 tokens + 1 newline token). No BOS; EOS ``<|im_end|>``."""
    import transformers as tf

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    tok = _tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", bos=False)
    ids = dict(zip(special, tok.convert_tokens_to_ids(special), strict=True))
    hidden, size, patch = 32, 16, 4
    pinpoints = [[16, 16], [16, 32], [32, 16], [32, 32], [16, 48], [48, 16]]
    config = tf.LlavaOnevisionConfig(
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=False,
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, rms_norm_eps=1e-6, initializer_range=0.2,
                         bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         tie_word_embeddings=False),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                           num_hidden_layers=2, num_attention_heads=4, image_size=size, patch_size=patch),
    )
    image_processor = tf.LlavaOnevisionImageProcessor(size={"height": size, "width": size},
                                                      image_grid_pinpoints=pinpoints)
    video_processor = tf.LlavaOnevisionVideoProcessor(size={"height": size, "width": size})
    processor = tf.LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok,
                                           video_processor=video_processor, num_image_tokens=(size // patch) ** 2,
                                           vision_feature_select_strategy="full",
                                           chat_template=LLAVA_ONEVISION_TEMPLATE)
    with _seeded(seed):
        model = tf.LlavaOnevisionForConditionalGeneration(config).eval()
        _finish_weights(model, tok, eos_scale=1.8, newline_scale=1.3)
    return _save(model, processor, directory, [ids["<|im_end|>"], ids["<|endoftext|>"]])


def build_internvl(directory: Path, seed: int = 0) -> Path:
    """InternVL (transformers' native class, as the ``-hf`` checkpoints): a 2-layer Qwen2 text model, a 2-layer
    InternViT on 16 px tiles (4 px patches) with pixel shuffle (downsample_ratio 0.5) and the MLP projector: 4
    ``<IMG_CONTEXT>`` tokens per tile. As the real processor, images are cropped into up to 4 tiles (plus a
    thumbnail where there are several) and each image becomes ``<img>`` + its tokens + ``</img>``. No BOS; EOS
    ``<|im_end|>``."""
    import transformers as tf

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
    tok = _tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", bos=False, start_image_token="<img>",
                     end_image_token="</img>", context_image_token="<IMG_CONTEXT>", video_token="<video>")
    ids = dict(zip(special, tok.convert_tokens_to_ids(special), strict=True))
    hidden, size, patch = 32, 16, 4
    seq_len = (size // patch) ** 2 // 4
    config = tf.InternVLConfig(
        image_token_id=ids["<IMG_CONTEXT>"], image_seq_length=seq_len, downsample_ratio=0.5,
        tie_word_embeddings=False,
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, rms_norm_eps=1e-6, initializer_range=0.2,
                         bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         tie_word_embeddings=False),
        vision_config=dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                           num_attention_heads=4, image_size=[size, size], patch_size=[patch, patch],
                           initializer_range=0.2),
    )
    image_processor = tf.GotOcr2ImageProcessor(size={"height": size, "width": size}, crop_to_patches=True,
                                               min_patches=1, max_patches=4)
    video_processor = tf.InternVLVideoProcessor(size={"height": size, "width": size})
    processor = tf.InternVLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                     image_seq_length=seq_len, chat_template=INTERNVL_TEMPLATE)
    with _seeded(seed):
        model = tf.InternVLForConditionalGeneration(config).eval()
        _finish_weights(model, tok, eos_scale=1.8, newline_scale=1.3)
    return _save(model, processor, directory, [ids["<|im_end|>"], ids["<|endoftext|>"]])


BUILDERS = {"qwen2_5_vl": build_qwen2_5_vl, "mllama": build_mllama, "qwen2_vl": build_qwen2_vl,
            "gemma3": build_gemma3, "smolvlm2": build_smolvlm2,
            "llava_onevision": build_llava_onevision, "internvl": build_internvl,
            "qwen3_vl": build_qwen3_vl}


def build_tiny(arch: str, root: Path, seed: int | None = None) -> Path:
    """Write the tiny ``arch`` checkpoint to ``root/<arch>`` (``root/<arch>-<seed>`` for a seed other than the
    builder's default, the one whose images change the greedy output in both formats)."""
    if arch not in BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}; one of {sorted(BUILDERS)}")
    if seed is None:
        return BUILDERS[arch](Path(root) / arch)
    return BUILDERS[arch](Path(root) / f"{arch}-{seed}", seed)


# ---------------------------------------------------------------------------------------------------------
# Oracles: the protocol, through transformers' public API only


@functools.lru_cache(maxsize=8)
def load(directory: Path):
    """(model, processor) as the family loads them: AutoModelForImageTextToText and AutoProcessor."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return (AutoModelForImageTextToText.from_pretrained(directory).eval(),
            AutoProcessor.from_pretrained(directory))


def processor_inputs(processor, text: str, images: Sequence) -> dict:
    """``processor(text=[text], images=[[PIL images in order]] or None, return_tensors="pt")``."""
    pils = [im.load() if hasattr(im, "load") else im for im in images]
    return dict(processor(text=[text], images=[pils] if pils else None, return_tensors="pt"))


def chat_messages(prompt) -> list[dict]:
    """The chat format's messages: per demonstration a user turn (its images, then its text without the answer)
    and an assistant turn (the answer); the query is the last user turn. A demonstration without an answer is
    an error."""
    messages = []
    for i, chunk in enumerate(prompt):
        query = i == len(prompt) - 1
        if not query and chunk.answer is None:
            raise ValueError(f"demonstration {i} has no answer: the chat format needs one")
        content = [{"type": "image"} for _ in chunk.images]
        content.append({"type": "text", "text": chunk.text if query else chunk.question()})
        messages.append({"role": "user", "content": content})
        if not query:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": chunk.answer}]})
    return messages


def image_placeholder(processor) -> str:
    """The raw format's text for one image: the processor's image token, inside the start/end markers the model
    was trained with where the processor does not add them (Qwen's vision_start/end, Gemma 3's boi_token)."""
    name = type(processor).__name__
    if name.startswith("Qwen"):
        return f"<|vision_start|>{processor.image_token}<|vision_end|>"
    if name.startswith("Gemma3"):
        return processor.boi_token
    return processor.image_token


def prompt_text(processor, prompt, prompt_format: str, date_string: str = "26 Jul 2024") -> str:
    """The model's input text for a harness Prompt in the ``chat`` or ``raw`` format (README protocol)."""
    from flamingo_eval.prompt import separator_of

    if prompt_format == "chat":
        return processor.apply_chat_template(chat_messages(prompt), add_generation_prompt=True, tokenize=False,
                                             date_string=date_string)
    if prompt_format != "raw":
        raise ValueError(f"unknown prompt format {prompt_format!r}; chat or raw")
    sep, placeholder, parts = separator_of(prompt), image_placeholder(processor), []
    for i, chunk in enumerate(prompt):
        parts.extend(placeholder for _ in chunk.images)
        parts.append(chunk.text + (sep if i < len(prompt) - 1 else ""))
    return "".join(parts)


def protocol_stop_ids(model, tokenizer) -> list[int]:
    """The generation config's eos_token_id (one or a list), the tokenizer's EOS, and every newline id."""
    eos = model.generation_config.eos_token_id
    ids = set(stop_ids(tokenizer))
    ids.update(eos if isinstance(eos, list) else [] if eos is None else [eos])
    return sorted(ids)


def hf_generate(directory: Path, text: str, images: Sequence, num_beams: int = 1, max_new_tokens: int = 8,
                stop: Sequence[int] | None = None) -> list[int]:
    """transformers' ``generate`` (greedy or beam search, no sampling, ``early_stopping=False``, length penalty
    0 for beams) on one prompt, stopping on ``stop`` (default ``protocol_stop_ids``): the new ids, the stop
    token kept when generated."""
    import torch

    model, processor = load(Path(directory))
    stops = list(stop) if stop is not None else protocol_stop_ids(model, processor.tokenizer)
    inputs = processor_inputs(processor, text, images)
    width = inputs["input_ids"].shape[1]
    beam = {"length_penalty": 0.0, "early_stopping": False} if num_beams > 1 else {}
    with torch.no_grad():
        out = model.generate(**inputs, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=stops, pad_token_id=processor.tokenizer.pad_token_id, **beam)
    row = out[0, width:].tolist()
    end = next((i + 1 for i, t in enumerate(row) if t in set(stops)), len(row))
    return row[:end]


def extend_inputs(inputs: dict, ids: Sequence[int]) -> dict:
    """``inputs`` with ``ids`` appended as ``generate`` extends them: attention mask ones, token-type inputs
    (``mm_token_type_ids``, ``token_type_ids``) zeros, Llama 3.2 Vision's ``cross_attention_mask`` its last row
    repeated."""
    import torch

    extra = torch.tensor([list(ids)], dtype=inputs["input_ids"].dtype)
    n, width, out = len(ids), inputs["input_ids"].shape[1], dict(inputs)
    out["input_ids"] = torch.cat([inputs["input_ids"], extra], 1)
    for key, value in inputs.items():
        if key == "input_ids" or not torch.is_tensor(value) or value.dim() < 2 or value.shape[1] != width:
            continue
        if key == "attention_mask":
            tail = torch.ones_like(extra, dtype=value.dtype)
        elif key == "cross_attention_mask":
            tail = value[:, -1:].expand(-1, n, *value.shape[2:])
        elif key.endswith("token_type_ids"):
            tail = torch.zeros((value.shape[0], n, *value.shape[2:]), dtype=value.dtype)
        else:
            raise ValueError(f"no rule to extend the per-token input {key!r}")
        out[key] = torch.cat([value, tail], 1)
    return out


def hf_ids_logprob(directory: Path, text: str, images: Sequence, ids: Sequence[int]) -> float:
    """Sum of the log-probabilities of ``ids`` appended to the prompt's ids, by one plain forward."""
    import torch

    model, processor = load(Path(directory))
    inputs = processor_inputs(processor, text, images)
    width, n = inputs["input_ids"].shape[1], len(ids)
    with torch.no_grad():
        logits = model(**extend_inputs(inputs, ids)).logits[0, width - 1: width - 1 + n].float()
    return float(torch.log_softmax(logits, -1)[torch.arange(n), torch.tensor(list(ids))].sum())


def hf_option_logprob(directory: Path, text: str, images: Sequence, option: str) -> float:
    """``hf_ids_logprob`` of the option tokenized alone (no special tokens)."""
    _, processor = load(Path(directory))
    return hf_ids_logprob(directory, text, images,
                          processor.tokenizer(option, add_special_tokens=False)["input_ids"])


__all__ = ["ARCHS", "BUILDERS", "build_tiny", "chat_messages", "extend_inputs", "hf_generate", "hf_ids_logprob",
           "hf_option_logprob", "image_placeholder", "load", "processor_inputs", "prompt_text",
           "protocol_stop_ids", "tiny_image"]
