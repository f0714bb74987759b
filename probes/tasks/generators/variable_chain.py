"""Variable-binding chains: follow k assignments back from the asked variable to its number.

Three chains of equal length ``k`` are interleaved in one program of single-letter assignments,
each chain rooted at its own digit: ``b = 7; q = 2; c = b; r = q; …``. The question asks for the
last variable of one chain; answering needs ``k`` lookups (``d`` is ``c``, ``c`` is ``b``, ``b``
is ``7``), so copying the first number, or any number, is right only by chance (one in three). The
value after step ``j`` is what the ``j``-th lookup finds: the next variable back, and at the last
step the root digit. The distractor, one step short, is the root variable itself (the asked
variable for ``k = 1``). Options: the ten digits and every variable letter, so the "top option
among the candidates" is defined for every step.

The program is written in definition order (no variable is used before it is assigned), chains
merged at random. Our own wording, after the classic ``a = 7; b = a; c = b; … what is e?`` and
Wei et al. 2022 ("Emergent abilities of large language models") on sequential steps and depth.
"""

from __future__ import annotations

import random

from probes.tasks.generated import Case, TaskSpec
from probes.tasks.multistep import ANSWER_PROMPT, answer, case_id, distinct_cases, step_case, steps_of

NAME = "variable_chain"

#: Variable names: letters that are not English words ("a", "I") or easily misread ("l", "o"),
#: and not "s" (the possessive of the multi-hop facts).
VARIABLES = "bcdefghjkmnpqrtuvwxyz"

#: Digits the chains start from.
DIGITS = "0123456789"

#: Chains per program: the asked one and two that distract.
CHAINS = 3

#: Every candidate answer: digits, then variables.
OPTIONS: tuple[str, ...] = tuple(answer(symbol) for symbol in DIGITS + VARIABLES)


def _merge(chains: list[list[str]], rng: random.Random) -> list[str]:
    """The chains' statements in one random order that keeps each chain's own order."""
    pending = [list(chain) for chain in chains]
    merged: list[str] = []
    while any(pending):
        chain = rng.choice([c for c in pending if c])
        merged.append(chain.pop(0))
    return merged


def question(query: str) -> str:
    """The question about variable ``query``, ending where the answer starts."""
    return f"What is {query}?{ANSWER_PROMPT}"


def write_case(index: int, rng: random.Random) -> Case:
    """Case ``index``: a program of three ``k``-step chains and a question about one of them."""
    steps = steps_of(index)
    letters = rng.sample(VARIABLES, CHAINS * steps)
    roots = rng.sample(DIGITS, CHAINS)
    chains = [letters[c * steps : (c + 1) * steps] for c in range(CHAINS)]
    statements = [
        [f"{chain[0]} = {root}", *(f"{chain[j]} = {chain[j - 1]}" for j in range(1, steps))]
        for chain, root in zip(chains, roots)
    ]
    asked = rng.randrange(CHAINS)
    chain, root = chains[asked], roots[asked]
    # Looking back from the asked variable: step j finds chain[-1 - j], the last step the root.
    found = [*reversed(chain[:-1]), root]
    program = "; ".join(_merge(statements, rng))
    query = chain[-1]
    lookups = [f"{variable} = {value}." for variable, value in zip(reversed(chain), found)]
    return step_case(
        case_id(NAME, index),
        question=f"{program}. {question(query)}",
        start=answer(query),
        intermediates=[answer(value) for value in found],
        options=OPTIONS,
        reasoning=" ".join(lookups),
        meta={"program": program, "query": query, "chains": chains, "roots": roots, "asked": asked},
    )


def follow_up_questions(case: Case, rng: random.Random) -> list[tuple[str, str]]:
    """Every other variable of the case's program, asked in the item's wording: (question, answer).

    In random order; a variable ``d`` assignments deep in its chain is a ``d``-step question. The
    depth ladder trains on a case's question followed by these, so one program teaches many lookups.
    """
    chains, roots, query = case.meta["chains"], case.meta["roots"], case.meta["query"]
    asked = [(question(v), answer(root)) for chain, root in zip(chains, roots) for v in chain if v != query]
    rng.shuffle(asked)
    return asked


def write_cases(n: int, rng: random.Random) -> list[Case]:
    """``n`` cases with distinct programs and questions."""
    return distinct_cases(write_case, n, rng)


SPEC = TaskSpec(
    name=NAME,
    description="Follow k variable assignments back from the asked variable to the digit it holds.",
    distractor="stop one lookup short: answer the variable that holds the digit (the asked one for k = 1)",
    source="Variable binding of the form 'a = 7; b = a; c = b; … what is e?', after Wei et al. 2022 "
    "'Emergent abilities of large language models' (l sequential steps need O(l) layers). Own "
    "programs, three interleaved chains.",
    write=write_cases,
    default_items=200,
)
