"""The official TextVQA and VizWiz annotation files, read as they are, so no conversion step is needed.

TextVQA ``TextVQA_0.5.1_{train,val,test}.json``: ``{"data": [{question_id, question, image_id (hex string),
answers: [10 strings], ...}], ...}``. VizWiz ``train.json`` / ``val.json`` / ``test.json``: a top-level list of
``{image, question, answers: [{answer, answer_confidence}], answer_type, answerable}`` without question ids;
as in OpenFlamingo's conversion, a question's id is its position in its file (each file counts from 0) and its
image_id is the image's file name. Test files carry no answers. Either way the questions, ids, image ids and
answers (in annotator order) are those of OpenFlamingo's ``*_vqa_format.json`` files for the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flamingo_eval.data.jsonio import field
from flamingo_eval.errors import DataError


@dataclass(frozen=True)
class Question:
    """One question of any VQA-style file; ``answers`` is None where the file holds none."""

    qid: Any
    text: str
    image_id: Any
    answers: list[str] | None = None


def native_format(doc: Any) -> str | None:
    """"textvqa" or "vizwiz" when ``doc`` has that data set's own structure, None otherwise."""
    if isinstance(doc, list):
        return "vizwiz"
    if isinstance(doc, dict) and "questions" not in doc and "annotations" not in doc and isinstance(doc.get("data"), list):
        return "textvqa"
    return None


def _answers(entry: dict, path: Path, where: str, dicts: bool) -> list[str] | None:
    if "answers" not in entry:
        return None
    answers = entry["answers"]
    if not isinstance(answers, list) or not answers:
        raise DataError(f"{path}: {where} has no answers")
    if dicts:
        return [str(field(a, "answer", path, f"{where}.answers[{j}]")) for j, a in enumerate(answers)]
    if not all(isinstance(a, str) for a in answers):
        raise DataError(f"{path}: {where} 'answers' is not a list of strings")
    return list(answers)


def read_native(doc: Any, path: Path) -> list[Question] | None:
    """The questions of a native TextVQA or VizWiz file, None when ``doc`` is in neither format."""
    kind = native_format(doc)
    if kind == "vizwiz":
        out = []
        for i, entry in enumerate(doc):
            where = f"entry [{i}]"
            image = field(entry, "image", path, where)
            out.append(Question(i, str(field(entry, "question", path, where)), image,
                                _answers(entry, path, where, dicts=True)))
        return out
    if kind == "textvqa":
        out = []
        for i, entry in enumerate(doc["data"]):
            where = f"data[{i}]"
            out.append(Question(field(entry, "question_id", path, where), str(field(entry, "question", path, where)),
                                field(entry, "image_id", path, where), _answers(entry, path, where, dicts=False)))
        return out
    return None
