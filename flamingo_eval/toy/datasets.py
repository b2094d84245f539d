"""Write the seven toy tasks under a data root, in the real on-disk formats and the default layout.

The layout is the one tasks/*.yaml expects under --data-root (coco/, flickr30k/, vqav2/, okvqa/,
textvqa/, vizwiz/, hateful_memes/), so the real readers, metrics and CLI run on toy data unchanged.
Everything is a pure function of the seed: one ``random.Random`` stream per task, JSON written with
fixed key order, images encoded by Pillow without timestamps. ``ensure_toy_data`` regenerates only
when the stamp (generator version, seed, sizes) does not match.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from flamingo_eval.cache import cache_dir
from flamingo_eval.errors import DataError
from flamingo_eval.toy import language as lang
from flamingo_eval.toy.scenes import (
    COLOURS,
    IMAGE_SIZE,
    SHAPES,
    Scene,
    add_caption_band,
    draw_scene,
    draw_sign,
    obscure,
    sample_scene,
)

GENERATOR_VERSION = 4  # 4: the memes eval split is test_seen.jsonl (the task default), as the published tables
STAMP_FILE = ".flamingo-eval-toy.json"
# Each data set's word for each colour (see ``language.SYNONYMS``); VQAv2 and OK-VQA share COCO's, and
# TextVQA's signs use the generator's own words.
_COCO_NAMES = {"red": "crimson", "orange": "amber", "yellow": "golden", "green": "emerald", "blue": "navy",
               "purple": "violet"}
NAMES: dict[str, dict[str, str]] = {
    "coco": _COCO_NAMES, "vqav2": _COCO_NAMES, "okvqa": _COCO_NAMES,
    "flickr30k": {"red": "scarlet", "orange": "tangerine", "yellow": "lemon", "green": "olive", "blue": "azure",
                  "purple": "lilac"},
    "vizwiz": {"red": "ruby", "orange": "copper", "yellow": "mustard", "green": "jade", "blue": "cobalt",
               "purple": "plum"},
    "textvqa": {colour: colour for colour in COLOURS},
}
VIZWIZ_UNANSWERABLE = 0.3  # share of VizWiz photos that are blank or blurred

_LICENSE = {"url": "http://creativecommons.org/licenses/by/4.0/",
            "name": "Creative Commons Attribution 4.0 International License"}


@dataclass(frozen=True)
class Sizes:
    """Items per task: ``train`` in the demonstration pool, ``eval`` in the evaluated split."""

    train: int = 400
    eval: int = 100

    def __post_init__(self) -> None:
        if self.train < 1 or self.eval < 1:
            raise ValueError(f"toy data sizes must be positive, not {self}")

    @property
    def minor(self) -> int:
        """Karpathy's val and restval splits: present, small, never evaluated."""
        return max(1, self.eval // 5)


def _info(what: str) -> dict[str, Any]:
    return {"description": f"flamingo-eval toy data: {what}", "url": "", "version": str(GENERATOR_VERSION),
            "year": 2026, "contributor": "flamingo-eval", "date_created": "toy"}


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _save_jpeg(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=95, subsampling=0)


def _sentences(task: str, scene: Scene, rng: random.Random, imgid: int, first_sentid: int) -> list[dict[str, Any]]:
    raws = [lang.rename(raw, NAMES[task]) for raw in lang.captions(scene, rng)]
    return [{"tokens": raw.split(), "raw": raw, "imgid": imgid, "sentid": first_sentid + k}
            for k, raw in enumerate(raws)]


def _coco_caption_file(what: str, images: list[dict[str, Any]], annotations: list[dict[str, Any]],
                       **extra: Any) -> dict[str, Any]:
    return {"info": _info(what), "licenses": [{"id": 1, **_LICENSE}], **extra, "images": images,
            "annotations": annotations}


# ---------------------------------------------------------------------------------------------- captions

def write_coco(root: Path, rng: random.Random, sizes: Sizes) -> dict[str, list[tuple[int, Scene]]]:
    """Karpathy json + captions_val2014.json + images; returns (cocoid, scene) per image folder for VQA."""
    plan = [("train", "train2014", sizes.train), ("test", "val2014", sizes.eval),
            ("val", "val2014", sizes.minor), ("restval", "val2014", sizes.minor)]
    ids = rng.sample(range(1, 600_000), sum(n for _, _, n in plan))
    karpathy, ref_images, ref_anns = [], [], []
    by_folder: dict[str, list[tuple[int, Scene]]] = {"train2014": [], "val2014": []}
    for split, folder, n in plan:
        for _ in range(n):
            cocoid, imgid = ids[len(karpathy)], len(karpathy)
            scene = sample_scene(rng)
            filename = f"COCO_{folder}_{cocoid:012d}.jpg"
            _save_jpeg(draw_scene(scene), root / "coco" / folder / filename)
            sentences = _sentences("coco", scene, rng, imgid, imgid * 5)
            karpathy.append({"filepath": folder, "sentids": [s["sentid"] for s in sentences], "filename": filename,
                             "imgid": imgid, "split": split, "sentences": sentences, "cocoid": cocoid})
            by_folder[folder].append((cocoid, scene))
            if folder == "val2014":
                ref_images.append({"license": 1, "file_name": filename, "coco_url": "", "height": IMAGE_SIZE,
                                   "width": IMAGE_SIZE, "date_captured": "", "flickr_url": "", "id": cocoid})
                ref_anns.extend({"image_id": cocoid, "id": s["sentid"], "caption": s["raw"]} for s in sentences)
    _write_json(root / "coco" / "dataset_coco.json", {"images": karpathy, "dataset": "coco"})
    _write_json(root / "coco" / "captions_val2014.json",
                _coco_caption_file("COCO val2014 captions", ref_images, ref_anns))
    return by_folder


def write_flickr30k(root: Path, rng: random.Random, sizes: Sizes) -> None:
    """Karpathy json + COCO-style references whose image ids are the file-name stems (strings).

    OpenFlamingo scores Flickr predictions under ``filename.split(".")[0]`` and pycocotools only
    accepts results whose image ids are in the reference file, so the reference ids are those strings.
    """
    plan = [("train", sizes.train), ("val", sizes.minor), ("test", sizes.eval)]
    stems = rng.sample(range(1_000_000_000, 10_000_000_000), sum(n for _, n in plan))
    karpathy, ref_images, ref_anns = [], [], []
    for split, n in plan:
        for _ in range(n):
            imgid = len(karpathy)
            stem = str(stems[imgid])
            scene = sample_scene(rng)
            _save_jpeg(draw_scene(scene), root / "flickr30k" / "flickr30k-images" / f"{stem}.jpg")
            sentences = _sentences("flickr30k", scene, rng, imgid, imgid * 5)
            karpathy.append({"sentids": [s["sentid"] for s in sentences], "imgid": imgid, "sentences": sentences,
                             "split": split, "filename": f"{stem}.jpg"})
            ref_images.append({"id": stem, "file_name": f"{stem}.jpg", "height": IMAGE_SIZE, "width": IMAGE_SIZE})
            ref_anns.extend({"image_id": stem, "id": s["sentid"], "caption": s["raw"]} for s in sentences)
    _write_json(root / "flickr30k" / "dataset_flickr30k.json", {"images": karpathy, "dataset": "flickr30k"})
    _write_json(root / "flickr30k" / "dataset_flickr30k_coco_style.json",
                _coco_caption_file("Flickr30k captions, COCO style", ref_images, ref_anns, type="captions"))


# -------------------------------------------------------------------------------------------------- VQA

@dataclass(frozen=True)
class _VqaFormat:
    """How one VQA-format family spells its files: metadata and which per-answer fields it carries."""

    data_type: str
    task_type: str  # of the annotation file; question files are always "Open-Ended"
    answer_ids: bool = True
    answer_type: bool = True
    ok_vqa: bool = False  # OK-VQA adds raw_answer per answer and a per-question confidence


_VQAV2 = _VqaFormat("mscoco", "Open-Ended")
_OKVQA = _VqaFormat("mscoco", "Open-Ended", ok_vqa=True)
_TEXTVQA = _VqaFormat("TextVQA", "TextVQA", answer_type=False)
_VIZWIZ = _VqaFormat("VizWiz", "VizWiz", answer_ids=False, answer_type=False)


def _write_vqa(questions_path: Path, annotations_path: Path, fmt: _VqaFormat, subtype: str,
               items: list[tuple[int, int | str, lang.QA]], rng: random.Random,
               names: dict[str, str] | None = None) -> None:
    """One split's question and annotation files, in the data set's shape ``names``; entries are paired
    by position, as readers expect."""
    questions, annotations = [], []
    for qid, image_id, qa in items:
        given = lang.annotate(qa, rng)
        if names:
            qa = replace(qa, question=lang.rename(qa.question, names), answer=lang.rename(qa.answer, names))
            given = [lang.rename(a, names) for a in given]
        answers = []
        for k, a in enumerate(given, start=1):
            entry: dict[str, Any] = {"answer": a, "answer_confidence": "yes" if a == qa.answer else "maybe"}
            if fmt.ok_vqa:
                entry["raw_answer"] = a
            if fmt.answer_ids:
                entry["answer_id"] = k
            answers.append(entry)
        ann: dict[str, Any] = {"question_id": qid, "image_id": image_id, "question_type": qa.question_type}
        if fmt.answer_type:
            ann["answer_type"] = qa.answer_type
        ann["answers"] = answers
        ann["multiple_choice_answer"] = lang.majority(given, qa.answer)
        if fmt.ok_vqa:
            ann["confidence"] = 3
        questions.append({"image_id": image_id, "question": qa.question, "question_id": qid})
        annotations.append(ann)
    meta = {"info": _info(f"{fmt.data_type} {subtype}"), "license": _LICENSE, "data_subtype": subtype,
            "data_type": fmt.data_type}
    _write_json(questions_path, {**meta, "task_type": "Open-Ended", "questions": questions})
    _write_json(annotations_path, {**meta, "task_type": fmt.task_type, "annotations": annotations})


def write_vqav2(root: Path, rng: random.Random, sizes: Sizes, coco: dict[str, list[tuple[int, Scene]]]) -> None:
    """One question per COCO toy image (train2014 for the pool, val2014 for evaluation)."""
    d = root / "vqav2"
    for split, n in (("train2014", sizes.train), ("val2014", sizes.eval)):
        items = [(cocoid * 1000, cocoid, lang.vqav2_question(scene, rng)) for cocoid, scene in coco[split][:n]]
        _write_vqa(d / f"v2_OpenEnded_mscoco_{split}_questions.json", d / f"v2_mscoco_{split}_annotations.json",
                   _VQAV2, split, items, rng, NAMES["vqav2"])


def write_okvqa(root: Path, rng: random.Random, sizes: Sizes, coco: dict[str, list[tuple[int, Scene]]]) -> None:
    """Knowledge questions over the same COCO toy images."""
    d = root / "okvqa"
    for split, n in (("train2014", sizes.train), ("val2014", sizes.eval)):
        items = [(cocoid * 10 + 1, cocoid, lang.okvqa_question(scene, rng)) for cocoid, scene in coco[split][:n]]
        _write_vqa(d / f"OpenEnded_mscoco_{split}_questions.json", d / f"mscoco_{split}_annotations.json",
                   _OKVQA, split, items, rng, NAMES["okvqa"])


def write_textvqa(root: Path, rng: random.Random, sizes: Sizes) -> None:
    """Sign images with hex ids in one folder; question ids run on from train into val, as in TextVQA."""
    d = root / "textvqa"
    n_total = sizes.train + sizes.eval
    ids: list[str] = []
    while len(ids) < n_total:  # 64-bit ids; a repeat is astronomically rare but must not collide
        hex_id = f"{rng.getrandbits(64):016x}"
        if hex_id not in ids:
            ids.append(hex_id)
    qid = 0
    for split, n, subtype in (("train", sizes.train, "TextVQA-train"), ("val", sizes.eval, "TextVQA-validation")):
        items = []
        for _ in range(n):
            word_index = rng.randrange(len(lang.SIGN_WORDS))
            word = lang.SIGN_WORDS[word_index]
            sign_colour, icon = COLOURS[word_index % len(COLOURS)], SHAPES[word_index // len(COLOURS)]
            image_id = ids[qid]
            wall = rng.choice(("white", "gray", "black"))
            _save_jpeg(draw_sign(word, sign_colour, icon, wall), d / "train_images" / f"{image_id}.jpg")
            items.append((qid, image_id, lang.textvqa_question(word, sign_colour, rng)))
            qid += 1
        _write_vqa(d / f"{split}_questions_vqa_format.json", d / f"{split}_annotations_vqa_format.json",
                   _TEXTVQA, subtype, items, rng, NAMES["textvqa"])


def write_vizwiz(root: Path, rng: random.Random, sizes: Sizes) -> None:
    """Photos by 'blind users'; some blank or blurred, answered 'unanswerable'."""
    d = root / "vizwiz"
    for split, n, subtype in (("train", sizes.train, "VizWiz-train"), ("val", sizes.eval, "VizWiz-validation")):
        items = []
        for qid in range(n):
            scene = sample_scene(rng)
            answerable = rng.random() >= VIZWIZ_UNANSWERABLE
            img = draw_scene(scene)
            if not answerable:
                img = obscure(img, rng)
            image_id = f"VizWiz_{split}_{qid:08d}.jpg"
            _save_jpeg(img, d / split / image_id)
            items.append((qid, image_id, lang.vizwiz_question(scene, answerable, rng)))
        _write_vqa(d / f"{split}_questions_vqa_format.json", d / f"{split}_annotations_vqa_format.json",
                   _VIZWIZ, subtype, items, rng, NAMES["vizwiz"])


# ------------------------------------------------------------------------------------------------ memes

def write_hateful_memes(root: Path, rng: random.Random, sizes: Sizes) -> None:
    """jsonl rows {"id", "img", "label", "text"}; the label follows ``language.is_hateful``."""
    d = root / "hateful_memes"
    (d / "img").mkdir(parents=True, exist_ok=True)
    ids = rng.sample(range(1000, 100_000), sizes.train + sizes.eval)
    band = 20  # rows reserved for the overlay text, so it never hides the shapes
    for name, chunk in (("train.jsonl", ids[:sizes.train]), ("test_seen.jsonl", ids[sizes.train:])):
        rows = []
        for meme_id in chunk:
            scene = sample_scene(rng)
            text, _ = lang.meme_text(rng)
            img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (10, 10, 10))
            img.paste(draw_scene(scene, size=IMAGE_SIZE - band), (band // 2, band))
            rel = f"img/{meme_id:05d}.png"
            add_caption_band(img, text).save(d / rel, format="PNG")
            rows.append({"id": meme_id, "img": rel, "label": int(lang.is_hateful(text, scene.shape)), "text": text})
        (d / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ------------------------------------------------------------------------------------------ entry points

TASKS = ("coco", "flickr30k", "vqav2", "okvqa", "textvqa", "vizwiz", "hateful_memes")


def _stream(seed: int, task: str) -> random.Random:
    """An independent stream per task: resizing or changing one task leaves the others' bytes alone."""
    return random.Random(f"flamingo-eval-toy:{seed}:{task}")


def generate(root: Path, seed: int = 0, sizes: Sizes | None = None) -> dict[str, Any]:
    """Write all seven toy tasks under ``root``; the same seed and sizes give byte-identical files.

    Returns the manifest (generator version, seed, sizes, items per task and split), also written as
    the stamp file that ``ensure_toy_data`` checks. Files of an earlier, larger run in ``root`` are not
    removed: give an empty folder, or use ``ensure_toy_data``, which always generates into a fresh one.
    """
    root = Path(root)
    sizes = sizes or Sizes()
    root.mkdir(parents=True, exist_ok=True)
    coco = write_coco(root, _stream(seed, "coco"), sizes)
    write_flickr30k(root, _stream(seed, "flickr30k"), sizes)
    write_vqav2(root, _stream(seed, "vqav2"), sizes, coco)
    write_okvqa(root, _stream(seed, "okvqa"), sizes, coco)
    write_textvqa(root, _stream(seed, "textvqa"), sizes)
    write_vizwiz(root, _stream(seed, "vizwiz"), sizes)
    write_hateful_memes(root, _stream(seed, "hateful_memes"), sizes)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "sizes": asdict(sizes),
        "items": {
            "coco": {"train": sizes.train, "test": sizes.eval, "val": sizes.minor, "restval": sizes.minor},
            "flickr30k": {"train": sizes.train, "test": sizes.eval, "val": sizes.minor},
            **{t: {"train": sizes.train, "eval": sizes.eval} for t in TASKS[2:]},
        },
    }
    _write_json(root / STAMP_FILE, manifest)  # last: an interrupted run leaves no stamp
    return manifest


def _stamp(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(root: Path, seed: int, sizes: Sizes) -> bool:
    stamp = _stamp(root)
    return bool(stamp) and stamp.get("generator_version") == GENERATOR_VERSION and stamp.get("seed") == seed \
        and stamp.get("sizes") == asdict(sizes)


def default_root(seed: int = 0) -> Path:
    """Where the main command keeps toy data: the cache, one folder per generator version and seed."""
    return cache_dir("toy-data", f"v{GENERATOR_VERSION}-seed{seed}")


def ensure_toy_data(root: Path, seed: int = 0, sizes: Sizes | None = None) -> Path:
    """The toy data root, generated on first use and reused while its stamp matches.

    A stale toy root (older generator, other seed or sizes) is replaced; a non-empty folder without a
    stamp is refused rather than overwritten, since it may hold real data. Generation happens in a
    sibling temporary folder that is renamed into place, so a concurrent or interrupted run never
    leaves a half-written root behind a valid stamp.
    """
    root = Path(root)
    sizes = sizes or Sizes()
    if _is_current(root, seed, sizes):
        return root
    if root.exists() and any(root.iterdir()) and _stamp(root) is None:
        raise DataError(f"{root}: not empty and not toy data (no {STAMP_FILE}); refusing to overwrite it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        generate(tmp, seed, sizes)
        if _is_current(root, seed, sizes):  # another process finished first
            return root
        if root.exists():
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _is_current(root, seed, sizes):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root
