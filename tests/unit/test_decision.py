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


def _rows(
    curves: dict[str, list[float]],
    variant: str = "prize",
    model: str = "m",
    answers: tuple[str, str] = (" x", " y"),
) -> list[dict]:
    """Per-layer rows of two-option items with the given log-odds curves (layer 0 first) of the
    answer pair ``answers`` (true, distractor)."""
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
            "true_answer": answers[0],
            "distractor_answer": answers[1],
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


def _acting_from(layer: int, n: int = 40, layers: int = 6, seed: int = 1) -> tuple[dict, dict]:
    """Control curves near +2 and prize curves 3 nats lower from ``layer`` on (noise 0.5)."""
    rng = np.random.default_rng(seed)
    control, prize = {}, {}
    for i in range(n):
        base = 2.0 + rng.normal(0, 0.5, layers + 1)
        control[str(i)] = list(base)
        acts = np.arange(layers + 1) >= layer
        prize[str(i)] = list(base - np.where(acts, 3.0 + rng.normal(0, 0.5, layers + 1), 0.0))
    return prize, control


def test_divergence_layer_is_where_the_prize_falls_significantly_below_its_twin():
    prize, control = _acting_from(4)
    table = pd.DataFrame(_rows(prize) + _rows(control, variant="no_distractor"))
    curve = divergence_curve(table, n_resamples=500)
    assert list(curve["layer"]) == list(range(1, 7))  # layer 0 is not read
    assert list(curve["significant"]) == [False, False, False, True, True, True]
    assert (curve["difference_low"] <= curve["mean_difference"]).all()
    assert (curve["p_adjusted"].iloc[3:] < 0.05).all() and (curve["p_adjusted"].iloc[:3] > 0.05).all()
    row = divergence_summary(table, n_resamples=500).iloc[0]
    assert row["divergence_layer"] == 4 and row["n_pairs"] == 40 and row["n_unpaired"] == 0
    assert row["divergence_effect_low"] < -3 < row["divergence_effect_high"] < 0
    assert row["separation_layer"] == 4


def test_a_twin_whose_answer_is_the_distractor_is_scored_on_the_prize_pair():
    """Negation-like twins: the twin's true answer is the prize's distractor. Both variants
    answered right (prize +4, twin +6.68 on its own pair) is no divergence, though the old
    "prize − twin" read −2.68; a prize prompt that pulls toward the distractor is one."""
    rng = np.random.default_rng(3)
    n, layers = 40, 4
    prize = {str(i): [0.0, *rng.normal(0, 0.3, layers - 1), 4.0 + rng.normal(0, 0.3)] for i in range(n)}
    twin = {str(i): [0.0, *rng.normal(0, 0.3, layers - 1), 6.68 + rng.normal(0, 0.3)] for i in range(n)}
    right = pd.DataFrame(_rows(prize) + _rows(twin, variant="no_distractor", answers=(" y", " x")))
    row = divergence_summary(right, n_resamples=500).iloc[0]
    assert math.isnan(row["divergence_layer"]) and row["separation_layer"] == layers
    assert row["separation_effect"] == pytest.approx(10.68, abs=0.3)  # prize +4 minus the twin's −6.68
    pulled, control = _acting_from(3, seed=4)
    recall = {item: [-v for v in curve] for item, curve in control.items()}  # the twin's own pair: +2
    flipped = pd.DataFrame(_rows(pulled) + _rows(recall, variant="no_distractor", answers=(" y", " x")))
    assert divergence_summary(flipped, n_resamples=500).iloc[0]["divergence_layer"] == 3


def test_a_twin_scored_on_another_answer_pair_is_not_paired():
    prize, control = _acting_from(2, n=20)
    other = {f"{i}": curve for i, curve in list(control.items())[:5]}
    rows = _rows(prize) + _rows(dict(list(control.items())[5:]), variant="no_distractor")
    rows += _rows(other, variant="no_distractor", answers=(" z", " x"))
    row = divergence_summary(pd.DataFrame(rows), n_resamples=500).iloc[0]
    assert row["n_pairs"] == 15 and row["n_unpaired"] == 5 and row["divergence_layer"] == 2


def test_no_divergence_without_a_significant_drop_or_without_twins():
    rng = np.random.default_rng(2)
    same = {str(i): list(rng.normal(0, 1, 4)) for i in range(30)}
    table = pd.DataFrame(_rows(same) + _rows(same, variant="no_distractor"))
    row = divergence_summary(table, n_resamples=200).iloc[0]
    assert math.isnan(row["divergence_layer"]) and math.isnan(row["separation_layer"])
    assert divergence_summary(pd.DataFrame(_rows(same)), n_resamples=50).empty


def test_divergence_layer_is_calibrated_on_null_ladders():
    """No effect at any of 12 blocks (prize and twin differ by symmetric noise correlated over
    blocks): a divergence layer is found in at most 5% of simulated models."""
    rng = np.random.default_rng(11)
    found = 0
    n_models = 100
    for _ in range(n_models):
        noise = np.cumsum(rng.standard_t(3, size=(25, 13)), axis=1) * 0.3
        control = {str(i): list(2.0 + rng.normal(0, 1, 13)) for i in range(25)}
        prize = {str(i): list(np.array(control[str(i)]) + noise[i]) for i in range(25)}
        table = pd.DataFrame(_rows(prize) + _rows(control, variant="no_distractor"))
        found += not math.isnan(divergence_summary(table, n_resamples=500).iloc[0]["divergence_layer"])
    assert found / n_models <= 0.05
