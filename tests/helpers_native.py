"""The fixture's TextVQA and VizWiz splits written back in the data sets' own formats.

OpenFlamingo made its ``*_vqa_format.json`` files from the official ones; this is the inverse, so the native
files hold exactly the questions and answers of the converted fixture files: TextVQA_0.5.1_{split}.json
(``{"data": [...]}`` with ten answer strings and the fields the official file carries) and VizWiz's
{split}.json (a list of ``{image, question, answers, answer_type, answerable}``, no question ids).
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _vqa_format(root: Path, task: str, split: str) -> list[tuple[dict, dict | None]]:
    questions = json.loads((root / f"{task}/{split}_questions_vqa_format.json").read_text())["questions"]
    ann_path = root / f"{task}/{split}_annotations_vqa_format.json"
    anns = {a["question_id"]: a for a in json.loads(ann_path.read_text())["annotations"]} if ann_path.exists() else {}
    return [(q, anns.get(q["question_id"])) for q in questions]


def textvqa_native(split: str, root: Path = FIXTURES) -> dict:
    data = []
    for q, a in _vqa_format(root, "textvqa", split):
        data.append({"question": q["question"], "image_id": q["image_id"], "image_classes": ["Poster"],
                     "flickr_original_url": "", "flickr_300k_url": "", "image_width": 32, "image_height": 32,
                     "answers": [x["answer"] for x in a["answers"]], "question_tokens": q["question"].split(),
                     "question_id": q["question_id"], "set_name": split})
    return {"dataset_type": split, "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": data}


def vizwiz_native(split: str, root: Path = FIXTURES) -> list:
    out = []
    for position, (q, a) in enumerate(_vqa_format(root, "vizwiz", split)):
        assert q["question_id"] == position  # what OpenFlamingo's conversion did
        entry = {"image": q["image_id"], "question": q["question"]}
        if a is not None:
            entry.update(answers=[{"answer": x["answer"], "answer_confidence": x["answer_confidence"]}
                                  for x in a["answers"]],
                         answer_type=a["question_type"], answerable=int(a["question_type"] != "unanswerable"))
        out.append(entry)
    return out


def write_native(root: Path) -> None:
    """Native TextVQA and VizWiz files under ``root`` in the names of the official archives."""
    for split in ("train", "val"):
        (root / f"textvqa/TextVQA_0.5.1_{split}.json").write_text(json.dumps(textvqa_native(split)))
        (root / f"vizwiz/{split}.json").write_text(json.dumps(vizwiz_native(split)))
    (root / "vizwiz/test.json").write_text(json.dumps(vizwiz_native("test")))


def remove_vqa_format(root: Path) -> None:
    for task in ("textvqa", "vizwiz"):
        for p in (root / task).glob("*_vqa_format.json"):
            p.unlink()
