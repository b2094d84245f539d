"""Where every file of the default data layout comes from, and how big each published split is.

Keyed by the layout's own paths (what ``flamingo-eval ls tasks`` prints), so the tasks sharing a file or an
image folder (COCO's images serve coco, vqav2 and okvqa) share its entry.

- ``ANNOTATIONS``: layout path -> its path in the Hugging Face dataset repo ``openflamingo/eval_benchmark``
  (the annotation files OpenFlamingo evaluates with; no images). Names differ where that repo renamed them.
- ``IMAGES``: layout folder -> where its images come from (and, for COCO, each image's own address on the
  COCO site, the ``coco_url`` its annotations give, so a few missing images need not cost the archive). Archive sizes and SHA-256 sums of COCO are those
  TensorFlow Datasets records for the same URLs; the other sites publish neither, so only the server's length
  is checked there.
- ``OTHER_ANNOTATIONS``: layout path -> where a file eval_benchmark lacks comes from (NoCaps and TextCaps
  from their official URLs, VL-ICL's JSON from its Hugging Face dataset).
- ``EXPECTED_ITEMS``: (task, "demo" | "eval") -> the number of items of the published split.
"""

from __future__ import annotations

from dataclasses import dataclass

from flamingo_eval.task import VARIANT_SEP

HUB_REPO = "openflamingo/eval_benchmark"

ANNOTATIONS: dict[str, str] = {
    "coco/dataset_coco.json": "mscoco_karpathy/karpathy_coco.json",
    "coco/captions_val2014.json": "mscoco_karpathy/annotations/captions_val2014.json",
    "flickr30k/dataset_flickr30k.json": "flickr30k/dataset_flickr30k.json",
    "flickr30k/dataset_flickr30k_coco_style.json": "flickr30k/dataset_flickr30k_coco_style.json",
    **{f"vqav2/v2_OpenEnded_mscoco_{s}_questions.json": f"vqav2/v2_OpenEnded_mscoco_{s}_questions.json"
       for s in ("train2014", "val2014", "test-dev2015", "test2015")},
    **{f"vqav2/v2_mscoco_{s}_annotations.json": f"vqav2/v2_mscoco_{s}_annotations.json"
       for s in ("train2014", "val2014")},
    **{f"okvqa/{name}": f"okvqa/{name}" for s in ("train2014", "val2014")
       for name in (f"OpenEnded_mscoco_{s}_questions.json", f"mscoco_{s}_annotations.json")},
    **{f"{d}/{s}_{kind}_vqa_format.json": f"{d}/{s}_{kind}_vqa_format.json" for d in ("textvqa", "vizwiz")
       for s in ("train", "val") for kind in ("questions", "annotations")},
    "vizwiz/test_questions_vqa_format.json": "vizwiz/test_questions_vqa_format.json",
    "hateful_memes/train.jsonl": "hatefulmemes/train.jsonl",
    "hateful_memes/test_seen.jsonl": "hatefulmemes/test_seen.jsonl",
}


@dataclass(frozen=True)
class ImageSource:
    """A layout folder's images: an archive ``--images`` may fetch (``url``), or ``instructions`` for a user
    to follow where a licence or a request form stands in between."""

    folder: str
    size: str
    url: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    unpacks_to: str | None = None  # the archive's top-level folder
    licence: str = ""
    instructions: str = ""
    holds: str = ""  # the sub-folder the images are in, where not the folder itself (HatefulMemes' img/)
    file_url: str | None = None  # one image's official address, ``{name}`` standing for its file name
    hub_repo: str | None = None  # a Hugging Face dataset whose zips ``hub_zips`` unpack into the folder (VL-ICL)
    hub_zips: tuple[str, ...] = ()
    listed_in: str | None = None  # a COCO-format file whose images[] give each image's URL (NoCaps' coco_url)


_COCO_SITE = "images.cocodataset.org"
_COCO = f"{_COCO_SITE}/zips"
_COCO_LICENCE = "COCO terms of use"
_VIZWIZ = "https://vizwiz.cs.colorado.edu/VizWiz_final/images"
_VIZWIZ_LICENCE = "CC BY 4.0"

