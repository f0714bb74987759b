"""The depth ladder's trainer: its tokenizer, its batches and its curriculum (a short run is slow)."""

from __future__ import annotations

import importlib
import json
import random
from pathlib import Path

import pytest

from probes.tasks.generators import pointer_chase16

train = importlib.import_module("experiments.depth.train")


def test_fast_encoding_matches_the_tokenizer_and_arrows_are_single_tokens() -> None:
    tokenizer = train.build_tokenizer()
    rng = random.Random(3)
    for index in range(64):
        case = pointer_chase16.write_case(index, rng)
        text = case.question + case.true_answer
        ids = tokenizer(text).input_ids
        assert train.encode(text) == ids and tokenizer.unk_token_id not in ids
        assert len(ids) == len(text.split()), "one token per word: an arrow b>q is one token"


def test_batches_score_only_answers_and_never_state_a_held_out_cycle() -> None:
    config = train.TrainingConfig(batch_size=8)
    probes = train.probe_items()
    held_out = {train.cycle_key(item.meta) for item in probes}
    assert len(held_out) == len(probes) == 240
    node_ids = {train._word_ids()[node] for node in pointer_chase16.NODES}
    rng = random.Random(0)
    for level in (1, 4, 6):
        input_ids, labels = train.training_batch(config, level, rng, held_out)
        scored = labels[labels != -100]
        assert len(scored) == config.batch_size * (1 + config.follow_ups)
        assert set(scored.tolist()) <= node_ids
        assert (input_ids[labels != -100] == scored).all()
    # a held-out cycle is redrawn: hold out the cycle the stream would draw next and see it change
    first = random.Random(7)
    steps = first.randint(1, 2)
    case = pointer_chase16.write_case(steps - 1, first)
    sequence, _ = train.training_sequence(2, random.Random(7), {train.cycle_key(case.meta)}, 0)
    assert sequence != train.training_sequence(2, random.Random(7), set(), 0)[0]


def test_arrow_embeddings_start_as_the_sum_of_their_source_and_target() -> None:
    from transformers import GPTNeoXForCausalLM

    from probes.builtin.training import model_config

    tokenizer = train.build_tokenizer()
    rung = train.rung_of(1, 16, 2, 0)
    model = GPTNeoXForCausalLM(model_config(rung, len(train.vocabulary()), tokenizer, train.MAX_POSITIONS))
    ids = train._word_ids()
    embedding = model.get_input_embeddings().weight
    before = embedding[ids["c>b"]].clone()
    train.factorise_arrows(model)
    assert not before.allclose(embedding[ids["c>b"]])
    assert embedding[ids["c>b"]].allclose(embedding[ids["c>"]] + embedding[ids["b"]])
    assert not embedding[ids["c>b"]].allclose(embedding[ids["b>c"]])


def test_batches_are_deterministic_by_seed() -> None:
    config = train.TrainingConfig(batch_size=4)
    one = train.training_batch(config, 3, random.Random("a"), set())
    assert one.tolist() == train.training_batch(config, 3, random.Random("a"), set()).tolist()
    assert one.tolist() != train.training_batch(config, 3, random.Random("b"), set()).tolist()


@pytest.mark.slow
def test_a_short_run_records_its_curve_resumes_and_writes_an_entry(tmp_path: Path) -> None:
    config = train.TrainingConfig(steps=20, batch_size=4, eval_every=10, validation_items=4, curve_items=2)
    rung = train.rung_of(1, 16, 2, 0)
    entry = train.train_rung(rung, config, tmp_path, threads=1, log=lambda line: None)
    assert [point["step"] for point in entry["training_curve"]] == [10, 20]
    assert set(entry["accuracy"][train.TASK]) == {str(k) for k in range(1, 7)}
    assert json.loads((tmp_path / f"{rung.name}.json").read_text())["files"] == entry["files"]
    again = train.train_rung(rung, config, tmp_path, threads=1, log=lambda line: None)  # resumes at 20
    assert again["files"] == entry["files"]


def test_training_stops_when_solved_on_a_plateau_or_out_of_budget() -> None:
    config = train.TrainingConfig(steps=800, patience_steps=300, min_gain=0.02)
    top = train.CHASE.MAX_STEPS
    state = {"step": 0, "curve": [], "best_level": 2, "best_accuracy": 0.0, "progress_step": 0}

    def evaluate(step: int, level: int, accuracy: float, deadline: float | None = None) -> str | None:
        state["step"] = step
        state["curve"].append({"curriculum_k": level, "validation_accuracy": accuracy})
        train.record_progress(state, level, accuracy, config)
        return train.stop_reason(state, config, deadline)

    assert evaluate(100, 2, 0.30) is None  # a gain at level 2
    assert evaluate(300, 2, 0.31) is None  # below min_gain: no progress, not yet patient enough
    assert evaluate(400, 2, 0.31) == "plateau"  # 300 steps since the gain at step 100
    assert evaluate(500, 3, 0.10) is None  # the level moved on: progress
    assert evaluate(600, 3, 0.50, deadline=0.0) == "time budget"
    assert evaluate(700, top, 0.95) == "solved"
    assert evaluate(800, top, 0.50) == "step budget"
