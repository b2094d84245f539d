"""The RICES image encoder: open_clip's pooled, projected ``encode_image``, L2-normalised, fp32.

This is not the Flamingo's vision path (patch tokens): RICES ranks by the CLIP embedding, as OpenFlamingo
does.
The model loads on first use, so a fully cached run never builds it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from flamingo_eval.errors import ConfigError, WeightsError
from flamingo_eval.fingerprint import combined_sha256, file_sha256
from flamingo_eval.prompt import Image

DEFAULT_ENCODER = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"
LOCAL_DIR = "local-dir:"
_RANDOM_INIT_SEED = 0
_IDENTITY_VERSION = "rices-encode_image-l2-fp32-v1"


class ImageEncoder(Protocol):
    """What the feature cache needs from an encoder; tests substitute a cheap one."""

    name: str
    pretrained: str | None

    @property
    def identity(self) -> str:
        """A hash that changes whenever the features could change (architecture, weights, preprocessing)."""
        ...

    def encode_batches(self, images: Sequence[Image]) -> Iterator[np.ndarray]:
        """(batch, dim) fp32 L2-normalised features, in input order."""
        ...


def _looks_like_path(pretrained: str) -> bool:
    return os.sep in pretrained or pretrained.endswith((".bin", ".pt", ".pth", ".safetensors"))


class ClipEncoder:
    """open_clip image embeddings computed in batches, with a progress bar on stderr.

    ``pretrained``: an open_clip tag (``openai``), a local weights file, or None (random init with a fixed
    seed, for tests). ``name`` may be a built-in model name or ``local-dir:DIR`` (config + weights in DIR).
    Image decoding runs in ``num_workers`` threads so the model is not starved; 0 decodes inline.
    """

    def __init__(
        self,
        name: str = DEFAULT_ENCODER,
        pretrained: str | None = DEFAULT_PRETRAINED,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        num_workers: int = 4,
        progress: bool = True,
    ):
        if batch_size < 1:
            raise ConfigError(f"RICES batch size must be positive, got {batch_size}")
        self.name = name
        self.pretrained = pretrained or None
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.progress = progress
        self._identity: str | None = None
        self._model: Any = None
        self._preprocess: Any = None

    def describe(self) -> dict[str, Any]:
        return {"encoder": self.name, "pretrained": self.pretrained}

    # ---- identity: computed without building the model -------------------------------------------------

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = combined_sha256([_IDENTITY_VERSION, *self._identity_parts()])
        return self._identity

    def _identity_parts(self) -> list[str]:
        import open_clip

        if self.name.startswith(LOCAL_DIR):
            d = Path(self.name[len(LOCAL_DIR) :])
            config = d / "open_clip_config.json"
            if not config.is_file():
                raise WeightsError(
                    f"RICES encoder {self.name}: {config} not found (expected open_clip_config.json "
                    "and open_clip_model.safetensors)"
                )
            weights = sorted(p for p in d.iterdir() if p.suffix in (".safetensors", ".bin", ".pth"))
            if not weights:  # open_clip would only warn and run with random weights
                raise WeightsError(
                    f"RICES encoder {self.name}: no weights file (open_clip_model.safetensors) in {d}"
                )
            return ["local-dir", file_sha256(config), *(f"{p.name}:{file_sha256(p)}" for p in weights)]
        config = open_clip.get_model_config(self.name)
        if config is None:
            raise ConfigError(
                f"unknown RICES encoder {self.name!r}; use an open_clip model name "
                f"(e.g. {DEFAULT_ENCODER}) or local-dir:DIR"
            )
        parts = [self.name, json.dumps(config, sort_keys=True), f"quick_gelu={self._quick_gelu()}"]
        if self.pretrained is None:
            return [*parts, f"random-init-seed{_RANDOM_INIT_SEED}"]
        if Path(self.pretrained).is_file():
            return [*parts, "file", file_sha256(self.pretrained)]
        if _looks_like_path(self.pretrained):
            raise WeightsError(f"RICES encoder weights file not found: {self.pretrained}")
        if not open_clip.get_pretrained_cfg(self.name, self.pretrained):
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(self.name)) or "none"
            raise WeightsError(
                f"RICES encoder {self.name} has no pretrained tag {self.pretrained!r} (known: {tags}); "
                "or pass a local weights file"
            )
        return [*parts, "tag", self.pretrained]

    def _quick_gelu(self) -> bool:
        """OpenAI weights need QuickGELU; open_clip >= 2.24 no longer switches it on for the 'openai' tag."""
        if self.pretrained is None or self.name.startswith(LOCAL_DIR):
            return False
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.name, self.pretrained) or {}
        return bool(cfg.get("quick_gelu", False))

    # ---- the model -------------------------------------------------------------------------------------

    def _load(self) -> None:
        if self._model is not None:
            return
        import open_clip
        import torch

        self.identity  # noqa: B018 -- validates name and weights path before the slow build
        pretrained = self.pretrained if not self.name.startswith(LOCAL_DIR) else None
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_RANDOM_INIT_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.name, pretrained=pretrained, device=self.device, force_quick_gelu=self._quick_gelu()
                )
        except (RuntimeError, OSError, ValueError) as e:
            raise self._weights_error(e) from None
        self._model = model.eval()
        self._preprocess = preprocess

    def _weights_error(self, e: Exception) -> WeightsError:
        import open_clip

        what = f"{self.name}/{self.pretrained}" if self.pretrained else self.name
        if "state_dict" in str(e) or "size mismatch" in str(e):
            return WeightsError(f"RICES encoder weights {self.pretrained} do not match {self.name}")
        cfg = open_clip.get_pretrained_cfg(self.name, self.pretrained or "") or {}
        source = f"hf.co/{cfg['hf_hub'].rstrip('/')}" if cfg.get("hf_hub") else "its open_clip release"
        # A weights file carries no QuickGELU flag: OpenAI weights need the -quickgelu model name.
        name = (
            f"{self.name}-quickgelu"
            if cfg.get("quick_gelu") and not self.name.endswith("-quickgelu")
            else self.name
        )
        return WeightsError(
            f"cannot load RICES encoder weights {what} ({e.__class__.__name__}; offline?): "
            f"download the open_clip weights file from {source} and pass --rices-encoder {name} "
            "--rices-pretrained /path/to/open_clip_pytorch_model.bin"
        )

    def _pixels(self, image: Image):
        return self._preprocess(image.load())

    def encode_batches(self, images: Sequence[Image]) -> Iterator[np.ndarray]:
        import torch

        self._load()
        batches = [images[i : i + self.batch_size] for i in range(0, len(images), self.batch_size)]
        bar = _progress(len(images), self.progress)
        pool = ThreadPoolExecutor(self.num_workers) if self.num_workers > 0 else None

        def start(batch):
            return [pool.submit(self._pixels, im) for im in batch] if pool else batch

        def finish(pending):
            return [f.result() for f in pending] if pool else [self._pixels(im) for im in pending]

        try:
            pending = start(batches[0]) if batches else None
            for i in range(len(batches)):
                pixels = torch.stack(finish(pending))
                pending = start(batches[i + 1]) if i + 1 < len(batches) else None
                with torch.inference_mode():
                    feats = self._model.encode_image(pixels.to(self.device)).float()
                    feats = torch.nn.functional.normalize(feats, dim=-1)
                bar.update(len(pixels))
                yield feats.cpu().numpy().astype(np.float32, copy=False)
        finally:
            bar.close()
            if pool:
                pool.shutdown(wait=True, cancel_futures=True)


    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) fp32 L2-normalised CLIP text embeddings (``--rices-by text``: the query's question)."""
        import open_clip
        import torch

        self._load()
        tokenizer = open_clip.get_tokenizer(self.name)
        vocab = self._model.token_embedding.num_embeddings if hasattr(self._model, "token_embedding") else None
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = tokenizer(list(texts[start:start + self.batch_size]))
            if vocab is not None and int(tokens.max()) >= vocab:
                raise ConfigError(f"RICES encoder {self.name}: its text tower ({vocab} tokens) does not match "
                                  "its tokenizer; --rices-by text needs a CLIP with a real text encoder")
            with torch.inference_mode():
                feats = self._model.encode_text(tokens.to(self.device)).float()
                feats = torch.nn.functional.normalize(feats, dim=-1)
            out.append(feats.cpu().numpy().astype(np.float32, copy=False))
        dim = out[0].shape[1] if out else 0
        return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="RICES features",
        unit="img",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=1.0,
    )
