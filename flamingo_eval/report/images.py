"""Image keys -> files -> the small JPEGs the report shows (or links to the originals with --link-images).

A sample names its images by key, which is the image's path in the default data layout
(``coco/train2014/COCO_train2014_000000391895.jpg``); the result file records where each data key resolved
in that run. Thumbnails are made once per image (keyed by the image key and the file's identity, so two toy
data sets that reuse a key never share a thumbnail), cached under the flamingo-eval cache and linked into the
report, so a report is portable and a second report of the same images costs nothing. A missing or
undecodable image is counted, never fatal: the page shows a placeholder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from flamingo_eval.cache import cache_dir

THUMB_PX = 160  # longest side
THUMB_QUALITY = 80
THUMBS_DIR = "thumbs"


class ImageResolver:
    """Image key -> file. ``--data-root D`` looks for ``D/<key>`` first (data moved or copied elsewhere); then
    the folder the run read, from the result's ``data_paths``; results without them fall back to
    ``./data/<key>`` (the run's default --data-root)."""

    def __init__(self, data_paths: dict[str, str] | None, data_root: str | Path | None = None):
        self.data_root = Path(data_root) if data_root is not None else None
        self.prefixes = sorted((data_paths or {}).items(), key=lambda kv: -len(kv[0]))

    def candidates(self, key: str) -> list[Path]:
        out = []
        if self.data_root is not None:
            out.append(self.data_root / key)
        for prefix, folder in self.prefixes:
            if key.startswith(prefix + "/"):
                out.append(Path(folder) / key[len(prefix) + 1:])
                break
        if not out:
            out.append(Path("data") / key)
        return out

    def resolve(self, key: str) -> Path | None:
        for path in self.candidates(key):
            if path.is_file():
                return path
        return None


@dataclass
class ImageStats:
    images: int = 0  # distinct images the report shows
    missing: int = 0  # no file found
    failed: int = 0  # found but not decodable
    made: int = 0  # thumbnails made now
    reused: int = 0  # from the cache or an earlier report in the same folder
    linked: bool = False
    missing_examples: list[str] = field(default_factory=list)
    failed_examples: list[str] = field(default_factory=list)


def thumbnail_name(key: str, path: Path) -> str:
    """The image key plus the file's identity: a changed or different file gets a new thumbnail."""
    st = path.stat()
    ident = f"{key}\0{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{THUMB_PX}\0{THUMB_QUALITY}"
    return hashlib.sha1(ident.encode()).hexdigest()[:20]


def make_thumbnail(src: Path, dst: Path) -> None:
    """A JPEG of at most THUMB_PX on its longest side; written atomically."""
    from PIL import Image

    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with Image.open(src) as im:
            im.draft("RGB", (THUMB_PX, THUMB_PX))  # JPEG decodes at a reduced scale: much faster for big photos
            im = im.convert("RGB")
            im.thumbnail((THUMB_PX, THUMB_PX))
            dst.parent.mkdir(parents=True, exist_ok=True)
            im.save(tmp, "JPEG", quality=THUMB_QUALITY)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def default_url(key: str) -> str | None:
    """Where a key's thumbnail lies in the report, derivable by the page (so data files need not say it):
    ``thumbs/<key>`` (``.jpg`` added unless it ends so). None for keys that cannot be a relative path."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        return None
    return f"{THUMBS_DIR}/{key if key.lower().endswith('.jpg') else key + '.jpg'}"


class Thumbnails:
    """Hands out the URL a page uses for an image key, and makes the thumbnails behind those URLs.

    A thumbnail lies at ``default_url(key)``; a second file under a key already taken in this report (two toy
    data sets, say) and keys that are not plain relative paths get ``thumbs/_/<hash>.jpg`` instead.
    """

    def __init__(self, out_dir: Path, link: bool = False, cache: Path | None = None):
        self.out_dir = out_dir
        self.link = link
        self.cache = cache or cache_dir("thumbnails", f"{THUMB_PX}px")
        self.stats = ImageStats(linked=link)
        self._refs: dict[tuple[ImageResolver, str], str | None] = {}
        self._todo: dict[str, tuple[str, Path]] = {}  # url in the report -> (cache name, source)
        self._seen: set[tuple[str, str]] = set()

    def ref(self, key: str, resolver: ImageResolver) -> str | None:
        """The page-relative URL (or file URL, when linking) of the image; None when its file is missing."""
        memo = (resolver, key)  # the resolver itself: it stays alive, so its identity is never reused
        if memo in self._refs:
            return self._refs[memo]
        path = resolver.resolve(key)
        seen = (key, str(path))
        if seen not in self._seen:  # tasks over the same images (COCO, VQAv2, OK-VQA) count them once
            self._seen.add(seen)
            self.stats.images += 1
            self.stats.missing += path is None
        if path is None:
            if len(self.stats.missing_examples) < 5:
                self.stats.missing_examples.append(" or ".join(str(c) for c in resolver.candidates(key)))
            url = None
        elif self.link:
            url = path.resolve().as_uri()
        else:
            name = thumbnail_name(key, path)
            url = default_url(key)
            if url is None or (url in self._todo and self._todo[url][0] != name):
                url = f"{THUMBS_DIR}/_/{name}.jpg"
            self._todo[url] = (name, path)
        self._refs[memo] = url
        return url

    def make(self, progress: bool = True, workers: int | None = None) -> ImageStats:
        """Make every thumbnail handed out (from the cache when it has it), link it into the report, and remove
        thumbnails of an earlier report that this one no longer shows."""
        from tqdm import tqdm

        todo = sorted(self._todo.items())
        bar = tqdm(total=len(todo), desc="thumbnails", unit="img", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True, mininterval=1.0)

        def one(job: tuple[str, tuple[str, Path]]) -> tuple[str, Path]:
            url, (name, src) = job
            dst = self.out_dir / url
            cached = self.cache / name[:2] / f"{name}.jpg"
            status = "reused"
            if not cached.is_file():
                try:
                    make_thumbnail(src, cached)
                except (OSError, ValueError, SyntaxError):  # PIL's decode errors are OSError subclasses
                    dst.unlink(missing_ok=True)
                    return "failed", src
                status = "made"
            elif dst.is_file() and os.path.samefile(dst, cached):
                return status, src
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(cached, tmp)
            except OSError:
                shutil.copyfile(cached, tmp)
            os.replace(tmp, dst)
            return status, src

        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            for status, src in pool.map(one, todo):
                if status == "made":
                    self.stats.made += 1
                elif status == "reused":
                    self.stats.reused += 1
                else:
                    self.stats.failed += 1
                    if len(self.stats.failed_examples) < 5:
                        self.stats.failed_examples.append(str(src))
                bar.update(1)
        bar.close()
        self._prune()
        return self.stats

    def _prune(self) -> None:
        root = self.out_dir / THUMBS_DIR
        if not root.is_dir():
            return
        keep = {str(self.out_dir / url) for url in self._todo}
        for folder, _, names in os.walk(root, topdown=False):
            for n in names:
                if os.path.join(folder, n) not in keep:
                    os.unlink(os.path.join(folder, n))
            if folder != str(root) and not os.listdir(folder):
                os.rmdir(folder)
