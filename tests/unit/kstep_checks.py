"""The check every k-step task's items share: the prompt's own evaluation agrees with the item.

An evaluator reads only the prompt text and returns the start and the value after every step;
the item's meta, answers and options must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable

from probes.tasks.items import Item


def assert_steps_agree(item: Item, evaluate: Callable[[str], tuple[object, list[object]]]) -> None:
    """``item`` holds exactly the steps ``evaluate(item.prompt)`` computes: k, intermediates,
    start, the answer (true = last value) and the distractor (one step short), all among the options."""
    start, values = evaluate(item.prompt)
    answers = [f" {value}" for value in values]
    assert item.meta["steps"] == len(values), item.id
    assert item.meta["intermediates"] == answers, item.id
    assert item.meta["start"] == f" {start}", item.id
    assert item.true_answer == answers[-1], item.id
    assert item.distractor_answer == (answers[-2] if len(answers) > 1 else f" {start}"), item.id
    assert set(answers) | {f" {start}"} <= set(item.options), item.id
