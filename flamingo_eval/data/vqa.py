"""VQA questions + annotations: VQAv2, OK-VQA, OpenFlamingo's TextVQA/VizWiz "vqa_format" files, and the
official TextVQA and VizWiz files (``vqa_native``), each recognised by its structure.

Options: ``questions`` and ``annotations`` (data keys), ``images`` (data key of the image folder),
``image_file`` (a str.format template over the question's ``image_id``, e.g.
"COCO_val2014_{image_id:012d}.jpg"; VizWiz's image_id already is the file name, "{image_id}").
Questions and annotations are paired by ``question_id`` (not by position); rows keep the questions' order.
``answers`` = every annotator's ``answer`` in file order (VizWiz annotations carry no ``answer_id``).
A native file holds its own answers, so ``annotations`` is then not read. Without an ``annotations`` option
the split is a test split: its questions have no answers (they are scored by a server, see ``submission``).
"""

from __future__ import annotations

from pathlib import Path

from flamingo_eval.data.jsonio import field, list_field, load_json
from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.data.vqa_native import Question, read_native
from flamingo_eval.errors import DataError

OPTIONS = ("questions", "annotations", "images", "image_file")


def sources(ctx: ReadContext) -> list[str]:
    """The questions file, and the annotations file where one is named and present (a native questions
    file needs none; a VQA-format one without its annotations is reported by ``read``)."""
    ctx.check_options(OPTIONS)
    keys = [ctx.data_key("questions")]
    if "annotations" in ctx.options:
        key = ctx.data_key("annotations")
        if ctx.paths[key] != ctx.paths[keys[0]] and ctx.paths[key].is_file():
            keys.append(key)
    return keys


def _vqa_questions(doc, path: Path) -> list[Question]:
    out = []
    for i, q in enumerate(list_field(doc, "questions", path)):
        where = f"questions[{i}]"
        out.append(Question(field(q, "question_id", path, where), str(field(q, "question", path, where)),
                            field(q, "image_id", path, where)))
    return out


def _load_questions(path: Path) -> tuple[list[Question], bool]:
    """(questions, whether the file is a native one that carries its answers)."""
    doc = load_json(path)
    native = read_native(doc, path)
    if native is not None:
        return native, True
    if not isinstance(doc, dict) or "questions" not in doc:
        raise DataError(f"{path}: neither VQA questions ({{\"questions\": [...]}}), TextVQA ({{\"data\": [...]}}) "
                        f"nor VizWiz (a list of {{image, question, answers}}) format")
    return _vqa_questions(doc, path), False


def _answers_by_question(path: Path) -> dict:
    doc = load_json(path)
    native = read_native(doc, path)
    if native is not None:  # the official file in place of OpenFlamingo's annotations
        missing = [q.qid for q in native if q.answers is None]
        if missing:
            raise DataError(f"{path}: {len(missing)} questions have no answers (a test file?)")
        return {q.qid: q.answers for q in native}
    out: dict = {}
    for i, ann in enumerate(list_field(doc, "annotations", path)):
        where = f"annotations[{i}]"
        qid = field(ann, "question_id", path, where)
        answers = field(ann, "answers", path, where)
        if not isinstance(answers, list):
            raise DataError(f"{path}: {where} 'answers' is not a list")
        out[qid] = [str(field(a, "answer", path, f"{where}.answers[{j}]")) for j, a in enumerate(answers)]
        if not out[qid]:
            raise DataError(f"{path}: {where} (question_id {qid}) has no answers")
    return out


def _answers(ctx: ReadContext, qpath: Path, questions: list[Question], native: bool) -> dict | None:
    """question_id -> answers; None for a test split (no ``annotations`` option)."""
    wanted = "annotations" in ctx.options
    if native:
        unanswered = [q for q in questions if q.answers is None]
        if wanted and unanswered:
            raise DataError(f"{qpath}: {len(unanswered)} of {len(questions)} questions have no answers "
                            f"(a test file?); the {ctx.which} split of {ctx.task_name} needs annotated questions")
        return {q.qid: q.answers for q in questions} if wanted else None
    return _answers_by_question(ctx.require("annotations")) if wanted else None


def read(ctx: ReadContext) -> Rows:
    qpath = ctx.path("questions")
    image_dir = ctx.data_key("images")
    template = ctx.option("image_file")
    questions, native = _load_questions(qpath)
    answers = _answers(ctx, qpath, questions, native)

    rows = Rows(qpath)
    unanswered: list = []
    for i, q in enumerate(questions):
        if answers is not None and q.qid not in answers:
            unanswered.append(q.qid)
            continue
        try:
            image_file = template.format(image_id=q.image_id)
        except (ValueError, KeyError, IndexError) as e:
            raise DataError(f"{qpath}: question {i} image_id {q.image_id!r} does not fit the task's image_file "
                            f"{template!r} ({e.__class__.__name__}: {e})") from None
        rows.add(str(q.qid), image_dir, image_file, question=q.text, answers=answers[q.qid] if answers else ())
    if unanswered:
        shown = ", ".join(str(q) for q in unanswered[:3]) + (", ..." if len(unanswered) > 3 else "")
        raise DataError(f"{ctx.path('annotations')}: no annotations for {len(unanswered)} of {len(questions)} "
                        f"questions of {qpath.name} (question_id {shown})")
    if not rows:
        raise DataError(f"{qpath}: no questions")
    return rows
