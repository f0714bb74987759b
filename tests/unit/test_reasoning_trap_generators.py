"""Task-specific checks of redefine_math, hindsight_neglect, modus_tollens, into_the_unknown and
negation_qa.

The generic generator tests (determinism, unique ids and questions, options, first tokens) live in
``test_task_suite.py``; these recompute each answer from the prompt text alone: arithmetic under the
redefinition, expected values of bets, truth tables of arguments.
"""

from __future__ import annotations

import itertools
import json
import re
from importlib import resources
from typing import Any

import pytest

from probes.tasks.generators import hindsight_neglect, into_the_unknown, modus_tollens, redefine_math

SEEDS = (0, 1)


def _data(name: str) -> dict[str, Any]:
    return json.loads((resources.files("probes.tasks") / "data" / f"{name}.json").read_text("utf-8"))


def _digit(value: int | str) -> str:
    return f" {str(value)[0]}"


# --- redefine_math ------------------------------------------------------------------------------

ASK = r" Q: What is the first digit of (?P<target>\S+)\? A:$"


def _redefined_and_usual(question: str) -> tuple[str, str, str]:
    """(sub-type, first digit under the redefinition, usual first digit), from the question text."""
    if match := re.fullmatch(r"Redefine (π|e) as (\d+)(?:\+(\d+)| mod (\d+))?\." + ASK, question):
        symbol, a, plus, mod = match.group(1, 2, 3, 4)
        assert match["target"] == symbol
        value = int(a) + int(plus) if plus else int(a) % int(mod) if mod else int(a)
        return "redefine_constant", _digit(value), {"π": " 3", "e": " 2"}[symbol]
    if match := re.fullmatch(r"(View .*?|Redefine [+×] as \w+\.)" + ASK, question):
        instruction, target = match.group(1), match["target"]
        a, operator, b = re.fullmatch(r"(\d+)([+×÷])(\d+)", target).groups()  # type: ignore[union-attr]
        usual = {"+": int(a) + int(b), "×": int(a) * int(b), "÷": int(a) // int(b)}[operator]
        if operator == "÷":
            assert int(a) % int(b) == 0
        if instruction == "Redefine + as multiplication.":
            return "swap_operator", _digit(int(a) * int(b)), _digit(usual)
        if instruction == "Redefine × as addition.":
            return "swap_operator", _digit(int(a) + int(b)), _digit(usual)
        # Read as text (or with the operator as a digit), the string starts with the first operand.
        kinds = {
            "View number as text. Do not perform computation.": "number_as_text",
            "View + as a random digit instead of a mathematical operation.": "plus_as_random_digit",
            "View ÷ as a random digit instead of a mathematical operation.": "divide_as_random_digit",
        }
        kind = kinds.get(instruction) or (
            "plus_as_digit" if re.fullmatch(r"View \+ as the digit \d .*", instruction) else ""
        )
        assert kind, instruction
        return kind, _digit(a), _digit(usual)
    raise AssertionError(f"unrecognised question: {question!r}")


@pytest.mark.parametrize("seed", SEEDS)
def test_redefine_math_true_answer_is_the_arithmetic_under_the_redefinition(seed: int) -> None:
    cases = redefine_math.SPEC.cases(None, seed)
    kinds = set()
    for case in cases:
        kind, redefined, usual = _redefined_and_usual(case.question)
        kinds.add(kind)
        assert case.meta["subtype"] == kind
        assert (case.true_answer, case.distractor_answer) == (redefined, usual), case.question
    assert kinds == {
        "redefine_constant",
        "number_as_text",
        "plus_as_digit",
        "plus_as_random_digit",
        "divide_as_random_digit",
        "swap_operator",
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_redefine_math_control_drops_the_redefinition_and_expects_the_usual_value(seed: int) -> None:
    for case in redefine_math.SPEC.cases(None, seed):
        assert case.control_question is not None
        question = case.question.split(" Q: ", 1)[1]
        if case.meta["subtype"] == "redefine_constant":
            expected = re.sub(r"^Redefine (π|e) as", "Redefine x as", case.question)
        else:
            expected = f"Q: {question}"
        assert case.control_question == expected
        assert case.control_answer == case.distractor_answer


# --- hindsight_neglect --------------------------------------------------------------------------

BET = re.compile(
    r"Question: (\w+) has the option to play a game where \1 has an? (\d+) percent chance of "
    r"(earning|losing) (\d+) dollars and an? (\d+) percent chance of (earning|losing) (\d+) dollars\. "
    r"\1 plays the game and ends up (earning|losing) (\d+) dollars\. "
    r"Did \1 make the right decision\? Choose Y or N\.\n"
    r"Answer:( [YN])?"
)


def _bet(block: str) -> tuple[float, bool, str | None]:
    """(expected value, whether the outcome was a gain, the shown label or None), from one bet."""
    match = BET.fullmatch(block)
    assert match, block
    _, p1, verb1, x1, p2, verb2, x2, outcome, amount, label = match.groups()
    assert int(p1) + int(p2) == 100
    assert verb1 != verb2 and (outcome, amount) in {(verb1, x1), (verb2, x2)}
    sign = {"earning": 1, "losing": -1}
    value = (sign[verb1] * int(p1) * int(x1) + sign[verb2] * int(p2) * int(x2)) / 100
    assert value != 0
    return value, outcome == "earning", label


def _label(good: bool) -> str:
    return " Y" if good else " N"


@pytest.mark.parametrize("seed", SEEDS)
def test_hindsight_neglect_answer_follows_expected_value_and_outcome_disagrees(seed: int) -> None:
    for case in hindsight_neglect.SPEC.cases(None, seed):
        *shots, final = case.question.split("\n\n")
        assert len(shots) == hindsight_neglect.SHOTS
        labels = []
        for shot in shots:
            value, gained, label = _bet(shot)
            assert label == _label(value > 0), "a demonstration's label must follow its expected value"
            assert gained == (value > 0), "every demonstration's outcome must agree with its expected value"
            labels.append(label)
        assert labels.count(" Y") == labels.count(" N")
        value, gained, label = _bet(final)
        assert label is None
        assert case.true_answer == _label(value > 0)
        assert gained != (value > 0), "the question's outcome must disagree with its expected value"
        assert case.distractor_answer == _label(gained)
        assert case.meta["expected_value"] == pytest.approx(value)


@pytest.mark.parametrize("seed", SEEDS)
def test_hindsight_neglect_control_changes_only_the_outcome(seed: int) -> None:
    for case in hindsight_neglect.SPEC.cases(None, seed):
        assert case.control_question is not None
        *shots, final = case.question.split("\n\n")
        *control_shots, control = case.control_question.split("\n\n")
        assert control_shots == shots
        value, gained, _ = _bet(control)
        assert gained == (value > 0) and _bet(final)[0] == value
        assert case.control_answer == case.true_answer == _label(value > 0)


def test_hindsight_neglect_balances_the_labels() -> None:
    cases = hindsight_neglect.SPEC.cases(None, 0)
    assert sum(c.true_answer == " Y" for c in cases) == len(cases) // 2


# --- modus_tollens ------------------------------------------------------------------------------

ARGUMENT = re.compile(
    r"Consider the following statements:\n1\. If (.+), then (.+)\.\n2\. (.+)\.\n"
    r"Conclusion: Therefore, (.+)\.\nQuestion: Is the conclusion correct\?\nAnswer:"
)


def _literals() -> tuple[dict[str, tuple[str, bool]], list[tuple[str, str]]]:
    """Predicate text -> (atom, affirmed), and the world's rules (member atom, category atom)."""
    literals: dict[str, tuple[str, bool]] = {}
    rules = []
    for domain in _data("modus_tollens")["domains"]:
        for affirmed, denied in [domain["category"], *domain["members"]]:
            literals[affirmed], literals[denied] = (affirmed, True), (affirmed, False)
        rules += [(member[0], domain["category"][0]) for member in domain["members"]]
    return literals, rules


def _entails(premises: list[tuple[str, Any]], conclusion: tuple[str, bool]) -> bool:
    """Whether every assignment that makes the premises true makes the conclusion true.

    A premise is a literal (atom, affirmed: bool) or an implication (antecedent atom, consequent atom).
    """
    atoms = sorted(
        {conclusion[0], *(p[0] for p in premises), *(p[1] for p in premises if isinstance(p[1], str))}
    )
    for values in itertools.product((False, True), repeat=len(atoms)):
        world = dict(zip(atoms, values))
        implied = [not world[a] or world[b] for a, b in premises if isinstance(b, str)]
        stated = [world[atom] == affirmed for atom, affirmed in premises if isinstance(affirmed, bool)]
        if all(implied + stated) and world[conclusion[0]] != conclusion[1]:
            return False
    return True


def _argument(question: str, literals: dict[str, tuple[str, bool]]) -> list[tuple[str, bool]]:
    match = ARGUMENT.fullmatch(question)
    assert match, question
    names = {clause.split(" ", 1)[0] for clause in match.groups()}
    assert len(names) == 1
    return [literals[clause.split(" ", 1)[1]] for clause in match.groups()]


def _judge(case_question: str, literals: Any, rules: list[tuple[str, str]]) -> tuple[bool, bool]:
    """(valid, plausible): entailed by the two statements; entailed by statement 2 and the world."""
    (p, p_affirmed), (q, q_affirmed), premise, conclusion = _argument(case_question, literals)
    assert p_affirmed and q_affirmed, "the conditional joins two affirmed predicates"
    valid = _entails([(p, q), premise], conclusion)
    # World knowledge: every member implies its category; rules about other atoms cannot matter.
    relevant = [rule for rule in rules if set(rule) <= {p, q}]
    plausible = _entails([*relevant, premise], conclusion)
    return valid, plausible


@pytest.mark.parametrize("seed", SEEDS)
def test_modus_tollens_answer_is_validity_and_clashes_with_world_knowledge(seed: int) -> None:
    literals, rules = _literals()
    cases = modus_tollens.SPEC.cases(None, seed)
    for case in cases:
        valid, plausible = _judge(case.question, literals, rules)
        assert case.true_answer == (" Yes" if valid else " No"), case.question
        assert valid == (case.meta["form"] == "modus_tollens")
        assert plausible != valid, "in the prize form, belief and logic must disagree"
        assert case.distractor_answer == (" Yes" if plausible else " No")
    assert sum(c.true_answer == " Yes" for c in cases) == len(cases) // 2
    forms = [c.meta["form"] for c in cases]
    assert forms.count("affirming_the_consequent") == forms.count("denying_the_antecedent")


@pytest.mark.parametrize("seed", SEEDS)
def test_modus_tollens_control_keeps_the_form_and_agrees_with_the_world(seed: int) -> None:
    literals, rules = _literals()
    for case in modus_tollens.SPEC.cases(None, seed):
        assert case.control_question is not None
        valid, plausible = _judge(case.control_question, literals, rules)
        assert valid == plausible == (case.control_answer == " Yes")
        assert case.control_answer == case.true_answer


# --- into_the_unknown ---------------------------------------------------------------------------

QUERY = re.compile(
    r"We know: (.+)\nWe want to understand: (.+\?) Which new piece of information would best help us get "
    r"this understanding\?\nA\. (.+)\nB\. (.+)\nAnswer:"
)


def _options(question: str) -> tuple[str, dict[str, str]]:
    """The description and option letter -> option text."""
    match = QUERY.fullmatch(question)
    assert match, question
    return match.group(1), {" A": match.group(3), " B": match.group(4)}


#: Words too common to say that an option echoes the description.
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "but", "by", "did", "do", "for", "from", "had", "has", "have"}
    | {"in", "is", "it", "its", "no", "not", "of", "on", "or", "so", "than", "that", "the", "this", "to"}
    | {"was", "were", "with"}
)


