"""Multi-hop lookups: compose one relation k times over facts given in the context.

The context states who is whose friend for a ring of ``MAX_STEPS + 1`` people, in random order
("Eve's friend is Tom. Amy's friend is Ben. …"); the question nests the relation ``k`` times ("Who
is the friend of the friend of Amy?"). Everyone in the ring has a friend, so the chain never just
ends: the answer needs ``k`` hops, counted from the question. The value after step ``j`` is the
person ``j`` hops from the start; the distractor, one hop short, is the person ``k - 1`` hops away
(the start itself for ``k = 1``). Options: the ten names of :data:`NAMES`, each one token after a
space in GPT-2-style BPE vocabularies.

Our own wording; multi-hop composition as in Wei et al. 2022 ("Emergent abilities of large
language models") and the k-hop reasoning literature.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.multistep import (
    ANSWER_PROMPT,
    MAX_STEPS,
    answer,
    case_id,
    distinct_cases,
    step_case,
    steps_of,
)

NAME = "multi_hop"

#: People: short common names.
NAMES: tuple[str, ...] = ("Amy", "Ben", "Dan", "Eve", "Jim", "Kim", "Max", "Sam", "Tom", "Ray")

#: People in one item's ring: one more than the longest chain, so no hop returns to the start.
RING = MAX_STEPS + 1

#: Further questions per context in the depth ladder's training sequences.
FOLLOW_UPS = 7

#: Every candidate answer.
OPTIONS: tuple[str, ...] = tuple(answer(name) for name in NAMES)


def question(start: str, steps: int) -> str:
    """The ``steps``-fold nested question from ``start``, ending where the answer starts."""
    return "Who is " + "the friend of " * steps + f"{start}?{ANSWER_PROMPT}"


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: a ring of friendships and a ``k``-fold nested question from one person."""
    steps = steps_of(index)
    ring = rng.sample(NAMES, RING)
    facts = [f"{ring[i]}'s friend is {ring[(i + 1) % RING]}." for i in range(RING)]
    rng.shuffle(facts)
    path = [ring[j % RING] for j in range(steps + 1)]
    hops = [f"{before}'s friend is {after}." for before, after in zip(path, path[1:])]
    return step_case(
        case_id(NAME, index),
        question=f"{' '.join(facts)} {question(path[0], steps)}",
        start=answer(path[0]),
        intermediates=[answer(name) for name in path[1:]],
        options=OPTIONS,
        reasoning=" ".join(hops),
        meta={"path": path, "ring": ring},
    )


def follow_up_questions(case: Case, rng: random.Random, count: int = FOLLOW_UPS) -> list[tuple[str, str]]:
    """``count`` more questions about the case's ring, in the item's wording: (question, answer).

    Starts and step counts (``1..MAX_STEPS``) are drawn at random. The depth ladder trains on a
    case's question followed by these, so one context teaches many hops.
    """
    ring = case.meta["ring"]
    asked = []
    for _ in range(count):
        start, steps = rng.randrange(RING), rng.randint(1, MAX_STEPS)
        asked.append((question(ring[start], steps), answer(ring[(start + steps) % RING])))
    return asked


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct contexts and questions."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Follow 'friend of' k times from a person through friendships stated in the context.",
    distractor="stop one hop short: answer the friend k - 1 hops away (the person asked about for k = 1)",
    source="k-hop composition over in-context facts, after Wei et al. 2022 'Emergent abilities of "
    "large language models' (l sequential steps need O(l) layers). Own names and wording.",
    write=write_cases,
    default_items=200,
)
