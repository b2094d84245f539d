"""RICES image features, computed once per unique image and cached on disk in two layers.

Layer 1, per split: ``cache_dir("rices", <encoder>, "splits", <fingerprint>)`` holds the split's feature
matrix, keyed by the encoder identity and the split's content fingerprint, so a repeated run loads one file
(after checking every image file's size and mtime, which a split fingerprint does not cover).
Layer 2, per image: ``cache_dir("rices", <encoder>, "images")`` holds features by image key, each checked
against the image file's size and mtime, so splits that share images (VQAv2, OK-VQA and COCO captions all
use COCO train2014) compute each image once, and a changed image is recomputed. Layer 2 is written in shards
as the encoder goes, so an interrupted run keeps its finished work.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flamingo_eval.cache import cache_dir
from flamingo_eval.data.sample import Sample
from flamingo_eval.demos.encoder import ImageEncoder
from flamingo_eval.errors import BadImageError, DataError
from flamingo_eval.prompt import Image

FLUSH_EVERY = 8192  # images per layer-2 shard: bounds the work lost to an interruption


@dataclass(frozen=True)
class ImageTable:
    """A split's unique images, in order of first appearance, and each sample's row among them."""

    keys: list[str]
    images: list[Image]
    rows: np.ndarray  # sample index -> image row (int64)

    def __len__(self) -> int:
        return len(self.keys)


def image_table(samples: Sequence[Sample]) -> ImageTable:
    """Questions sharing an image share one row, so each image is encoded and searched once."""
    index: dict[str, int] = {}
    images: list[Image] = []
    rows = np.empty(len(samples), dtype=np.int64)
    for i, s in enumerate(samples):
        key = s.image.key
        row = index.get(key)
        if row is None:
            row = index[key] = len(images)
            images.append(s.image)
        rows[i] = row
    return ImageTable(keys=list(index), images=images, rows=rows)


def encoder_cache_dir(encoder: ImageEncoder) -> Path:
    return cache_dir("rices", encoder.identity[:32])


def split_cache_path(encoder: ImageEncoder, fingerprint: str) -> Path:
    """Layer 1's matrix for a split (``.npy``; the ``.json`` beside it hashes its image keys and stamps)."""
    slug = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    return encoder_cache_dir(encoder) / "splits" / f"{slug}.npy"


def image_features(table: ImageTable, fingerprint: str | None, encoder: ImageEncoder) -> np.ndarray:
    """(len(table), dim) fp32 L2-normalised features, one row per unique image.

    ``fingerprint``: the content hash of the data the table came from; None skips layer 1 (single queries).
    """
    stamps = [image_stamp(im) for im in table.images]
    images_hash = _images_hash(table.keys, stamps)
    if fingerprint is not None:
        cached = _load_split(split_cache_path(encoder, fingerprint), images_hash)
        if cached is not None:
            return cached
    feats = _features_via_store(table, stamps, encoder)
    if fingerprint is not None:
        _save_split(split_cache_path(encoder, fingerprint), feats, images_hash, encoder)
    return feats


def sample_features(samples: Sequence[Sample], fingerprint: str | None, encoder: ImageEncoder) -> np.ndarray:
    """Per-sample features (rows repeat for samples sharing an image)."""
    table = image_table(samples)
    return image_features(table, fingerprint, encoder)[table.rows]


def text_features(texts: Sequence[str], encoder: ImageEncoder) -> np.ndarray:
    """(len(texts), dim) CLIP text features (``--rices-by text``), cached by the encoder and a hash of the texts,
    so a repeated run loads one file; each distinct text is encoded once."""
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()
    path = encoder_cache_dir(encoder) / "texts" / f"{digest[:32]}.npy"
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        if meta.get("texts_sha256") == digest:
            return np.load(path)
    except (FileNotFoundError, ValueError, OSError):
        pass
    unique = list(dict.fromkeys(texts))
    feats = encoder.encode_texts(unique)
    row = {t: i for i, t in enumerate(unique)}
    out = feats[[row[t] for t in texts]] if len(texts) else feats
    _atomic_save(path, out, {"texts_sha256": digest, "texts": len(texts), "encoder": encoder.name,
                             "encoder_id": encoder.identity})
    return out


# ---- layer 1 ---------------------------------------------------------------------------------------------


def _images_hash(keys: list[str], stamps: list[str]) -> str:
    """Guards layer 1 against what a split fingerprint does not cover: the image files themselves."""
    h = hashlib.sha256()
    for key, stamp in zip(keys, stamps, strict=True):
        h.update(f"{key}\t{stamp}\n".encode())
    return h.hexdigest()


def _load_split(path: Path, images_hash: str) -> np.ndarray | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        if meta.get("images_sha256") != images_hash:
            return None
        return np.load(path)
    except (FileNotFoundError, ValueError, OSError):
        return None


