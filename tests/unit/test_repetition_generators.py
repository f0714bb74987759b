"""Content checks of four generated tasks: quote repetition, memo trap, pattern suppression, correction.

The suite-wide test (``test_task_suite.py``) checks form (determinism, distinct prompts, options);
these check content: that the true answer is what the task asks for, the distractor is what the
distractor task gives, and the control is right.
"""

from __future__ import annotations

import json
import random
import re
from importlib import resources

import pytest

from probes.tasks import get_task
from probes.tasks.generated import Case, TaskSpec
from probes.tasks.generators import specs

TASKS = ("quote_repetition", "memo_trap", "pattern_match_suppression", "resisting_correction")


def spec(name: str) -> TaskSpec:
    """The registered spec of a task."""
    return next(s for s in specs() if s.name == name)


def data(name: str) -> dict:
    """A task's vocabulary file, read the way the package reads it."""
    return json.loads((resources.files("probes.tasks") / "data" / f"{name}.json").read_text(encoding="utf-8"))


def every_case(name: str) -> list[Case]:
    """Every case the task can write (its whole pool), so the checks cover all of its data."""
    return spec(name).write(100_000, random.Random(0))


def last_input_and_output(prompt: str) -> tuple[str, str]:
    """The last ``Input:`` line and the trailing ``Output:`` text of a repeat prompt."""
    lines = prompt.split("\n")
    assert lines[-2].startswith("Input: ") and lines[-1].startswith("Output: ")
    return lines[-2].removeprefix("Input: "), lines[-1].removeprefix("Output: ")


@pytest.mark.parametrize("name", TASKS)
def test_data_files_say_where_their_text_comes_from(name: str) -> None:
    assert "provenance" in data(name) and len(data(name)["provenance"]) > 40


@pytest.mark.parametrize("name", TASKS)
def test_answers_start_with_different_letters_so_their_first_tokens_differ(name: str) -> None:
    for case in every_case(name):
        true, distractor = case.true_answer, case.distractor_answer
        assert true[0] == distractor[0] == " " and true[1].lower() != distractor[1].lower(), case.id
        assert case.control_answer in case.options and case.control_question != case.question


@pytest.mark.parametrize("name", TASKS)
def test_the_rationale_reads_as_sentences_before_the_answer_cue(name: str) -> None:
    for case in spec(name).cases(20, seed=0):
        assert case.reasoning.endswith(".") and case.true_answer.strip() in case.reasoning


@pytest.mark.parametrize("name", TASKS)
def test_fewer_cases_are_a_prefix_of_more(name: str) -> None:
    assert spec(name).cases(10, seed=2) == spec(name).cases(60, seed=2)[:10]


@pytest.mark.parametrize("name", TASKS)
def test_the_default_pool_exceeds_the_default_item_count(name: str) -> None:
    assert len(every_case(name)) >= 200


def test_quote_repetition_copies_the_changed_word_not_the_famous_ending() -> None:
    endings = {q["stem"]: q["ending"] for q in data("quote_repetition")["quotes"]}
    for case in every_case("quote_repetition"):
        line, stem = last_input_and_output(case.question)
        assert line == stem + case.true_answer, "the true answer is the word the input ends with"
        assert case.distractor_answer == f" {endings[stem]}", "the distractor is the famous ending"
        control_line, control_stem = last_input_and_output(case.control_question)
        assert control_stem == stem and control_line == stem + case.control_answer
        assert case.control_answer == case.distractor_answer, "unmodified, the quote ends as it is famous for"
        warmups = case.question.split("\n")[1:-2]
        inputs, outputs = [w.removeprefix("Input: ") for w in warmups[::2]], warmups[1::2]
        assert outputs == [f"Output: {w}" for w in inputs], "warm-ups repeat each input as its output"


def test_memo_trap_asks_for_a_word_the_famous_saying_does_not_end_with() -> None:
    proverbs = {p["stem"]: p for p in data("memo_trap")["proverbs"]}
    for case in every_case("memo_trap"):
        match = re.fullmatch(r'Write a quote that ends in the word "(\w+)": (.+)', case.question)
        assert match, case.question
        word, stem = match.groups()
        assert case.true_answer == f" {word}" and word in proverbs[stem]["alternatives"]
        assert case.distractor_answer == f" {proverbs[stem]['ending']}", "the distractor is the famous ending"
        assert (
            case.control_question
            == f'Write a quote that ends in the word "{proverbs[stem]["ending"]}": {stem}'
        )
        assert case.control_answer == case.distractor_answer


def test_pattern_suppression_breaks_the_alternation_at_the_last_symbol() -> None:
    answers = set()
    for case in every_case("pattern_match_suppression"):
        instruction, sequence = case.question.split("\n")
        shown = sequence.removesuffix(",").split(", ")
        assert all(a != b for a, b in zip(shown, shown[1:])), "the written part alternates"
        assert f" {len(shown) + 1} " in instruction, "the instruction counts the missing last symbol"
        assert case.true_answer == f" {shown[-1]}", "breaking the alternation repeats the last symbol"
        assert case.distractor_answer == f" {shown[-2]}", "continuing it gives the other symbol"
        control_instruction, control_sequence = case.control_question.split("\n")
        assert control_sequence == sequence and control_instruction != instruction
        assert control_instruction.rstrip(".") in instruction, "the control only drops the unexpected ending"
        assert case.control_answer == case.distractor_answer
        answers.add(case.true_answer.strip() == case.meta["symbols"][0])
    assert answers == {True, False}, "the violating symbol is sometimes the first of the pair, sometimes not"


def test_resisting_correction_copies_the_atypical_word_the_control_has_its_correction() -> None:
    forms = {
        **data("resisting_correction")["agreement_forms"],
        **data("resisting_correction")["irregular_forms"],
    }
    correct = {
        re.sub(r"\[(\w+)\]", r"\1", s)
        for key in ("typo_sentences", "agreement_sentences", "irregular_sentences")
        for s in data("resisting_correction")[key]
    }
    for case in every_case("resisting_correction"):
        line, stem = last_input_and_output(case.question)
        control_line, control_stem = last_input_and_output(case.control_question)
        wrong, right = case.true_answer.strip(), case.distractor_answer.strip()
        assert control_stem == stem and control_line in correct, "the control repeats a correct sentence"
        rest = line.removeprefix(stem + case.true_answer)
        assert line == stem + case.true_answer + rest, "the output stops just before the atypical word"
        assert control_line == stem + case.distractor_answer + rest, "the sentences differ in that word only"
        assert case.control_answer == case.distractor_answer
        kind = case.meta["kind"]
        expected = {"typo_swap": right[1] + right[0] + right[2:], "typo_drop": right[1:]}.get(
            kind, forms.get(right)
        )
        assert wrong == expected, (kind, wrong, right)


def test_resisting_correction_samples_every_kind_of_atypical_word() -> None:
    kinds = [item.meta["kind"] for item in get_task("resisting_correction").items("prize", 40)]
    assert {kinds.count(k) for k in ("typo_swap", "typo_drop", "agreement", "irregular")} == {10}
