"""Pointer chasing over 16 node names, k = 1 … 6: the depth ladder's training task.

The same cases as :mod:`probes.tasks.generators.pointer_chase` (a cycle of ``2k + 1`` to
``2k + 3`` nodes stated as arrows in shuffled order; follow ``k`` arrows from a start node; every
intermediate node in ``meta["intermediates"]``), drawn from the first 16 of its node names, so
``k`` runs to 6 (the largest cycle, 15 nodes, must fit). The same reasons hold why no shortcut
skips the steps: no position cue, no end-of-chain cue, going backwards is longer, and the one
known parallel route, pointer doubling, still needs ``ceil(log2 k)`` rounds of lookups.

Why a second alphabet: a tiny model trained from scratch on CPU must learn, for every node, how
"arrow into q" connects to "arrow out of q" before it can chain two lookups; with 45 names and
about 2 000 distinct arrows no rung learnt ``k = 2`` within the budget, with 16 names (240 arrows)
the connections are seen 8 times as often (experiments/reasoning_depth.md, "Attempts").
Options: the 16 names (chance 1/16). The distractor is the node one arrow short.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.generators import pointer_chase
from probes.tasks.multistep import answer, distinct_cases

NAME = "pointer_chase16"

#: Node names: the first 16 of pointer_chase's.
NODES = pointer_chase.NODES[:16]

#: The largest number of arrows a case asks to follow (its cycle of up to 15 nodes fits in 16 names).
MAX_STEPS = (len(NODES) - 1 - pointer_chase.EXTRA_NODES) // 2

#: Every candidate answer: each node name.
OPTIONS: tuple[str, ...] = tuple(answer(node) for node in NODES)


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: as :func:`pointer_chase.write_case`, over :data:`NODES`, ``k`` cycling 1 … 6."""
    return pointer_chase.chase_case(NAME, index, rng, NODES, MAX_STEPS)


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct prompts (``k`` cycling 1 … MAX_STEPS)."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Follow k = 1-6 arrows around a cycle of 16 possible nodes whose arrows are stated in "
    "shuffled order.",
    distractor=pointer_chase.SPEC.distractor,
    source=pointer_chase.SPEC.source + " The 16-name alphabet is the depth ladder's training task.",
    write=write_cases,
    default_items=240,
)
