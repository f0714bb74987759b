"""Pointer chasing on a cycle: follow k arrows from a start node; the facts are shuffled.

A case draws a cycle of ``n = 2k + 1 + extra`` distinct letters (``extra`` in 0-2) and states its
``n`` arrows ``b>q`` in a random order: ``Arrows: x>d b>q q>x d>m … Follow 3 arrows from b.`` then ``b>``; the
answer is the node ``k`` arrows on (``b -> q -> x -> d``: `` d``). The value after step ``j`` is the
node ``j`` arrows on; every one is in ``meta["intermediates"]``, and the cycle in order in
``meta["cycle"]``.

Why there is no shortcut that skips the steps:

- No position shortcut: the arrows are shuffled, so where a node sits in the prompt says nothing
  about how far along the cycle it is.
- No end-of-chain shortcut: on a cycle every node has exactly one arrow in and one out, so no
  node is special (a chain's end could be spotted in one step as "the node with no arrow out").
- No short way round: going backwards from the start to the answer takes ``n - k >= k + 1``
  arrows, more than going forwards.
- A parallel shortcut does exist, and it is logarithmic, not constant: pointer doubling (every
  node looks up its successor's successor, then that node's, …) reaches ``k`` arrows in
  ``ceil(log2 k)`` rounds of lookups, and a transformer layer can do one such round (Sanford,
  Hsu & Telgarsky 2024, "Transformers, parallel computation, and logarithmic depth": k-hop
  induction heads need and suffice with ``Θ(log k)`` layers). So the depth a model needs may grow
  like ``log k``, not ``k``; the study fits both. Unlike a sum of visible digits
  (``arithmetic_steps``), which one layer can do for any ``k`` by attending to every term at once,
  no constant depth is known to do it.

Options: every letter a node can be (chance 1/45). The distractor is the node one step short (the
start for ``k = 1``). ``k`` cycles ``1 … MAX_STEPS`` over the cases.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.multistep import answer, case_id, distinct_cases, step_case

NAME = "pointer_chase"

#: The largest number of arrows a case asks to follow; cases cycle 1 … MAX_STEPS.
MAX_STEPS = 16

#: Node names: letters, without those that read as words or digits ("a", "i", "l", "o", "A", "I", "O").
NODES = "bcdefghjkmnpqrstuvwxyzBCDEFGHJKLMNPQRSTUVWXYZ"

#: Extra nodes on the cycle beyond ``2k + 1``, drawn from ``0 … EXTRA_NODES``.
EXTRA_NODES = 2

#: Every candidate answer: each node name.
OPTIONS: tuple[str, ...] = tuple(answer(node) for node in NODES)

#: Opens every prompt.
HEADER = "Arrows:"


def steps_of(index: int, max_steps: int = MAX_STEPS) -> int:
    """The number of arrows case ``index`` follows: ``1, 2, …, max_steps, 1, …``."""
    return index % max_steps + 1


def question(start: str, steps: int) -> str:
    """The question after the arrows, ending where the answer (a node) starts.

    It ends with ``b>``, as the arrows do: for ``k = 1`` the answer is what followed ``b>`` in the
    arrows (an induction pattern); for larger ``k`` that node is the distractor's way of going wrong.
    """
    plural = "arrow" if steps == 1 else "arrows"
    return f"Follow {steps} {plural} from {start}.\n{start}>"


def arrows_text(arrows: list[tuple[str, str]]) -> str:
    """The stated arrows: ``Arrows: x>d b>q …``."""
    return " ".join([HEADER, *(f"{source}>{target}" for source, target in arrows)])


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: a shuffled cycle of ``2k + 1 + extra`` nodes and a ``k``-arrow question."""
    return chase_case(NAME, index, rng, NODES, MAX_STEPS)


def chase_case(name: str, index: int, rng: random.Random, nodes: str, max_steps: int) -> Case:
    """Case ``index`` of pointer chasing over the names ``nodes``, ``k`` cycling 1 … ``max_steps``.

    ``nodes`` must hold at least ``2 * max_steps + 1 + EXTRA_NODES`` names (the largest cycle).
    """
    steps = steps_of(index, max_steps)
    size = 2 * steps + 1 + rng.randint(0, EXTRA_NODES)
    cycle = rng.sample(nodes, size)
    arrows = [(cycle[i], cycle[(i + 1) % size]) for i in range(size)]
    rng.shuffle(arrows)
    offset = rng.randrange(size)
    cycle = cycle[offset:] + cycle[:offset]  # the start first
    start, path = cycle[0], cycle[1 : steps + 1]
    text = arrows_text(arrows)
    reasoning = " ".join(f"{before}>{after}." for before, after in zip([start, *path], path))
    return step_case(
        case_id(name, index),
        question=f"{text} {question(start, steps)}",
        start=answer(start),
        intermediates=[answer(node) for node in path],
        options=tuple(answer(node) for node in nodes),
        reasoning=reasoning,
        meta={"arrows": [list(arrow) for arrow in arrows], "cycle": cycle, "arrows_text": text},
    )


def follow_up_question(case: Case, rng: random.Random, max_steps: int) -> tuple[str, str]:
    """Another question about the case's cycle, in the item's wording: (question, answer).

    From a random node, ``1 … max_steps`` arrows (never more than ``(n - 1) // 2``, so the way
    forward stays the short one). Trainers append these after a case's answer, so one shuffled
    cycle teaches several chases.
    """
    cycle = case.meta["cycle"]
    steps = rng.randint(1, min(max_steps, (len(cycle) - 1) // 2))
    start = rng.randrange(len(cycle))
    return question(cycle[start], steps), answer(cycle[(start + steps) % len(cycle)])


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct prompts (``k`` cycling 1 … MAX_STEPS)."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Follow k arrows around a cycle whose arrows are stated in shuffled order.",
    distractor="stop one arrow short: answer the node before the right one (the start for k = 1)",
    source="Pointer chasing / k-hop induction heads (Sanford, Hsu & Telgarsky 2024, 'Transformers, "
    "parallel computation, and logarithmic depth'); the question of Wei et al. 2022 ('Emergent "
    "abilities of large language models'): do l sequential steps need O(l) layers? Own cycles.",
    write=write_cases,
    default_items=640,
)
