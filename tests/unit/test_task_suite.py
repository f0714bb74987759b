"""Every built-in generated task: deterministic, well-formed items in every variant."""

from __future__ import annotations

import pytest

from probes.errors import UnknownTaskError
from probes.tasks import get_task, load_items
from probes.tasks.generated import TaskSpec
from probes.tasks.generators import specs
from probes.tasks.variants import ANSWER_CUE, COT_CUE, SEPARATOR, VARIANTS, with_cot_cue

TASKS = [spec.name for spec in specs()]


def task_spec(name: str) -> TaskSpec:
    return next(spec for spec in specs() if spec.name == name)


def test_the_suite_has_the_prize_winners() -> None:
    wanted = {
        "negation_qa",
        "quote_repetition",
        "redefine_math",
        "hindsight_neglect",
        "memo_trap",
        "pattern_match_suppression",
        "modus_tollens",
        "into_the_unknown",
        "resisting_correction",
        "repetitive_algebra",
        "sig_figs",
    }
    assert wanted <= set(TASKS), sorted(wanted - set(TASKS))


@pytest.mark.parametrize("name", TASKS)
def test_items_are_deterministic_distinct_and_well_formed(name: str) -> None:
    task = get_task(name)
    assert task.source and task.distractor and task.description
    assert {"prize", "one_shot", "cot"} <= set(task.variants) <= set(VARIANTS)
    prize = task.items("prize")
    assert len(prize) >= 200
    assert task.items("prize", 30, seed=1) == task.items("prize", 30, seed=1)
    assert [i.prompt for i in task.items("prize", 30, seed=1)] != [i.prompt for i in prize[:30]]
    for variant in task.variants:
        items = task.items(variant, 50, seed=3)
        assert [i.id for i in items] == [i.id for i in task.items("prize", 50, seed=3)]
        assert len({i.prompt for i in items}) == len(items), f"{variant}: two items share a prompt"
        for item in items:
            assert item.task == name and item.variant == variant
            assert item.true_answer != item.distractor_answer
            assert {item.true_answer, item.distractor_answer} <= set(item.options)
            assert item.true_answer.startswith(" ") and item.distractor_answer.startswith(" ")
            first_words = item.true_answer.split()[0], item.distractor_answer.split()[0]
            assert first_words[0] != first_words[1], (item.id, first_words)
            assert item.meta["distractor_task"] == task.distractor


@pytest.mark.parametrize("name", TASKS)
def test_the_true_answer_is_not_always_the_same_option(name: str) -> None:
    items = get_task(name).items("prize")
    true_answers = {item.true_answer for item in items}
    assert len(true_answers) > 1, f"{name}: a constant guess of {true_answers} would always be right"


@pytest.mark.parametrize("name", TASKS)
def test_demonstrations_precede_the_question_and_are_never_the_question_itself(name: str) -> None:
    task = get_task(name)
    prize = {item.id: item for item in task.items("prize", 40)}
    for item in task.items("one_shot", 40):
        question = prize[item.id].prompt
        assert item.prompt.endswith(SEPARATOR + question)
        assert question not in item.prompt[: -len(question)]
    for item in task.items("cot", 10):
        question = prize[item.id].prompt
        assert item.meta["needs_rationale"] and item.prompt.endswith(SEPARATOR + with_cot_cue(question))
        assert item.prompt.endswith(COT_CUE.strip())
        assert (
            item.prompt.count(ANSWER_CUE)
            == len(item.meta["demonstrations"])
            == task_spec(name).demonstrations
        )


def test_a_task_refuses_more_items_than_it_can_make_distinct() -> None:
    with pytest.raises(UnknownTaskError, match="no variant"):
        get_task("negation_qa").items("no_such_variant")
    with pytest.raises(Exception, match="at least one item"):
        get_task("negation_qa").items("prize", 0)


def test_load_items_mixes_tasks_and_variants_without_id_clashes() -> None:
    items = load_items(["negation_qa", "organism_negation"], variants=["prize"], n_items=5)
    assert len(items) == 10