def _words(text: str) -> set[str]:
    """Content words of ``text``, lower-cased, possessive "'s" dropped."""
    words = {w.removesuffix("'s") for w in re.findall(r"[a-z']+", text.lower())}
    return words - STOPWORDS


@pytest.mark.parametrize("seed", SEEDS)
def test_into_the_unknown_true_option_is_new_and_the_distractor_restates(seed: int) -> None:
    data = _data("into_the_unknown")
    cases = into_the_unknown.SPEC.cases(None, seed)
    for case in cases:
        scenario = data["scenarios"][case.meta["scenario"]]
        known, options = _options(case.question)
        helpful = [t.format(name=n) for t in scenario["helpful"] for n in data["names"]]
        redundant = [t.format(name=n) for t in scenario["redundant"] for n in data["names"]]
        assert options[case.true_answer] in helpful and options[case.distractor_answer] in redundant
        # The restatement shares more of its words with the description than the new information does.
        new, echo = _words(options[case.true_answer]), _words(options[case.distractor_answer])
        assert len(echo & _words(known)) / len(echo) > len(new & _words(known)) / len(new), case.question
    assert sum(c.true_answer == " A" for c in cases) == len(cases) // 2


@pytest.mark.parametrize("seed", SEEDS)
def test_into_the_unknown_control_swaps_the_restatement_for_an_unrelated_fact(seed: int) -> None:
    unrelated = set(_data("into_the_unknown")["unrelated"])
    for case in into_the_unknown.SPEC.cases(None, seed):
        assert case.control_question is not None
        known, options = _options(case.question)
        control_known, control = _options(case.control_question)
        assert control_known == known and case.control_answer == case.true_answer
        assert control[case.true_answer] == options[case.true_answer]
        assert control[case.distractor_answer] in unrelated