def _save_split(path: Path, feats: np.ndarray, images_hash: str, encoder: ImageEncoder) -> None:
    meta = {
        "images_sha256": images_hash,
        "images": int(feats.shape[0]),
        "dim": int(feats.shape[1]),
        "encoder": encoder.name,
        "pretrained": encoder.pretrained,
        "encoder_id": encoder.identity,
    }
    _atomic_save(path, feats, meta)


def _atomic_save(npy: Path, feats: np.ndarray, meta: dict) -> None:
    """The .json is written last: a reader trusts a matrix only when its sidecar exists."""
    npy.parent.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_name(f".{npy.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(feats, dtype=np.float32))
    os.replace(tmp, npy)
    tmp_meta = tmp.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, npy.with_suffix(".json"))


# ---- layer 2 ---------------------------------------------------------------------------------------------


def image_stamp(image: Image) -> str:
    """What must not change for a cached feature to stay valid: the file's size and mtime, or the pixels."""
    if image.path is not None:
        try:
            st = os.stat(image.path)
        except FileNotFoundError:
            raise BadImageError(image.path, "file not found") from None
        return f"file:{st.st_size}:{st.st_mtime_ns}"
    if image.pil is not None:
        pil = image.pil
        digest = hashlib.sha256(pil.tobytes()).hexdigest()[:32]
        return f"pixels:{pil.mode}:{pil.size[0]}x{pil.size[1]}:{digest}"
    raise BadImageError(image.key, "no path and no pixels")


class FeatureStore:
    """Features by image key for one encoder, in shards of (``.npy`` matrix, ``.json`` keys and stamps)."""

    def __init__(self, root: Path):
        self.root = root

    def _entries(self) -> dict[str, tuple[Path, int, str]]:
        entries: dict[str, tuple[Path, int, str]] = {}
        metas = []
        for meta_path in self.root.glob("shard-*.json"):
            try:
                metas.append(
                    (
                        meta_path.stat().st_mtime_ns,
                        meta_path.name,
                        meta_path,
                        json.loads(meta_path.read_text()),
                    )
                )
            except (OSError, ValueError):
                continue  # removed or half-written by another process: not trusted
        for _, _, meta_path, meta in sorted(metas, key=lambda m: m[:2]):  # newer shards win
            npy = meta_path.with_suffix(".npy")
            try:
                for row, (key, stamp) in enumerate(zip(meta["keys"], meta["stamps"], strict=True)):
                    entries[key] = (npy, row, stamp)
            except (KeyError, TypeError, ValueError):
                continue
        return entries

    def lookup(self, keys: Sequence[str], stamps: Sequence[str]) -> dict[int, np.ndarray]:
        """Position in ``keys`` -> cached feature, for the keys whose stamp still matches."""
        entries = self._entries()
        wanted: dict[Path, list[tuple[int, int]]] = {}
        for i, (key, stamp) in enumerate(zip(keys, stamps, strict=True)):
            hit = entries.get(key)
            if hit is not None and hit[2] == stamp:
                wanted.setdefault(hit[0], []).append((i, hit[1]))
        found: dict[int, np.ndarray] = {}
        for npy, pairs in wanted.items():
            try:
                matrix = np.load(npy, mmap_mode="r")
            except (OSError, ValueError):
                continue
            rows = matrix[np.array([r for _, r in pairs])]
            for (i, _), feat in zip(pairs, rows, strict=True):
                found[i] = np.asarray(feat, dtype=np.float32)
        return found

    def add(self, keys: Sequence[str], stamps: Sequence[str], feats: np.ndarray) -> None:
        _atomic_save(
            self.root / f"shard-{uuid.uuid4().hex}.npy", feats, {"keys": list(keys), "stamps": list(stamps)}
        )


def _features_via_store(table: ImageTable, stamps: list[str], encoder: ImageEncoder) -> np.ndarray:
    store = FeatureStore(encoder_cache_dir(encoder) / "images")
    found = store.lookup(table.keys, stamps)
    missing = [i for i in range(len(table)) if i not in found]
    computed: dict[int, np.ndarray] = {}
    if missing:
        pending: list[int] = []
        pending_feats: list[np.ndarray] = []
        done = 0
        for batch in encoder.encode_batches([table.images[i] for i in missing]):
            idx = missing[done : done + len(batch)]
            done += len(batch)
            pending.extend(idx)
            pending_feats.append(batch)
            if len(pending) >= FLUSH_EVERY or done == len(missing):
                block = np.concatenate(pending_feats)
                store.add([table.keys[i] for i in pending], [stamps[i] for i in pending], block)
                computed.update(zip(pending, block, strict=True))
                pending, pending_feats = [], []
        if done != len(missing):
            raise DataError(f"RICES encoder returned {done} features for {len(missing)} images")
    dim = next(iter(found.values() or computed.values())).shape[-1] if len(table) else 0
    out = np.empty((len(table), dim), dtype=np.float32)
    for i in range(len(table)):
        out[i] = found[i] if i in found else computed[i]
    return out