IMAGES: dict[str, ImageSource] = {
    "coco/train2014": ImageSource(
        "coco/train2014", "13.5 GB, 82,783 images", f"http://{_COCO}/train2014.zip", 13_510_573_713,
        "ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775", "train2014", _COCO_LICENCE,
        file_url=f"http://{_COCO_SITE}/train2014/{{name}}"),
    "coco/val2014": ImageSource(
        "coco/val2014", "6.6 GB, 40,504 images", f"http://{_COCO}/val2014.zip", 6_645_013_297,
        "fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0", "val2014", _COCO_LICENCE,
        file_url=f"http://{_COCO_SITE}/val2014/{{name}}"),
    "coco/test2015": ImageSource(
        "coco/test2015", "13.3 GB, 81,434 images", f"http://{_COCO}/test2015.zip", 13_270_587_935,
        "1a2aa896b81140a850a78fa8bff07d455698d2abf364ff05721763458a8101ca", "test2015", _COCO_LICENCE,
        file_url=f"http://{_COCO_SITE}/test2015/{{name}}"),
    "textvqa/train_images": ImageSource(
        "textvqa/train_images", "7.1 GB, train and val images together",
        "https://dl.fbaipublicfiles.com/textvqa/images/train_val_images.zip", unpacks_to="train_images",
        licence="CC BY 2.0 (Open Images)"),
    **{f"vizwiz/{s}": ImageSource(f"vizwiz/{s}", f"{n:,} images (size not published)", f"{_VIZWIZ}/{s}.zip",
                                  unpacks_to=s, licence=_VIZWIZ_LICENCE)
       for s, n in (("train", 20_523), ("val", 4_319), ("test", 8_000))},
    "flickr30k/flickr30k-images": ImageSource(
        "flickr30k/flickr30k-images", "4.4 GB, 31,783 images",
        instructions="Flickr30K images are given out through a request form: "
                     "https://shannon.cs.illinois.edu/DenotationGraph/ (the Hugging Face dataset nlphuji/flickr30k "
                     "also holds flickr30k-images.zip); unpack it so that flickr30k/flickr30k-images/<id>.jpg exist"),
    "hateful_memes": ImageSource(
        "hateful_memes", "size given on the challenge site",
        instructions="HatefulMemes is licence-gated: accept Meta's licence at https://hatefulmemeschallenge.com "
                     "and download the phase-2 data; unpack it so that hateful_memes/img/<id>.png exist (and "
                     "dev_seen.jsonl, which openflamingo/eval_benchmark lacks, beside train.jsonl)",
        holds="img"),
    **{f"imagenet/{s}": ImageSource(
        f"imagenet/{s}", size, licence="ImageNet terms of access (non-commercial research)",
        instructions="ImageNet is gated: accept its terms at https://image-net.org (or on the Hugging Face "
                     "dataset ILSVRC/imagenet-1k). From image-net.org: download ILSVRC2012 and arrange it as "
                     "ImageFolder trees, imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG (the flat val "
                     "archive sorted into class folders by the devkit's labels). From ILSVRC/imagenet-1k: download "
                     "its parquet shards (data/train-*.parquet, data/validation-*.parquet) and run `flamingo-eval "
                     "data unpack imagenet --from DIR --data-root <data-root>`, which writes "
                     "imagenet/{train,val}/<label>/<file> with the folders named by the label as 4 digits "
                     "(0000-0999), so their sorted order is the label order")
       for s, size in (("train", "138 GB, 1,281,167 images"), ("val", "6.3 GB, 50,000 images"))},
}

VLICL_REPO = "ys-zong/VL-ICL"
VLICL_TASKS = ("open_mi", "clevr", "operator_induction", "operator_induction_interleaved", "textocr", "matching_mi")
# The zips of each task, unpacked into vlicl/<task>/ as its unzip.sh does (interleaved operator induction's
# query images are in its support.zip).
VLICL_ZIPS = {t: ("support.zip",) if t == "operator_induction_interleaved" else ("support.zip", "query.zip")
              for t in VLICL_TASKS}
_VLICL_NOTE = (f"`flamingo-eval data fetch <vlicl task> --images` unpacks that task's zips from the Hugging Face "
               f"dataset {VLICL_REPO} (MIT) into vlicl/<task>/")

IMAGES.update({
    "nocaps/validation": ImageSource(
        "nocaps/validation", "4,500 Open Images validation images, no archive", licence="CC BY 2.0 (Open Images)",
        instructions="NoCaps publishes no image archive: each image's coco_url in nocaps/nocaps_val_4500_captions.json "
                     "goes to nocaps/validation/<file_name> (--images downloads them one by one)",
        listed_in="nocaps/nocaps_val_4500_captions.json"),
    "vlicl": ImageSource("vlicl", "about 1.5 GB for the six image-to-text tasks (TextOCR 1.05 GB)",
                         licence="MIT", instructions=_VLICL_NOTE, hub_repo=VLICL_REPO),
})


