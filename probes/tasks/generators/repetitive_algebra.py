"""Repetitive algebra: many-shot equations that share one answer, then one that breaks the pattern.

Follows "Repetitive Algebra" (Tom Tseng), one of the eleven Inverse Scaling Prize tasks released
with McKenzie et al. 2023 ("Inverse Scaling: When Bigger Isn't Better"). In the prize's items every
demonstration but the last has the same answer; the last demonstration has a different one; the
question's answer is again the shared one. The true task is solving the question's equation (its
answer is the shared one); the distractor task is repeating the answer of the most recent
demonstration. (Public prize examples, e.g. options (35, 39) with 39 correct after nine answers of
39 and a last one of 35, show this layout; it is not "every demonstration shares the distractor".)

Our own content and layout: a header, then 5 to 7 demonstrations sharing the answer plus the one
that breaks it, then the question. Unlike the prize, which scored the numbers themselves, each
question offers two values labelled (A) and (B) and is answered with the letter, so the two answers
differ in their first token under every tokenizer (Llama- and Qwen-style tokenizers split a
leading space and every digit, so any two numbers share their first token). The question offers the
shared value and the last demonstration's value; demonstrations offer their answer and a value
used nowhere else. Each demonstration's letter is random; the question's true letter alternates,
and whether the last demonstration's letter equals it is balanced (``meta["recent_letter_is_true"]``),
so neither a constant letter nor copying the last letter beats chance.

The control (``no_distractor``) is the same prompt without the demonstration that breaks the
pattern: every demonstration then answers the shared value, and so does the question.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.multistep import distinct_cases

NAME = "repetitive_algebra"

HEADER = "Solve each equation for the unknown and pick the right value.\n\n"

LETTERS = (" A", " B")

#: Unknowns: lowercase letters that are neither option labels nor easily misread.
VARIABLES = "cdfghjkmnpqrstuvwxyz"

#: How many demonstrations share the answer, before the one that breaks it.
REPEATS = (5, 6, 7)

#: Equation layouts and how each is undone: x + b = c and c - x = b by c - b; x - b = c by c + b.
FORMS: tuple[tuple[str, str], ...] = (
    ("{c} = {x} + {b}", "plus"),
    ("{x} + {b} = {c}", "plus"),
    ("{b} + {x} = {c}", "plus"),
    ("{x} - {b} = {c}", "minus"),
    ("{c} = {x} - {b}", "minus"),
    ("{c} - {x} = {b}", "from"),
)


def _equation(rng: random.Random, value: int, variable: str, hidden: set[int]) -> tuple[str, str]:
    """An equation whose unknown ``variable`` equals ``value``, and the step that solves it.

    No number written in the equation is in ``hidden`` (the two answer values), so neither answer
    can be copied from the equation itself.
    """
    while True:
        template, kind = rng.choice(FORMS)
        b = rng.randint(3, 96)
        c = value - b if kind == "minus" else value + b
        if b not in hidden and c not in hidden:
            break
    step = f"{variable} = {c} + {b} = {value}" if kind == "minus" else f"{variable} = {c} - {b} = {value}"
    return template.format(c=c, x=variable, b=b), step


def _block(equation: str, variable: str, options: tuple[int, int]) -> str:
    """One question, ending where its answer letter goes."""
    return f"Q: {equation}. What is {variable}? (A) {options[0]} (B) {options[1]}\nAnswer:"


def _value(rng: random.Random, avoid: set[int]) -> int:
    """A two-digit value not in ``avoid``."""
    while True:
        value = rng.randint(11, 89)
        if value not in avoid:
            return value


def _demonstration(
    rng: random.Random,
    value: int,
    avoid: set[int],
    equations: set[str],
    hidden: set[int],
    true_first: bool | None = None,
) -> str:
    """A solved question answering ``value`` (first option when ``true_first``, random when None).

    Its other option is a new value outside ``avoid``; its equation is not in ``equations`` and
    writes no number of ``hidden``.
    """
    while True:
        variable = rng.choice(VARIABLES)
        equation, _ = _equation(rng, value, variable, hidden)
        if equation not in equations:
            equations.add(equation)
            break
    other = _value(rng, avoid)
    avoid.add(other)
    true_first = rng.random() < 0.5 if true_first is None else true_first
    options = (value, other) if true_first else (other, value)
    return f"{_block(equation, variable, options)}{LETTERS[0 if true_first else 1]}\n\n"


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: its true letter alternates, and so (every two cases) does the last demo's."""
    shared = _value(rng, set())
    recent = _value(rng, {shared} | {v for v in range(11, 90) if v // 10 == shared // 10})
    hidden = {shared, recent}
    avoid, equations = set(hidden), set()
    repeats = rng.choice(REPEATS)
    repeated = [_demonstration(rng, shared, avoid, equations, hidden) for _ in range(repeats)]
    true_first = index % 2 == 0
    recent_letter_is_true = (index // 2) % 2 == 0
    last = _demonstration(rng, recent, avoid, equations, hidden, true_first == recent_letter_is_true)
    variable = rng.choice(VARIABLES)
    while True:
        equation, step = _equation(rng, shared, variable, hidden)
        if equation not in equations:
            break
    options = (shared, recent) if true_first else (recent, shared)
    true_letter, recent_letter = LETTERS[options.index(shared)], LETTERS[options.index(recent)]
    question = _block(equation, variable, options)
    return Case(
        id=f"{NAME}-{index:04d}",
        question=HEADER + "".join(repeated) + last + question,
        true_answer=true_letter,
        distractor_answer=recent_letter,
        options=LETTERS,
        control_question=HEADER + "".join(repeated) + question,
        control_answer=true_letter,
        reasoning=f"Solving this equation itself, {step}, which is option{true_letter}.",
        meta={
            "shared_value": shared,
            "recent_value": recent,
            "repeats": repeats,
            "demonstrations": repeats + 1,
            "recent_letter_is_true": recent_letter_is_true,
            "equation": equation,
        },
    )


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct questions."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Solve a simple linear equation after demonstrations that mostly share its answer (A or B).",
    distractor="repeat the answer of the most recent demonstration, which breaks the shared pattern",
    source="Repetitive Algebra (Tom Tseng), Inverse Scaling Prize (dataset repetitive-algebra); "
    "McKenzie et al. 2023 'Inverse Scaling: When Bigger Isn't Better'; Wei et al. 2022 'Inverse "
    "scaling can become U-shaped'. Own equations, wording and A/B layout.",
    write=write_cases,
)
