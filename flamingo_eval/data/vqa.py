"""VQA questions + annotations files: VQAv2, OK-VQA, and OpenFlamingo's TextVQA/VizWiz "vqa_format" files.

Options: ``questions`` and ``annotations`` (data keys), ``images`` (data key of the image folder),
``image_file`` (a str.format template over the question's ``image_id``, e.g.
"COCO_val2014_{image_id:012d}.jpg"; VizWiz's image_id already is the file name, "{image_id}").
Questions and annotations are paired by ``question_id`` (not by position); rows keep the questions' order.
``answers`` = every annotator's ``answer`` in file order (VizWiz annotations carry no ``answer_id``).
"""

from __future__ import annotations

from flamingo_eval.data.jsonio import field, list_field, load_json
from flamingo_eval.data.reader import ReadContext, Rows
from flamingo_eval.errors import DataError

OPTIONS = ("questions", "annotations", "images", "image_file")


def sources(ctx: ReadContext) -> list[str]:
    ctx.check_options(OPTIONS)
    return [ctx.data_key("questions"), ctx.data_key("annotations")]


def _answers_by_question(ctx: ReadContext) -> dict:
    path = ctx.path("annotations")
    out: dict = {}
    for i, ann in enumerate(list_field(load_json(path), "annotations", path)):
        where = f"annotations[{i}]"
        qid = field(ann, "question_id", path, where)
        answers = field(ann, "answers", path, where)
        if not isinstance(answers, list):
            raise DataError(f"{path}: {where} 'answers' is not a list")
        out[qid] = [str(field(a, "answer", path, f"{where}.answers[{j}]")) for j, a in enumerate(answers)]
        if not out[qid]:
            raise DataError(f"{path}: {where} (question_id {qid}) has no answers")
    return out


def read(ctx: ReadContext) -> Rows:
    qpath, apath = ctx.path("questions"), ctx.path("annotations")
    image_dir = ctx.data_key("images")
    template = ctx.option("image_file")
    questions = list_field(load_json(qpath), "questions", qpath)
    answers = _answers_by_question(ctx)

    rows = Rows(qpath)
    unanswered: list = []
    for i, q in enumerate(questions):
        where = f"questions[{i}]"
        qid = field(q, "question_id", qpath, where)
        text = field(q, "question", qpath, where)
        image_id = field(q, "image_id", qpath, where)
        if qid not in answers:
            unanswered.append(qid)
            continue
        try:
            image_file = template.format(image_id=image_id)
        except (ValueError, KeyError, IndexError) as e:
            raise DataError(f"{qpath}: {where} image_id {image_id!r} does not fit the task's image_file "
                            f"{template!r} ({e.__class__.__name__}: {e})") from None
        rows.add(str(qid), image_dir, image_file, question=str(text), answers=answers[qid])
    if unanswered:
        shown = ", ".join(str(q) for q in unanswered[:3]) + (", ..." if len(unanswered) > 3 else "")
        raise DataError(f"{apath}: no annotations for {len(unanswered)} of {len(questions)} questions of {qpath.name} "
                        f"(question_id {shown})")
    if not rows:
        raise DataError(f"{qpath}: no questions")
    return rows
