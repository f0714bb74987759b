"""What the k-step reasoning tasks share: step counts, intermediate values and the case they make.

A k-step item needs ``k`` sequential steps from a start value to its answer (follow ``k`` variable
bindings, ``k`` hops through facts, ``k`` arithmetic operations). Each case records the value after
every step in ``meta["intermediates"]`` (as answer strings, the last one being the true answer) and
the value before the first step in ``meta["start"]``. The distractor is the value one step short
(the start value for ``k = 1``), so the true-vs-distractor machinery reads "stopped one step early"
unchanged. Every intermediate value is an option, so the lens can read each step's value by layer.

Step counts cycle ``1, 2, …, MAX_STEPS`` over the cases, so any prefix of a task's items is
balanced over ``k``. Wei et al. (2022, "Emergent abilities of large language models") argue that a
task of ``l`` sequential steps needs ``O(l)`` layers; these tasks let the lens test where in depth
each step's value appears.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from probes.errors import InvalidItemError
from probes.tasks.generated import Case

#: The largest step count the generators write; cases cycle through ``1..MAX_STEPS``.
MAX_STEPS = 5

#: Ends every k-step prompt: the answer follows.
ANSWER_PROMPT = "\nAnswer:"

#: Writes case ``index`` (its step count is :func:`steps_of` ``(index)``) from the random stream.
StepCaseWriter = Callable[[int, random.Random], Case]


def steps_of(index: int) -> int:
    """The step count of case ``index``: ``1, 2, …, MAX_STEPS, 1, 2, …``."""
    return index % MAX_STEPS + 1


def answer(value: object) -> str:
    """A value as an answer continuation: ``7`` -> ``" 7"``."""
    return f" {value}"


def step_case(
    case_id: str,
    question: str,
    start: str,
    intermediates: Sequence[str],
    options: Sequence[str],
    reasoning: str,
    meta: dict[str, Any] | None = None,
) -> Case:
    """The case of a k-step question (``k = len(intermediates)``).

    Args:
        case_id: The case's id.
        question: The prompt, ending with :data:`ANSWER_PROMPT`.
        start: The value before the first step (an answer string such as ``" 3"``).
        intermediates: The value after each step (answer strings); the last is the true answer.
        options: Every candidate answer; must hold ``start`` and every intermediate value.
        reasoning: The worked steps, for chain-of-thought exemplars.
        meta: Task-specific extras.

    Raises:
        InvalidItemError: a value is missing from the options, or two consecutive values are equal.
    """
    values = [start, *intermediates]
    missing = [value for value in values if value not in options]
    if missing:
        raise InvalidItemError(
            f"case {case_id!r}: values {missing} are not among the options {list(options)}."
        )
    if any(before == after for before, after in zip(values, values[1:])):
        raise InvalidItemError(f"case {case_id!r}: a step leaves its value unchanged ({values}).")
    return Case(
        id=case_id,
        question=question,
        true_answer=intermediates[-1],
        distractor_answer=values[-2],
        options=tuple(options),
        reasoning=reasoning,
        meta={
            "steps": len(intermediates),
            "start": start,
            "intermediates": list(intermediates),
            **(meta or {}),
        },
    )


def distinct_cases(write_case: StepCaseWriter, n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct questions; fewer if the task runs out of them.

    A repeated question is drawn again with the same index (so the same step count); the task's
    :class:`~probes.tasks.generated.TaskSpec` reports a shortfall.
    """
    cases: list[Case] = []
    seen: set[str] = set()
    for _ in range(100 * n):
        if len(cases) == n:
            break
        case = write_case(len(cases), rng)
        if case.question not in seen:
            seen.add(case.question)
            cases.append(case)
    return cases


def case_id(name: str, index: int) -> str:
    """The id of case ``index`` of task ``name``."""
    return f"{name}-{index:04d}"
