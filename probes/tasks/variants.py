"""Prompt variants: one generated case rendered as the prize, one-shot, chain-of-thought or control item.

- ``prize``: the zero-shot question as the Inverse Scaling Prize posed it.
- ``one_shot``: one solved demonstration of the true task first (Wei et al. 2022).
- ``cot``: worked exemplars that reason step by step, then the question and the cue
  :data:`COT_CUE`; the model writes its own rationale (:mod:`probes.jobs.cot`) and the options are
  scored after :data:`ANSWER_CUE`.
- ``no_distractor``: the question with the distractor cue removed, scored on the same options:
  the control that ablations compare against.
"""

from __future__ import annotations

from probes.errors import UnknownTaskError
from probes.tasks.generated import Case, TaskSpec
from probes.tasks.items import Item

#: Every variant a generated task can offer, in report order.
VARIANTS: tuple[str, ...] = ("prize", "one_shot", "cot", "no_distractor")

#: Ends a chain-of-thought question: the model's rationale follows.
COT_CUE = " Let's think step by step."

#: Put after the rationale; the options are scored right after it.
ANSWER_CUE = " So the answer is"

#: Meta key of an item that waits for the scored model's own rationale (the ``cot`` variant).
NEEDS_RATIONALE = "needs_rationale"

#: Between a demonstration and what follows it.
SEPARATOR = "\n\n"


def solved(case: Case) -> str:
    """A case followed by its true answer: a one-shot demonstration."""
    return f"{case.demonstration_question or case.question}{case.true_answer}"


def with_cot_cue(question: str) -> str:
    """The question followed by :data:`COT_CUE`: after it where the question ends a sentence or
    asks for an answer ("Answer:"), on a line of its own where the question stops mid-sentence
    (continuation tasks: "Money doesn't grow on"), so the cue never reads as part of the text."""
    if question.rstrip().endswith((":", "?", ".", "!")):
        return question + COT_CUE
    return f"{question}\n{COT_CUE.strip()}"


def reasoned(case: Case) -> str:
    """A case with its worked rationale and answer: a chain-of-thought exemplar."""
    question = case.demonstration_question or case.question
    return f"{with_cot_cue(question)} {case.reasoning}{ANSWER_CUE}{case.true_answer}."


def _apart(demonstrations: list[Case], case: Case, count: int, spec: TaskSpec) -> list[Case]:
    """The first ``count`` demonstrations on another topic than the case (never its own question)."""
    topic = spec.topic_of(case)
    chosen = [
        d
        for d in demonstrations
        if spec.topic_of(d) != topic and (d.demonstration_question or d.question) not in case.question
    ][:count]
    if len(chosen) < count:
        raise UnknownTaskError(f"case {case.id!r}: not enough demonstrations distinct from it.")
    return chosen


def render(case: Case, variant: str, spec: TaskSpec, demonstrations: list[Case]) -> Item:
    """The item of ``case`` in ``variant``.

    Raises:
        UnknownTaskError: the variant is unknown, or ``no_distractor`` for a task without a control.
    """
    meta = {**case.meta, "distractor_task": spec.distractor}
    question, true_answer, distractor = case.question, case.true_answer, case.distractor_answer
    if variant == "prize":
        prompt = question
    elif variant == "one_shot":
        (demonstration,) = _apart(demonstrations, case, 1, spec)
        prompt = solved(demonstration) + SEPARATOR + question
        meta["demonstration"] = demonstration.id
    elif variant == "cot":
        exemplars = _apart(demonstrations, case, spec.demonstrations, spec)
        prompt = SEPARATOR.join([*map(reasoned, exemplars), with_cot_cue(question)])
        meta["demonstrations"] = [e.id for e in exemplars]
        meta[NEEDS_RATIONALE] = True
    elif variant == "no_distractor":
        if case.control_question is None or case.control_answer is None:
            raise UnknownTaskError(f"task {spec.name!r} has no no_distractor form.")
        prompt, true_answer = case.control_question, case.control_answer
        distractor = case.true_answer if case.true_answer != true_answer else case.distractor_answer
    else:
        raise UnknownTaskError(f"variant {variant!r} is unknown; use one of {list(VARIANTS)}.")
    return Item(
        id=case.id,
        task=spec.name,
        prompt=prompt,
        true_answer=true_answer,
        distractor_answer=distractor,
        options=case.options,
        variant=variant,
        meta=meta,
    )


def needs_rationale(item: Item) -> bool:
    """Whether the item waits for a model-written rationale before it can be scored."""
    return bool(item.meta.get(NEEDS_RATIONALE))


def offered_variants(spec: TaskSpec) -> tuple[str, ...]:
    """The variants ``spec`` offers: all four, less ``no_distractor`` when its cases have no control."""
    sample = spec.demonstration_cases(seed=0)[0]
    return tuple(v for v in VARIANTS if v != "no_distractor" or sample.control_question is not None)


def generated_items(spec: TaskSpec, variant: str, n_items: int | None, seed: int) -> list[Item]:
    """The task's items in one variant: the same cases (ids) in every variant of a seed."""
    demonstrations = spec.demonstration_cases(seed)
    return [render(case, variant, spec, demonstrations) for case in spec.cases(n_items, seed)]