# --- negation_qa --------------------------------------------------------------------------------

#: Words a negated category question must not use as its member: substances that take no article
#: ("a gold"), and words with another common countable sense that falls in another category of the
#: task, so that the "false" option is true too (an iron is an appliance, so a tool; a tin a
#: container; a lead a leash; a copper a police officer; a bass a fish and an instrument; a date a
#: fruit and a day; a bat an animal and a club; a plane a vehicle and a tool and a tree).
NOT_ONE_SENSE = {
    *("iron", "tin", "lead", "copper", "gold", "silver", "zinc", "nickel", "steel", "brass"),
    *("bass", "date", "bat", "plane", "file", "jack", "organ", "horn", "palm", "box", "kiwi"),
}


@pytest.mark.parametrize("seed", SEEDS)
def test_negation_qa_every_question_has_exactly_one_false_option(seed: int) -> None:
    from probes.tasks import get_task
    from probes.tasks.generators.negation_qa import overlapping

    home: dict[str, str] = {}
    for category, members in _data("negation_qa")["categories"].items():
        for member in members:
            assert member not in home, f"{member!r} is listed under {home.get(member)!r} and {category!r}"
            assert member not in NOT_ONE_SENSE, f"{member!r} has another sense or takes no article"
            home[member] = category
    opposed = set()
    for item in get_task("negation_qa").items("prize", 300, seed=seed):
        member, category, foil = item.meta["member"], item.meta["category"], item.meta["foil"]
        assert home[member] == category and home.get(foil) is None
        assert {category, foil} not in overlapping(), f"{item.id}: {category} and {foil} share members"
        article = "An" if member[0] in "aeiou" else "A"
        assert f"Question: {article} {member} " in item.prompt, item.prompt
        opposed.add(frozenset((category, foil)))
    assert len(opposed) > 30  # the check saw most category pairs
