"""Demonstrations + query -> Prompt, following OpenFlamingo's evaluation prompts.

Each demonstration is a chunk (its image, the task's demo template); the query is the last chunk (its
image, the query template); the task's separator follows every demonstration. Zero-shot evaluation uses
two text-only demonstrations (OpenFlamingo's trick): ask for ``effective_shots(0)`` demos and pass
``demo_images=False``.
"""

from __future__ import annotations

from collections.abc import Sequence

from flamingo_eval.data.sample import Sample
from flamingo_eval.errors import ConfigError, DataError
from flamingo_eval.prompt import Chunk, Prompt
from flamingo_eval.task import TaskSpec

ZERO_SHOT_DEMOS = 2


def effective_shots(shots: int) -> int:
    """How many demonstrations a prompt for ``shots`` holds (0 shots still shows two, without images)."""
    if shots < 0:
        raise ConfigError(f"shots must be 0 or more, not {shots}")
    return ZERO_SHOT_DEMOS if shots == 0 else shots


def demo_answer(task: TaskSpec, sample: Sample) -> str:
    """What a demonstration shows as its answer: the first caption stripped, the first VQA answer, or the
    label's option name."""
    if task.kind == "classification":
        if sample.label is None or not 0 <= sample.label < len(task.options):
            raise DataError(f"{task.name}: demonstration {sample.id} has label {sample.label!r}, "
                            f"not an index into options {list(task.options)}")
        return task.options[sample.label]
    if not sample.answers:
        raise DataError(f"{task.name}: demonstration {sample.id} has no answers")
    return sample.answers[0].strip() if task.kind == "caption" else sample.answers[0]


def _fill(task: TaskSpec, template: str, sample: Sample, answer: str | None) -> str:
    fields = {"question": sample.question, "text": sample.text}
    if answer is not None:
        fields["answer"] = answer
    try:
        return template.format_map(fields)
    except KeyError as e:
        raise ConfigError(f"{task.source or task.name}: prompt template {template!r} uses {{{e.args[0]}}}, "
                          f"which is not one of {', '.join(sorted(fields))}") from None
    except (ValueError, IndexError) as e:
        raise ConfigError(f"{task.source or task.name}: bad prompt template {template!r} ({e})") from None


def demo_chunk(task: TaskSpec, demo: Sample, *, image: bool = True) -> Chunk:
    """A demonstration's chunk; its ``answer`` is set where the task's template ends with ``{answer}``."""
    answer = demo_answer(task, demo)
    text = _fill(task, task.prompt.demo, demo, answer)
    ends_with_answer = task.prompt.demo.endswith("{answer}")
    return Chunk(image=demo.image if image else None, text=text, answer=answer if ends_with_answer else None,
                 more_images=demo.more_images if image else ())


def build_prompt(task: TaskSpec, demos: Sequence[Sample], query: Sample, *, demo_images: bool = True) -> Prompt:
    """The interleaved prompt: one chunk per demonstration (in the given order), then the query."""
    chunks = [demo_chunk(task, d, image=demo_images) for d in demos]
    chunks.append(Chunk(image=query.image, text=_fill(task, task.prompt.query, query, None),
                        more_images=query.more_images))
    return Prompt(chunks, separator=task.prompt.separator, instruction=task.prompt.instruction)
