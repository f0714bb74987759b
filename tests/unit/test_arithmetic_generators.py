"""Task-specific checks of the sig_figs and repetitive_algebra generators, by independent arithmetic.

The generic generator tests (determinism, unique ids and questions, options, first tokens) live
elsewhere; these recompute each answer from the prompt text alone, without the generator's code.
"""

from __future__ import annotations

import re

import pytest

from probes.tasks.generated import Case
from probes.tasks.generators import repetitive_algebra, sig_figs

SEEDS = (0, 1)


def _options(question: str) -> dict[str, str]:
    """Option letter (with its leading space) -> option text, from an "A. x / B. y" layout."""
    return {f" {letter}": text for letter, text in re.findall(r"^([AB])\. (\S+)$", question, flags=re.M)}


def _round_figures(text: str, count: int) -> str:
    """``text`` rounded to ``count`` significant figures, via float scientific formatting."""
    mantissa, exponent = f"{float(text):.{count - 1}e}".split("e")
    decimals = max(0, count - 1 - int(exponent))
    return f"{float(mantissa) * 10 ** int(exponent):.{decimals}f}"


@pytest.mark.parametrize("seed", SEEDS)
def test_sig_figs_true_answer_rounds_to_figures_and_distractor_to_places(seed: int) -> None:
    cases = sig_figs.SPEC.cases(None, seed)
    assert len(cases) >= 200
    for case in cases:
        asked = re.search(r"(\d[\d.]*) (?:to|rounded to) (\d) significant figures?[.?]", case.question)
        assert asked, case.question
        number, count = asked.group(1), int(asked.group(2))
        assert not 0.1 <= float(number) < 1, "both roundings agree there"
        options = _options(case.question)
        assert options[case.true_answer] == _round_figures(number, count), case.question
        assert options[case.distractor_answer] == f"{float(number):.{count}f}", case.question
        assert case.meta["significant_figures"] == count


@pytest.mark.parametrize("seed", SEEDS)
def test_sig_figs_control_asks_for_decimal_places_with_the_same_options(seed: int) -> None:
    for case in sig_figs.SPEC.cases(None, seed):
        assert case.control_question is not None
        unit = "decimal places" if case.meta["significant_figures"] > 1 else "decimal place"
        expected = re.sub(r"significant figures?", unit, case.question)
        assert case.control_question == expected
        assert case.control_answer == case.distractor_answer
        assert _options(case.control_question) == _options(case.question)


def test_sig_figs_balances_letters_magnitudes_and_counts() -> None:
    cases = sig_figs.SPEC.cases(None, 0)
    assert sum(c.true_answer == " A" for c in cases) == len(cases) // 2
    assert {c.meta["magnitude"] for c in cases} == set(sig_figs.MAGNITUDES)
    assert {c.meta["significant_figures"] for c in cases} == {1, 2, 3, 4}


QUESTION = re.compile(r"^Q: (.+)\. What is ([a-z])\? \(A\) (-?\d+) \(B\) (-?\d+)\nAnswer:( [AB])?$")


def _solve(equation: str, variable: str) -> int:
    """The value of ``variable`` in a linear equation with coefficient ±1 on it."""
    left, right = equation.split(" = ")

    def residual(value: int) -> int:
        scope = {"__builtins__": {}}
        sides = [eval(side.replace(variable, f"({value})"), scope) for side in (left, right)]
        return sides[0] - sides[1]

    slope = residual(1) - residual(0)
    assert slope in (1, -1), equation
    return -residual(0) // slope


Block = tuple[str, int, dict[str, int], "str | None", set[int]]


def _blocks(prompt: str) -> list[Block]:
    """(equation, solution, options by letter, given letter or None, numbers written) per question."""
    header, *parts = prompt.split("\n\n")
    assert header == repetitive_algebra.HEADER.strip()
    blocks = []
    for part in parts:
        match = QUESTION.match(part)
        assert match, part
        equation, variable, first, second, letter = match.groups()
        numbers = {int(n) for n in re.findall(r"-?\d+", equation)}
        options = {" A": int(first), " B": int(second)}
        blocks.append((equation, _solve(equation, variable), options, letter, numbers))
    return blocks


def _check_case(case: Case) -> None:
    *demonstrations, question = _blocks(case.question)
    _, solution, options, letter, numbers = question
    assert letter is None
    shared, recent = options[case.true_answer], options[case.distractor_answer]
    assert solution == shared != recent, "the true answer solves the question's equation"
    assert not numbers & {shared, recent}, "no answer can be copied from the equation"
    for _, value, offered, given, written in demonstrations:
        assert given is not None and offered[given] == value, "every demonstration is solved correctly"
        assert not written & {shared, recent}
    *repeated, last = demonstrations
    assert [d[1] for d in repeated] == [shared] * len(repeated), "the repeated answers are the true one"
    assert last[1] == recent, "the most recent demonstration gives the distractor's value"
    assert len(repeated) == case.meta["repeats"] >= 5
    assert (last[3] == case.true_answer) == case.meta["recent_letter_is_true"]


@pytest.mark.parametrize("seed", SEEDS)
def test_repetitive_algebra_true_answer_solves_the_equation_and_last_demo_breaks_pattern(seed: int) -> None:
    cases = repetitive_algebra.SPEC.cases(None, seed)
    assert len(cases) >= 200
    for case in cases:
        _check_case(case)


@pytest.mark.parametrize("seed", SEEDS)
def test_repetitive_algebra_control_drops_the_demonstration_that_breaks_the_pattern(seed: int) -> None:
    for case in repetitive_algebra.SPEC.cases(None, seed):
        parts = case.question.split("\n\n")
        assert case.control_question == "\n\n".join(parts[:-2] + parts[-1:])
        assert case.control_answer == case.true_answer
        *demonstrations, question = _blocks(case.control_question)
        assert {d[1] for d in demonstrations} == {question[1]}, "in the control every answer is shared"


def test_repetitive_algebra_balances_the_true_letter_and_the_recent_letter() -> None:
    cases = repetitive_algebra.SPEC.cases(None, 0)
    half = len(cases) // 2
    assert sum(c.true_answer == " A" for c in cases) == half
    assert sum(c.meta["recent_letter_is_true"] for c in cases) == half
    assert {c.meta["repeats"] for c in cases} == set(repetitive_algebra.REPEATS)
