"""Image archives: download with progress (resuming a ``.part`` file), verify, unpack into the data root.

Only openly licensed archives are fetched (COCO 2014/2015, VizWiz, TextVQA); licence-gated or request-form
sets get their instructions instead. An archive is checked against its published SHA-256 where one exists,
else against its published size, else against the length the server announced; a mismatch deletes it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from flamingo_eval.data_setup.catalogue import ImageSource
from flamingo_eval.errors import DataError, UserError

_CHUNK = 1 << 20


def _bar(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=not enabled, dynamic_ncols=True, mininterval=1.0)


def download(url: str, dest: Path, expected_bytes: int | None = None, progress: bool = True) -> Path:
    """``url`` to ``dest``; an interrupted download continues from its ``.part`` file where the server allows."""
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot download {url} ({e.__class__.__name__}: {e})") from None
    with resp:
        if start and getattr(resp, "status", None) != 206:
            start = 0  # the server sends the whole file again
        length = resp.headers.get("Content-Length")
        total = expected_bytes or (start + int(length) if length else None)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "ab" if start else "wb") as f, _bar(total, start, dest.name, progress) as bar:
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got != total:
        raise DataError(f"{url}: got {got:,} bytes, expected {total:,}; run the same command again to resume")
    os.replace(part, dest)
    return dest


def sha256_of(path: Path, progress: bool = True) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f, _bar(path.stat().st_size, 0, f"checking {path.name}", progress) as bar:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def verify(path: Path, source: ImageSource, progress: bool = True) -> str:
    """The archive's SHA-256, after checking it (and its size) against the published values."""
    size = path.stat().st_size
    if source.bytes is not None and size != source.bytes:
        path.unlink()
        raise DataError(f"{path}: {size:,} bytes, but {source.url} is {source.bytes:,}; deleted, run again")
    digest = sha256_of(path, progress)
    if source.sha256 is not None and digest != source.sha256:
        path.unlink()
        raise DataError(f"{path}: SHA-256 {digest} does not match the published {source.sha256}; deleted, run again")
    return digest


def unpack(archive: Path, target: Path, top: str, progress: bool = True) -> int:
    """Extract a zip whose entries lie under ``top/`` into ``target`` (so ``target/top`` appears); refuses entries
    that would land elsewhere (macOS's ``__MACOSX/`` metadata is skipped). Returns the number of files."""
    target = target.resolve()
    with zipfile.ZipFile(archive) as z:
        members = [m for m in z.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        for m in members:
            parts = PurePosixPath(m.filename).parts
            if not parts or parts[0] != top or ".." in parts or m.filename.startswith("/"):
                raise DataError(f"{archive}: entry {m.filename!r} is not under {top}/; not unpacked")
        with _bar(len(members), 0, f"unpacking {archive.name}", progress) as bar:
            for m in members:
                z.extract(m, target)
                bar.update(1)
    return len(members)


def fetch_hub_zips(source: ImageSource, data_root: Path) -> str:
    """A Hugging Face dataset's zips (VL-ICL's ``<task>/support.zip``...), each unpacked into the folder as its
    own ``unzip -d <task>`` does: a zip named ``support.zip`` must hold ``support/...``."""
    from huggingface_hub import hf_hub_download

    dest = Path(data_root) / source.folder
    n = 0
    for name in source.hub_zips:
        try:
            archive = hf_hub_download(repo_id=source.hub_repo, filename=name, repo_type="dataset")
        except Exception as e:  # network, authentication or hub errors: one line
            raise UserError(f"cannot download {name} from the Hugging Face dataset {source.hub_repo} "
                            f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})") from None
        n += unpack(Path(archive), dest, PurePosixPath(name).stem, progress=False)
    return f"  unpacked {source.folder}: {n:,} files from {', '.join(source.hub_zips)} of {source.hub_repo}"


def fetch_listed(source: ImageSource, data_root: Path, progress: bool = True) -> str:
    """Each image a COCO-format file lists (``coco_url`` -> ``<folder>/<file_name>``), skipping those present, so
    an interrupted fetch continues where it stopped."""
    from flamingo_eval.data.jsonio import field, list_field, load_json

    listing = Path(data_root) / source.listed_in
    if not listing.is_file():
        raise UserError(f"{source.folder}: its images are listed in {listing}, which is not there yet; "
                        f"fetch the annotations first")
    dest = Path(data_root) / source.folder
    wanted = []
    for i, image in enumerate(list_field(load_json(listing), "images", listing)):
        name = PurePosixPath(str(field(image, "file_name", listing, f"images[{i}]"))).name
        wanted.append((str(field(image, "coco_url", listing, f"images[{i}]")), dest / name))
    todo = [(url, path) for url, path in wanted if not path.is_file()]
    with _bar(len(wanted), len(wanted) - len(todo), source.folder, progress) as bar:
        for url, path in todo:
            download(url, path, progress=False)
            bar.update(1)
    return f"  fetched  {source.folder}: {len(todo):,} images ({len(wanted) - len(todo):,} already there) " \
           f"from the URLs in {source.listed_in}"


def fetch_images(source: ImageSource, data_root: Path, progress: bool = True) -> str:
    """Download, verify and unpack one folder's archive; returns a line saying what was done."""
    if source.hub_zips:
        return fetch_hub_zips(source, data_root)
    if source.listed_in:
        return fetch_listed(source, data_root, progress)
    if source.url is None or source.unpacks_to is None:
        raise UserError(f"{source.folder}: {source.instructions}")
    dest = Path(data_root) / source.folder
    archive = dest.parent / PurePosixPath(source.url).name
    download(source.url, archive, source.bytes, progress)
    digest = verify(archive, source, progress)
    n = unpack(archive, dest.parent, source.unpacks_to, progress)
    if source.unpacks_to != dest.name:
        os.replace(dest.parent / source.unpacks_to, dest)
    archive.unlink()
    checked = "published SHA-256" if source.sha256 else "size" if source.bytes else "length sent"
    return f"  unpacked {source.folder}: {n:,} files from {source.url} ({checked} checked; sha256 {digest})"
