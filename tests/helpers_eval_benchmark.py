"""A tiny copy of the Hugging Face dataset openflamingo/eval_benchmark, made from the fixture data.

Paths are that repository's own (``mscoco_karpathy/karpathy_coco.json``, ``hatefulmemes/``, ...), stated here
independently of the fetch catalogue so the tests check its renames; files a run does not read are there too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "data"

# eval_benchmark path -> the fixture file with that content (None: a file no task reads)
EVAL_BENCHMARK: dict[str, str | None] = {
    "mscoco_karpathy/karpathy_coco.json": "coco/dataset_coco.json",
    "mscoco_karpathy/annotations/captions_val2014.json": "coco/captions_val2014.json",
    "mscoco_karpathy/annotations/captions_train2014.json": None,
    "mscoco_karpathy/annotations/instances_train2014.json": None,
    "flickr30k/dataset_flickr30k.json": "flickr30k/dataset_flickr30k.json",
    "flickr30k/dataset_flickr30k_coco_style.json": "flickr30k/dataset_flickr30k_coco_style.json",
    **{f"vqav2/{n}": f"vqav2/{n}" for n in (
        "v2_OpenEnded_mscoco_train2014_questions.json", "v2_OpenEnded_mscoco_val2014_questions.json",
        "v2_OpenEnded_mscoco_test-dev2015_questions.json", "v2_OpenEnded_mscoco_test2015_questions.json",
        "v2_mscoco_train2014_annotations.json", "v2_mscoco_val2014_annotations.json")},
    **{f"okvqa/{n}": f"okvqa/{n}" for n in (
        "OpenEnded_mscoco_train2014_questions.json", "OpenEnded_mscoco_val2014_questions.json",
        "mscoco_train2014_annotations.json", "mscoco_val2014_annotations.json")},
    **{f"{d}/{s}_{k}_vqa_format.json": f"{d}/{s}_{k}_vqa_format.json"
       for d in ("textvqa", "vizwiz") for s in ("train", "val") for k in ("questions", "annotations")},
    "vizwiz/test_questions_vqa_format.json": "vizwiz/test_questions_vqa_format.json",
    "hatefulmemes/train.jsonl": "hateful_memes/train.jsonl",
    "hatefulmemes/test_seen.jsonl": "hateful_memes/test_seen.jsonl",
}

# the image folders of the fixture data, which a user unpacks from the official archives
IMAGE_FOLDERS = ("coco/train2014", "coco/val2014", "coco/test2015", "flickr30k/flickr30k-images",
                 "textvqa/train_images", "vizwiz/train", "vizwiz/val", "vizwiz/test", "hateful_memes/img")


def make_eval_benchmark(dest: Path) -> Path:
    for repo_path, fixture in EVAL_BENCHMARK.items():
        target = dest / repo_path
        target.parent.mkdir(parents=True, exist_ok=True)
        if fixture is None:
            target.write_text("{}\n")
        else:
            shutil.copyfile(FIXTURES / fixture, target)
    return dest


def unpack_images(data_root: Path, folders: tuple[str, ...] = IMAGE_FOLDERS) -> None:
    """What unpacking the image archives gives: the fixture's image folders under the data root."""
    for folder in folders:
        shutil.copytree(FIXTURES / folder, data_root / folder, dirs_exist_ok=True)
