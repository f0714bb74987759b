"""Per-layer scores, the prize metric, the tie rule and aggregates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tiny_models import tiny_hf_model

from probes.analysis.metrics import aggregate, bootstrap_interval, layer_table, option_credit
from probes.lenses.reading import OptionReadout, read_options
from probes.tasks import Item, read_items, write_items

PROVENANCE = {"model": "m", "revision": "", "lens": "logit", "toolkit_version": "test"}


def _readout(values: list[list[list[float]]], items: list[Item]) -> OptionReadout:
    return OptionReadout(
        items=items,
        layers=list(range(len(values[0]))),
        logprobs=[torch.tensor(v) for v in values],
        option_token_counts=[[1] * len(i.options) for i in items],
    )


def test_layer_table_scores():
    item = Item("a", "t", "p", " x", " y", options=(" y", " z", " x"))
    values = [[[-1.0, -2.0, -3.0], [-3.0, -2.0, -0.5]]]  # layer 0 prefers y, layer 1 prefers x
    table = layer_table(_readout(values, [item]), PROVENANCE, n_layers=1)
    assert list(table["log_odds"]) == pytest.approx([-2.0, 2.5])
    assert list(table["correct"]) == [0.0, 1.0]
    assert list(table["chosen_answer"]) == [" y", " x"]
    p = np.exp([-3.0, -2.0, -0.5]) / np.exp([-3.0, -2.0, -0.5]).sum()
    assert table["p_true"].iloc[1] == pytest.approx(p[2])
    assert table["p_distractor"].iloc[1] == pytest.approx(p[0])
    assert math.isnan(table["prize_probability"].iloc[0])
    assert table["prize_loss"].iloc[1] == pytest.approx(-math.log(p[2]))
    assert list(table["relative_depth"]) == [0.0, 1.0]
    assert set(PROVENANCE) <= set(table.columns) and (table["model"] == "m").all()


def test_prize_metric_on_a_three_item_file_equals_a_direct_computation(tmp_path, tokenizer):
    from probes.model.loading import from_hf_model

    items = [
        Item("q1", "t", "w1 w2 w3 w4", " w5", " w6"),
        Item("q2", "t", "w9 w8", " w7 w6", " w5", options=(" w5", " w7 w6", " w11")),
        Item("q3", "t", "w20 w21 w22", " w23", " w24 w25 w26"),
    ]
    path = write_items(items, tmp_path / "three.jsonl")
    loaded = read_items(path)
    model = from_hf_model(tiny_hf_model("gpt2", seed=3), tokenizer, name="g")
    table = layer_table(read_options(model, loaded), PROVENANCE, model.n_layers)
    last = table[table["layer"] == model.n_layers].set_index("item_id")
    reference = tiny_hf_model("gpt2", seed=3)
    for item in loaded:
        sums = []
        for option in item.options:
            prompt_ids = tokenizer(item.prompt).input_ids
            option_ids = tokenizer(option, add_special_tokens=False).input_ids
            with torch.no_grad():
                logits = reference(torch.tensor([prompt_ids + option_ids])).logits[0].double()
            logprobs = logits.log_softmax(-1)
            sums.append(sum(logprobs[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(option_ids)))
        probabilities = np.exp(sums) / np.exp(sums).sum()
        expected = probabilities[item.options.index(item.true_answer)]
        assert last.loc[item.id, "prize_probability"] == pytest.approx(expected, abs=1e-4)
        assert last.loc[item.id, "prize_loss"] == pytest.approx(-math.log(expected), abs=1e-4)
        assert last.loc[item.id, "correct"] == float(int(np.argmax(sums)) == item.true_index)


def test_a_tie_is_half_right_whichever_option_is_true():
    scores = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    assert option_credit(scores, 0).tolist() == [0.5, 0.5]
    assert option_credit(scores, 1).tolist() == [0.5, 0.5]
    three = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -1.0, -5.0], [float("nan"), -1.0, -2.0]])
    assert option_credit(three, 2).tolist() == pytest.approx([1 / 3, 0.0, 0.0])
    assert option_credit(three, 0).tolist() == pytest.approx([1 / 3, 0.5, 0.0])  # NaN loses


def test_a_uniform_readout_is_at_chance_not_at_the_true_answer():
    """All-zero option log-probs (a readout that cannot tell the options apart) score 0.5, not 1."""
    items = [Item(str(i), "t", "p", " x", " y") for i in range(4)]
    table = layer_table(_readout([[[0.0, 0.0]]] * 4, items), PROVENANCE, n_layers=0)
    table["task"], table["variant"] = "t", "prize"
    assert (table["correct"] == 0.5).all() and (table["chosen_option"] == -1).all()
    assert (table["chosen_answer"] == "").all()
    assert aggregate(table, n_resamples=50)["accuracy"].iloc[0] == 0.5


def test_aggregates():
    items = [Item(str(i), "t", "p", " x", " y") for i in range(4)]
    values = [
        [[-2.0, -1.0], [-1.0, -2.0]],
        [[-1.0, -2.0], [-1.0, -2.0]],
        [[-1.0, -2.0], [-2.0, -1.0]],
        [[-2.0, -1.0], [-1.0, -1.0]],  # a tie at the last layer: half right
    ]
    table = layer_table(_readout(values, items), PROVENANCE, n_layers=1)
    table["task"], table["variant"] = "t", "prize"
    summary = aggregate(table, n_resamples=500).set_index("layer")
    assert summary.loc[0, "accuracy"] == 0.5 and summary.loc[1, "accuracy"] == 0.625
    assert summary.loc[1, "accuracy_low"] < 0.625 < summary.loc[1, "accuracy_high"]
    assert summary.loc[1, "mean_log_odds"] == pytest.approx((1 + 1 - 1 + 0) / 4)
    assert (
        summary.loc[1, "log_odds_ci_low"]
        <= summary.loc[1, "mean_log_odds"]
        <= summary.loc[1, "log_odds_ci_high"]
    )


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(0).normal(1.0, 1.0, 200)
    first, second = bootstrap_interval(values, seed=4), bootstrap_interval(values, seed=4)
    assert first == second
    assert first[0] < values.mean() < first[1]
    assert first[1] - first[0] < 0.5


def test_item_files_round_trip(tmp_path):
    items = [
        Item("a", "neg", "Is it not so?", " yes", " no", variant="prize", meta={"difficulty": 2}),
        Item("b", "neg", 'Say, "hi",\nthen', " hi there", " bye", options=(" hi there", " bye", " x")),
    ]
    for suffix in (".jsonl", ".csv"):
        loaded = read_items(write_items(items, tmp_path / f"items{suffix}"))
        assert loaded == items
        assert loaded[0].meta == {"difficulty": 2}
    json_line = (tmp_path / "items.jsonl").read_text().splitlines()[1]
    assert json.loads(json_line)["options"] == [" hi there", " bye", " x"]