@dataclass(frozen=True)
class FileSource:
    """An annotation file outside eval_benchmark: a URL, or a file of a Hugging Face dataset."""

    url: str | None = None
    hub_repo: str | None = None
    hub_path: str | None = None
    licence: str = ""

    def describe(self) -> str:
        return self.url or f"huggingface.co/datasets/{self.hub_repo} {self.hub_path}"


_TEXTCAPS = "https://dl.fbaipublicfiles.com/textvqa/data/textcaps"
OTHER_ANNOTATIONS: dict[str, FileSource] = {
    "nocaps/nocaps_val_4500_captions.json": FileSource(
        "https://nocaps.s3.amazonaws.com/nocaps_val_4500_captions.json", licence="CC BY 2.0"),
    **{f"textcaps/TextCaps_0.1_{s}.json": FileSource(f"{_TEXTCAPS}/TextCaps_0.1_{s}.json", licence="CC BY 4.0")
       for s in ("train", "val")},
    **{f"vlicl/{t}/{name}": FileSource(hub_repo=VLICL_REPO, hub_path=f"{t}/{name}", licence="MIT")
       for t in VLICL_TASKS for name in ("query.json", "support.json")},
}


def image_source(task_name: str, folder: str) -> ImageSource | None:
    """Where a task's image folder comes from; VL-ICL's shared ``vlicl/`` folder is filled task by task."""
    source = IMAGES.get(folder)
    vlicl_task = task_name.split(VARIANT_SEP, 1)[0].removeprefix("vlicl_")
    if folder == "vlicl" and vlicl_task in VLICL_ZIPS:
        zips = tuple(f"{vlicl_task}/{z}" for z in VLICL_ZIPS[vlicl_task])
        return ImageSource(f"vlicl/{vlicl_task}", f"{', '.join(zips)} of {VLICL_REPO}", licence="MIT",
                           instructions=_VLICL_NOTE, holds="support", hub_repo=VLICL_REPO, hub_zips=zips)
    return source


EXPECTED_ITEMS: dict[tuple[str, str], int] = {
    ("coco", "demo"): 82_783, ("coco", "eval"): 5_000,
    ("flickr30k", "demo"): 29_000, ("flickr30k", "eval"): 1_000,
    ("vqav2", "demo"): 443_757, ("vqav2", "eval"): 214_354, ("vqav2:test-dev", "eval"): 107_394,
    ("okvqa", "demo"): 9_009, ("okvqa", "eval"): 5_046,
    ("textvqa", "demo"): 34_602, ("textvqa", "eval"): 5_000,
    ("vizwiz", "demo"): 20_523, ("vizwiz", "eval"): 4_319, ("vizwiz:test-dev", "eval"): 8_000,
    ("hateful_memes", "demo"): 8_500, ("hateful_memes", "eval"): 1_000, ("hateful_memes:dev_seen", "eval"): 500,
    ("nocaps", "demo"): 82_783, ("nocaps", "eval"): 4_500,
    ("textcaps", "demo"): 21_953, ("textcaps", "eval"): 3_166,
    ("vlicl_open_mi", "eval"): 200, ("vlicl_clevr", "demo"): 800, ("vlicl_clevr", "eval"): 200,
    ("vlicl_operator_induction", "demo"): 80, ("vlicl_operator_induction", "eval"): 60,
    ("vlicl_operator_induction_interleaved", "demo"): 80, ("vlicl_operator_induction_interleaved", "eval"): 60,
    ("vlicl_textocr", "demo"): 800, ("vlicl_textocr", "eval"): 200,
    ("vlicl_matching_mi", "eval"): 400,  # its support count (1,600) may count records or pairs: not checked
    ("imagenet", "demo"): 1_281_167, ("imagenet", "eval"): 50_000, ("imagenet:10k", "eval"): 10_000,
}


def expected_items(task_name: str, which: str) -> int | None:
    """The published size of a task's split; a variant shares its task's demonstration pool."""
    if (task_name, which) in EXPECTED_ITEMS:
        return EXPECTED_ITEMS[(task_name, which)]
    return EXPECTED_ITEMS.get((task_name.split(VARIANT_SEP, 1)[0], which)) if which == "demo" else None
