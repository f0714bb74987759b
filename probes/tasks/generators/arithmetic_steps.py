"""k-operation arithmetic: add and subtract single digits left to right, a digit at every step.

"What is 3 + 4 - 2 + 5?" with every running value a digit from 0 to 9, so the answer and every
intermediate value are single tokens after a space (" 7"), and every operand from 1 to 9, so each
step changes the value. The start and the ``k`` running values are pairwise distinct, so the lens
readout of a value names one step only. The distractor, one step short, is the value before the
last operation (the first number for ``k = 1``). Options: the ten digits.

Digits after a space share their first token (the space) under tokenizers that split it off
(Llama 3, SmolLM2); the lens still tells them apart through the digit token.

Our own wording; multi-step arithmetic as in Wei et al. 2022 ("Emergent abilities of large
language models").
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.multistep import ANSWER_PROMPT, answer, case_id, distinct_cases, step_case, steps_of

NAME = "arithmetic_steps"

#: Every candidate answer: the ten digits.
OPTIONS: tuple[str, ...] = tuple(answer(digit) for digit in range(10))


def _operation(value: int, used: set[int], rng: random.Random) -> tuple[str, int, int]:
    """One operation from ``value`` to a new digit outside ``used``: (sign, operand, result)."""
    moves = [
        (sign, operand, value + operand if sign == "+" else value - operand)
        for sign in "+-"
        for operand in range(1, 10)
    ]
    moves = [move for move in moves if 0 <= move[2] <= 9 and move[2] not in used]
    return rng.choice(moves)


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: ``k`` operations from a start digit, every running value a new digit."""
    steps = steps_of(index)
    value = rng.randrange(10)
    start, used = value, {value}
    expression, worked, values = str(value), [], []
    for _ in range(steps):
        sign, operand, result = _operation(value, used, rng)
        expression += f" {sign} {operand}"
        worked.append(f"{value} {sign} {operand} = {result}.")
        value = result
        used.add(value)
        values.append(value)
    return step_case(
        case_id(NAME, index),
        question=f"What is {expression}?{ANSWER_PROMPT}",
        start=answer(start),
        intermediates=[answer(v) for v in values],
        options=OPTIONS,
        reasoning=" ".join(worked),
        meta={"expression": expression},
    )


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct expressions."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Add and subtract k single digits left to right; every running value is a digit.",
    distractor="stop one operation short: answer the value before the last operation",
    source="k-operation arithmetic after Wei et al. 2022 'Emergent abilities of large language models' "
    "(l sequential steps need O(l) layers). Own expressions.",
    write=write_cases,
    default_items=200,
    shared_first_token="digits after a space: ' ' + digit under Llama 3 / SmolLM2-style tokenizers",
)
