"""Negation QA: multiple-choice questions whose stem says "not".

Follows NeQA (Zhang & Zhou), a round-1 winner of the Inverse Scaling Prize (McKenzie et al. 2023,
"Inverse Scaling: When Bigger Isn't Better", §3; Wei et al. 2022 use it as one of their four
U-shaped tasks): common-sense multiple-choice questions are negated, and larger models answer
the un-negated question instead. The content here is our own: category-membership facts
("a sparrow is a kind of bird") from ``data/negation_qa.json``, asked in NeQA's prompt format.
Every member is a countable noun with one common sense (no "an iron", which is also an appliance
and so a tool, and no "a gold"), and categories that share members are never opposed; the data
file says so and ``tests/test_generators_b.py`` checks it.

The control (``no_distractor``) is the same question without "not": its true answer is the one
the distractor gives to the negated question.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec, task_data

NAME = "negation_qa"

HEADER = "The following are multiple choice questions (with answers) about common sense.\n\n"

#: Ways of saying "<member> is a kind of <category>", with and without the negation.
RELATIONS: tuple[tuple[str, str], ...] = (
    ("is a kind of", "is not a kind of"),
    ("is an example of a", "is not an example of a"),
    ("belongs to the group called", "does not belong to the group called"),
)

LETTERS = (" A", " B")


def overlapping() -> list[set[str]]:
    """Category pairs that share members in common reading (the data's ``overlapping``), never
    opposed in one question: "A cherry is not a kind of / A. fruit B. tree" has no false option."""
    return [set(entry["categories"]) for entry in task_data(NAME)["overlapping"]]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _question(subject: str, relation: str, options: tuple[str, str]) -> str:
    return f"{HEADER}Question: {subject} {relation}\nA. {options[0]}\nB. {options[1]}\nAnswer:"


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` distinct negated category questions, the true letter balanced between A and B."""
    categories: dict[str, list[str]] = task_data(NAME)["categories"]
    ambiguous = overlapping()
    pool = [
        (member, category, other, relation, true_first)
        for category, members in categories.items()
        for member in members
        for other in categories
        if other != category and {other, category} not in ambiguous
        for relation in range(len(RELATIONS))
        for true_first in (True, False)
    ]
    rng.shuffle(pool)
    cases = []
    for index, (member, category, other, relation, true_first) in enumerate(pool[:n]):
        plain, negated = RELATIONS[relation]
        subject = f"{_article(member).capitalize()} {member}"
        # The true (negated) answer is the other category; the distractor is the member's own.
        options = (other, category) if true_first else (category, other)
        true_letter = LETTERS[options.index(other)]
        usual_letter = LETTERS[options.index(category)]
        cases.append(
            Case(
                id=f"{NAME}-{index:04d}",
                question=_question(subject, negated, options),
                true_answer=true_letter,
                distractor_answer=usual_letter,
                options=LETTERS,
                control_question=_question(subject, plain, options),
                control_answer=usual_letter,
                reasoning=f"{subject} {plain} {category}, which is option{usual_letter}. The question says "
                f"it is not, so the answer is the other option, {other}.",
                meta={"member": member, "category": category, "foil": other, "relation": plain},
            )
        )
    return cases


SPEC = TaskSpec(
    name=NAME,
    description="Answer a multiple-choice question whose stem is negated ('... is not a kind of').",
    distractor="answer the question without the negation (plain recall of the category)",
    source="NeQA (Zhang & Zhou), Inverse Scaling Prize round 1; McKenzie et al. 2023 §3; "
    "Wei et al. 2022 'Inverse scaling can become U-shaped' (Negation QA). Own content.",
    write=write_cases,
    topic=lambda case: case.meta["member"],
)
