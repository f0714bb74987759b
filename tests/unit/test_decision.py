"""Decision layers (per item, reported above chance only) and divergence layers (per model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from probes.analysis.decision import (
    decision_layer,
    decision_summary,
    divergence_curve,
    divergence_summary,
    item_decision_layers,
)


def _rows(curves: dict[str, list[float]], variant: str = "prize", model: str = "m") -> list[dict]:
    """Per-layer rows of two-option items with the given log-odds curves (layer 0 first)."""
    return [
        {
            "model": model,
            "revision": "",
            "lens": "logit",
            "task": "t",
            "variant": variant,
            "item_id": item,
            "layer": layer,
            "n_layers": len(odds) - 1,
            "log_odds": value,
            "correct": 1.0 if value > 0 else 0.5 if value == 0 else 0.0,
            "option_logprobs": [0.0, 0.0],
        }
        for item, odds in curves.items()
        for layer, value in enumerate(odds)
    ]


@pytest.mark.parametrize(
    ("log_odds", "expected"),
    [
        ([-1, -1, 1, 1], 2),  # overtakes at layer 2 and holds
        ([1, -1, 1, 1], 2),  # an early win that is lost does not count
        ([1, 1, 1, 1], 1),  # right from the embeddings on: decided by the first block, not layer 0
        ([1, 1, 1, -1], math.nan),  # wrong at the end: no decision layer
        ([-1, 1, -1, 1], 3),
        ([-1, 1, 0, 1], 3),  # a tie is no win
        ([-1, 1, 1, 0], math.nan),  # tied at the end: undecided
    ],
)
def test_decision_layer(log_odds, expected):
    result = decision_layer(np.arange(4), np.array(log_odds, dtype=float))
    assert (math.isnan(result) and math.isnan(expected)) or result == expected


def test_vectorised_decision_layers_agree_with_the_definition_even_with_nan():
    curves = {
        "a": [1, -1, np.nan, 2, 3],
        "b": [1, np.nan, 1],
        "c": [-1, 2, -3],
        "d": [2, 2, 2],
        "e": [1, 0, 1],
    }
    table = item_decision_layers(pd.DataFrame(_rows(curves))).set_index("item_id")["decision_layer"]
    for item, odds in curves.items():
        expected = decision_layer(np.arange(len(odds)), np.array(odds, dtype=float))
        assert (np.isnan(expected) and np.isnan(table[item])) or table[item] == expected, item


def test_a_model_at_chance_reports_no_decision_layer_but_its_share():
    rng = np.random.default_rng(0)
    # 40 items whose last-layer sign is a coin flip: about half "decide" at the embeddings by luck.
    chance = {str(i): [1.0, float(rng.choice([-1.0, 1.0]))] for i in range(40)}
    row = decision_summary(pd.DataFrame(_rows(chance)), n_resamples=200).iloc[0]
    assert not row["above_chance"] and math.isnan(row["decision_layer"])
    assert 0.3 < row["share_with_decision_layer"] < 0.7
    assert row["chance"] == 0.5


def test_decision_summary_median_and_interval_above_chance():
    curves = {str(i): [-1.0, -1.0, 1.0, 1.0] for i in range(30)}
    curves.update({f"late{i}": [-1.0, -1.0, -1.0, 1.0] for i in range(10)})
    curves["wrong"] = [1.0, 1.0, 1.0, -1.0]
    row = decision_summary(pd.DataFrame(_rows(curves)), n_resamples=300).iloc[0]
    assert row["above_chance"] and row["n_items"] == 41
    assert row["decision_layer"] == 2.0 and row["decision_relative_depth"] == pytest.approx(2 / 3)
    assert row["decision_layer_low"] <= 2.0 <= row["decision_layer_high"]
    assert row["share_with_decision_layer"] == pytest.approx(40 / 41)
    assert row["accuracy"] == pytest.approx(40 / 41)


def test_divergence_layer_is_where_the_prize_falls_significantly_below_its_twin():
    rng = np.random.default_rng(1)
    n, layers = 40, 6
    control, prize = {}, {}
    for i in range(n):
        base = 2.0 + rng.normal(0, 0.5, layers + 1)
        control[str(i)] = list(base)
        acts = np.arange(layers + 1) >= 4  # the distractor acts from layer 4, by 3 nats give or take
        prize[str(i)] = list(base - np.where(acts, 3.0 + rng.normal(0, 0.5, layers + 1), 0.0))
    table = pd.DataFrame(_rows(prize) + _rows(control, variant="no_distractor"))
    curve = divergence_curve(table, n_resamples=300)
    assert list(curve["layer"]) == list(range(1, layers + 1))  # layer 0 is not read
    assert list(curve["significant"]) == [False, False, False, True, True, True]
    row = divergence_summary(table, n_resamples=300).iloc[0]
    assert row["divergence_layer"] == 4 and row["n_pairs"] == n
    assert row["divergence_layer_low"] == row["divergence_layer_high"] == 4
    assert row["share_diverging"] == 1.0


def test_no_divergence_without_a_significant_drop_or_without_twins():
    rng = np.random.default_rng(2)
    same = {str(i): list(rng.normal(0, 1, 4)) for i in range(30)}
    table = pd.DataFrame(_rows(same) + _rows(same, variant="no_distractor"))
    row = divergence_summary(table, n_resamples=200).iloc[0]
    assert math.isnan(row["divergence_layer"])
    assert divergence_summary(pd.DataFrame(_rows(same)), n_resamples=50).empty
