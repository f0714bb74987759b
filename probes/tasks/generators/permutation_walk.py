"""Composition of permutations: apply k stated permutations, one after another, to a start number.

A case states three permutations of ``1 … 5`` with no fixed point, named ``A``, ``B``, ``C``, each as
arrows in shuffled order, then a word of ``k`` names: ``A: 3>1 1>4 … B: … C: … Start at 2, apply B
A C A.`` The answer is where 2 ends after applying ``B``, then ``A``, then ``C``, then ``A``. The
value after step ``j`` is the number after the ``j``-th application; every one is in
``meta["intermediates"]``. As no permutation fixes a number, no step leaves the value unchanged.

Why there is no shortcut that skips the steps:

- The arrows of each permutation are shuffled, and which permutation comes next is read from the
  word, so neither the position of an arrow nor the last name alone gives the answer.
- Derangements of five numbers generate the whole symmetric group S5, whose word problem is
  NC1-complete (Barrington 1989): unless TC0 = NC1, no transformer of constant depth (and
  log-precision) computes the composition for every k (Liu et al. 2023, "Transformers learn
  shortcuts to automata"; Merrill & Sabharwal 2023). A parallel shortcut of depth ``O(log k)``
  does exist (compose neighbouring pairs, then pairs of pairs: an associative scan), so, as for
  pointer chasing, the depth a model needs may grow like ``log k`` rather than ``k``.
- A sum (``arithmetic_steps``) is commutative: its terms can be read at once and added in any
  order in one layer. Composition in S5 is not commutative, so the order of the word matters.

Options: the numbers 1-5 (chance 1/5). The distractor is the value one step short (the start for
``k = 1``). ``k`` cycles ``1 … MAX_STEPS`` over the cases.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.multistep import answer, case_id, distinct_cases, step_case

NAME = "permutation_walk"

#: The largest number of applications a case asks for; cases cycle 1 … MAX_STEPS.
MAX_STEPS = 16

#: The numbers permuted.
NUMBERS = ("1", "2", "3", "4", "5")

#: The permutations' names.
NAMES = ("A", "B", "C")

#: Every candidate answer.
OPTIONS: tuple[str, ...] = tuple(answer(number) for number in NUMBERS)


def steps_of(index: int) -> int:
    """The number of applications of case ``index``: ``1, 2, …, MAX_STEPS, 1, …``."""
    return index % MAX_STEPS + 1


def derangement(rng: random.Random) -> dict[str, str]:
    """A uniformly drawn permutation of :data:`NUMBERS` that moves every number."""
    while True:
        images = rng.sample(NUMBERS, len(NUMBERS))
        if all(a != b for a, b in zip(NUMBERS, images)):
            return dict(zip(NUMBERS, images))


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: three stated derangements and a word of ``k`` of their names."""
    steps = steps_of(index)
    maps = {name: derangement(rng) for name in NAMES}
    stated = []
    for name, mapping in maps.items():
        arrows = list(mapping.items())
        rng.shuffle(arrows)
        stated.append(f"{name}: " + " ".join(f"{a}>{b}" for a, b in arrows) + ".")
    word = [rng.choice(NAMES) for _ in range(steps)]
    start = rng.choice(NUMBERS)
    values, current = [], start
    for name in word:
        current = maps[name][current]
        values.append(current)
    reasoning = " ".join(
        f"{name}: {before}>{after}." for name, before, after in zip(word, [start, *values], values)
    )
    return step_case(
        case_id(NAME, index),
        question=f"{' '.join(stated)} Start at {start}, apply {' '.join(word)}.\nAnswer:",
        start=answer(start),
        intermediates=[answer(value) for value in values],
        options=OPTIONS,
        reasoning=reasoning,
        meta={"maps": maps, "word": word},
    )


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct prompts (``k`` cycling 1 … MAX_STEPS)."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Apply k stated permutations of 1-5, in the given order, to a start number.",
    distractor="stop one application short: the number before the last permutation (the start for k = 1)",
    source="The S5 word problem (Barrington 1989; Liu et al. 2023, 'Transformers learn shortcuts to "
    "automata'), as a test of Wei et al. 2022's claim that l sequential steps need O(l) layers. Own "
    "permutations and words.",
    write=write_cases,
    default_items=640,
    shared_first_token="digits after a space: ' ' + digit under Llama 3 / SmolLM2-style tokenizers",
)
