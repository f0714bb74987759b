"""The sequential k-step tasks (pointer_chase, permutation_walk): answers, intermediates, no shortcuts.

Each evaluator reads only the prompt text and computes the value after every step; the items must
agree with it, be deterministic by seed, cover k = 1 … 16 evenly, and leave no position shortcut.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from probes.tasks import get_task
from probes.tasks.generators import permutation_walk, pointer_chase, pointer_chase16
from probes.tasks.items import Item
from tests.unit.kstep_checks import assert_steps_agree

TASKS = ("pointer_chase", "permutation_walk")


def evaluate_pointer_chase(prompt: str) -> tuple[str, list[str]]:
    """(start, node after each arrow) of a pointer-chasing prompt, by following its arrows."""
    arrows_text, start, steps = re.fullmatch(
        r"Arrows: (.*) Follow (\d+) arrows? from (\w)\.\n(\w)>", prompt, flags=re.S
    ).groups()[:3]
    steps, start = start, steps
    arrows = [arrow.split(">") for arrow in arrows_text.split()]
    successor = dict(arrows)
    assert len(successor) == len(arrows) == len({b for _, b in arrows}), "one arrow out and in per node"
    values, node = [], start
    for _ in range(int(steps)):
        node = successor[node]
        values.append(node)
    return start, values


def evaluate_permutation_walk(prompt: str) -> tuple[str, list[str]]:
    """(start, number after each application) of a permutation prompt, by applying its maps."""
    maps = {
        name: dict(arrow.split(">") for arrow in arrows.split())
        for name, arrows in re.findall(r"([ABC]): ([\d> ]+)\.", prompt)
    }
    start, word = re.search(r"Start at (\d), apply ([ABC ]+)\.\nAnswer:$", prompt).groups()
    values, number = [], start
    for name in word.split():
        number = maps[name][number]
        values.append(number)
    return start, values


EVALUATORS = {
    "pointer_chase": evaluate_pointer_chase,
    "pointer_chase16": evaluate_pointer_chase,
    "permutation_walk": evaluate_permutation_walk,
}
MAX_STEPS = {"pointer_chase": pointer_chase.MAX_STEPS, "permutation_walk": permutation_walk.MAX_STEPS}


def items(name: str, n: int = 320, seed: int = 0) -> list[Item]:
    return get_task(name).items("prize", n, seed=seed)


@pytest.mark.parametrize("name", [*TASKS, "pointer_chase16"])
def test_answer_and_every_intermediate_value_are_right(name: str) -> None:
    for item in items(name):
        assert_steps_agree(item, EVALUATORS[name])


@pytest.mark.parametrize("name", TASKS)
def test_k_runs_from_1_to_16_in_equal_shares(name: str) -> None:
    chosen = items(name)
    assert MAX_STEPS[name] >= 16
    assert [item.meta["steps"] for item in chosen[: MAX_STEPS[name]]] == list(range(1, MAX_STEPS[name] + 1))
    counts = Counter(item.meta["steps"] for item in chosen)
    assert set(counts) == set(range(1, MAX_STEPS[name] + 1)) and len(set(counts.values())) == 1


@pytest.mark.parametrize("name", TASKS)
def test_deterministic_by_seed(name: str) -> None:
    assert [i.prompt for i in items(name, 40, seed=1)] == [i.prompt for i in items(name, 40, seed=1)]
    assert [i.prompt for i in items(name, 40, seed=1)] != [i.prompt for i in items(name, 40, seed=2)]
    assert items(name, 10, seed=3) == items(name, 40, seed=3)[:10]


def test_pointer_chase_arrow_order_is_shuffled_and_the_short_way_is_forwards() -> None:
    """Where the answer's arrow sits in the listing says nothing; going backwards is longer."""
    chosen = items("pointer_chase", 640)
    next_in_listing, cycle_sizes = 0, []
    for item in chosen:
        arrows = [tuple(arrow) for arrow in item.meta["arrows"]]
        sources = [a for a, _ in arrows]
        start = item.meta["start"].strip()
        following = arrows[(sources.index(start) + 1) % len(arrows)]
        next_in_listing += f" {following[1]}" == item.true_answer
        cycle = item.meta["cycle"]
        assert cycle[0] == start and len(cycle) == len(arrows)
        assert len(cycle) - item.meta["steps"] > item.meta["steps"], "backwards is never shorter"
        cycle_sizes.append(len(cycle))
        if item.meta["steps"] > 1:  # the listing order is not the cycle order
            assert [a for a, _ in arrows] != cycle or item.meta["steps"] < 3
    assert next_in_listing < 0.15 * len(chosen), "reading the next arrow in the listing is chance-level"
    assert len(set(cycle_sizes)) > pointer_chase.MAX_STEPS


def test_pointer_chase_follow_up_questions_are_answered_by_the_cycle() -> None:
    import random

    rng = random.Random(0)
    for index in range(64):
        case = pointer_chase.write_case(index, rng)
        question, answer = pointer_chase.follow_up_question(case, rng, 16)
        start, values = evaluate_pointer_chase(f"{case.meta['arrows_text']} {question}")
        assert f" {values[-1]}" == answer and 2 * len(values) < len(case.meta["cycle"])


def test_permutation_walk_maps_are_derangements_and_the_last_name_is_not_enough() -> None:
    chosen = items("permutation_walk", 640)
    from_last_name = 0
    for item in chosen:
        for mapping in item.meta["maps"].values():
            assert sorted(mapping) == sorted(mapping.values()) == list(permutation_walk.NUMBERS)
            assert all(a != b for a, b in mapping.items())
        # Shortcut "apply only the last permutation to the start": right about chance-often for k > 1.
        last = item.meta["maps"][item.meta["word"][-1]][item.meta["start"].strip()]
        from_last_name += item.meta["steps"] > 1 and f" {last}" == item.true_answer
    longer = sum(item.meta["steps"] > 1 for item in chosen)
    assert from_last_name < 0.35 * longer


def test_pointer_chase16_is_pointer_chase_over_16_names_with_k_to_6() -> None:
    """The depth ladder's task: the same cases over 16 names, k = 1 … 6 in equal shares, forwards short."""
    chosen = items("pointer_chase16", 240)
    assert pointer_chase16.MAX_STEPS == 6 and len(pointer_chase16.NODES) == 16
    assert Counter(item.meta["steps"] for item in chosen) == {k: 40 for k in range(1, 7)}
    for item in chosen:
        assert set(item.meta["cycle"]) <= set(pointer_chase16.NODES)
        assert item.options == pointer_chase16.OPTIONS
        assert len(item.meta["cycle"]) - item.meta["steps"] > item.meta["steps"]
        assert item.id.startswith("pointer_chase16-")
