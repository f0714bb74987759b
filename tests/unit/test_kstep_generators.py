"""The k-step generators: answers and intermediate values checked by independent evaluators.

Each evaluator reads only the prompt text (never the generator's code or meta) and computes the
value after every step; the items must agree, and be deterministic by seed.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from probes.errors import InvalidItemError
from probes.tasks import get_task
from probes.tasks.items import Item
from probes.tasks.multistep import MAX_STEPS, step_case
from tests.unit.kstep_checks import assert_steps_agree

TASKS = ("variable_chain", "multi_hop", "arithmetic_steps")


def evaluate_variable_chain(prompt: str) -> tuple[str, list[str]]:
    """(start, values after each lookup) of a variable-binding prompt, by running its program."""
    program, question = re.fullmatch(r"(.*)\. What is (\w)\?\nAnswer:", prompt, flags=re.S).groups()
    bindings: dict[str, str] = {}
    for statement in program.split("; "):
        name, value = statement.split(" = ")
        assert name not in bindings, f"{name} is assigned twice"
        assert value.isdigit() or value in bindings, f"{value} is used before it is assigned"
        bindings[name] = value
    values, current = [], question
    while not current.isdigit():
        current = bindings[current]
        values.append(current)
    return question, values


def evaluate_multi_hop(prompt: str) -> tuple[str, list[str]]:
    """(start, person after each hop) of a multi-hop prompt, by following its stated friendships."""
    friends = dict(re.findall(r"(\w+)'s friend is (\w+)\.", prompt))
    question = re.search(r"Who is ((?:the friend of )+)(\w+)\?\nAnswer:$", prompt)
    hops, person = question.group(1).count("the friend of"), question.group(2)
    start, values = person, []
    for _ in range(hops):
        person = friends[person]
        values.append(person)
    return start, values


def evaluate_arithmetic(prompt: str) -> tuple[str, list[str]]:
    """(first number, running value after each operation) of an arithmetic prompt, left to right."""
    expression = re.fullmatch(r"What is ([0-9+\- ]+)\?\nAnswer:", prompt).group(1).split()
    value, values = int(expression[0]), []
    for sign, operand in zip(expression[1::2], expression[2::2]):
        value = value + int(operand) if sign == "+" else value - int(operand)
        values.append(str(value))
    return expression[0], values


EVALUATORS = {
    "variable_chain": evaluate_variable_chain,
    "multi_hop": evaluate_multi_hop,
    "arithmetic_steps": evaluate_arithmetic,
}


def items(name: str, n: int = 200, seed: int = 0) -> list[Item]:
    return get_task(name).items("prize", n, seed=seed)


@pytest.mark.parametrize("name", TASKS)
def test_answer_and_every_intermediate_value_are_right(name: str) -> None:
    for item in items(name):
        assert_steps_agree(item, EVALUATORS[name])


@pytest.mark.parametrize("name", TASKS)
def test_step_counts_cycle_and_are_balanced(name: str) -> None:
    chosen = items(name)
    assert [item.meta["steps"] for item in chosen[:MAX_STEPS]] == list(range(1, MAX_STEPS + 1))
    counts = Counter(item.meta["steps"] for item in chosen)
    assert set(counts) == set(range(1, MAX_STEPS + 1)) and len(set(counts.values())) == 1


@pytest.mark.parametrize("name", TASKS)
def test_deterministic_by_seed(name: str) -> None:
    assert items(name, 30, seed=1) == items(name, 30, seed=1)
    assert [i.prompt for i in items(name, 30, seed=1)] == [i.prompt for i in items(name, 30, seed=1)]
    assert [i.prompt for i in items(name, 30, seed=1)] != [i.prompt for i in items(name, 30, seed=2)]
    assert items(name, 10, seed=3) == items(name, 40, seed=3)[:10]


def test_variable_chain_needs_the_chain_not_the_first_or_any_number() -> None:
    chosen = items("variable_chain")
    first_number = [re.search(r"\d", item.prompt).group() for item in chosen]
    assert sum(f" {digit}" == item.true_answer for digit, item in zip(first_number, chosen)) < 0.5 * len(
        chosen
    )
    for item in chosen:
        digits = re.findall(r"= (\d)", item.prompt)
        assert len(digits) == len(set(digits)) == 3, "three chains, each rooted at its own digit"


def test_arithmetic_values_are_distinct_single_digits() -> None:
    for item in items("arithmetic_steps"):
        start, values = evaluate_arithmetic(item.prompt)
        every = [start, *values]
        assert all(len(value) == 1 and value.isdigit() for value in every), item.prompt
        assert len(set(every)) == len(every), item.prompt


def test_multi_hop_never_returns_to_where_it_started() -> None:
    for item in items("multi_hop"):
        start, values = evaluate_multi_hop(item.prompt)
        assert len({start, *values}) == len(values) + 1


def test_a_step_case_refuses_values_outside_its_options_or_a_step_that_changes_nothing() -> None:
    with pytest.raises(InvalidItemError, match="not among the options"):
        step_case("x-0", "What?\nAnswer:", " 1", [" 2"], (" 1", " 3"), "1 + 1 = 2.")
    with pytest.raises(InvalidItemError, match="unchanged"):
        step_case("x-0", "What?\nAnswer:", " 1", [" 1"], (" 1", " 2"), "1 + 0 = 1.")
