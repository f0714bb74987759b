"""The 95% interval of a median layer (probes.analysis.decision.median_interval): values the
median can take, at least 95% coverage on simulated integer layers, no resampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import quantile_test

from probes.analysis.decision import decision_summary, median_interval

#: A skewed distribution over blocks 1..8 (its median is 5: P(layer ≤ 5) = 0.55).
LAYERS = np.arange(1, 9)
WEIGHTS = np.array([0.05, 0.05, 0.1, 0.15, 0.2, 0.25, 0.1, 0.1])
TRUE_MEDIAN = 5
#: Simulated samples per size; a coverage's Monte Carlo standard error at 95% is then 0.005.
N_SAMPLES = 2000


@pytest.mark.parametrize("n_items", [6, 10, 31, 100, 208])
def test_covers_the_true_median_at_least_95_percent(n_items):
    """Distribution-free: ≥ 95% for any distribution, conservative where layers tie (allowing
    3 Monte Carlo standard errors)."""
    rng = np.random.default_rng(n_items)
    samples = rng.choice(LAYERS, p=WEIGHTS, size=(N_SAMPLES, n_items))
    intervals = np.array([median_interval(sample, 1, 8) for sample in samples])
    coverage = ((intervals[:, 0] <= TRUE_MEDIAN) & (intervals[:, 1] >= TRUE_MEDIAN)).mean()
    assert coverage >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / N_SAMPLES), coverage
    # the ends are layers the items took: whole numbers, never 28.5125
    assert all(low in sample and high in sample for (low, high), sample in zip(intervals, samples))


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_is_scipys_quantile_test_interval(confidence):
    """The same order statistics as scipy.stats.quantile_test's interval (which is slower)."""
    rng = np.random.default_rng(1)
    for n_items in [*range(1, 40), 57, 208]:
        values = rng.integers(1, 30, size=n_items).astype(float)
        expected = quantile_test(values, q=float(np.median(values)), p=0.5).confidence_interval(confidence)
        low, high = median_interval(values, 0, 99, confidence)
        assert low == (expected.low if np.isfinite(expected.low) else 0), n_items
        assert high == (expected.high if np.isfinite(expected.high) else 99), n_items


def test_ends_are_order_statistics_of_the_sample():
    values = np.array([24, 25, 26, 27, 28, 29, 30, 24, 28, 28, 27])
    low, high = median_interval(values, 1, 32)
    assert (low, high) == (24.0, 29.0)  # the 2nd smallest and the 2nd largest of 11 values
    assert low <= np.median(values) <= high


def test_too_few_values_reach_the_ends_of_the_support():
    """Under six values no order statistic gives 95% (all five above the median has chance
    1/32 > 2.5%): the interval is then the layers the median could be, 1 to the last block."""
    assert median_interval(np.array([3, 3, 4]), 1, 6) == (1.0, 6.0)
    assert median_interval(np.array([3, 3, 4, 4, 4, 5]), 1, 6) == (3.0, 5.0)
    assert all(np.isnan(median_interval(np.array([]), 1, 6)))


def test_decision_summary_intervals_are_layers_and_do_not_depend_on_resamples():
    rng = np.random.default_rng(0)
    rows = []
    for item in range(40):
        decided_at = int(rng.choice(LAYERS, p=WEIGHTS))
        for layer in range(9):
            rows.append(
                {
                    "model": "m",
                    "revision": "",
                    "lens": "logit",
                    "task": "t",
                    "variant": "prize",
                    "item_id": f"i{item}",
                    "layer": layer,
                    "n_layers": 8,
                    "log_odds": 1.0 if layer >= decided_at else -1.0,
                    "correct": 1.0 if layer >= decided_at else 0.0,
                    "option_logprobs": [-1.0, -2.0],
                }
            )
    table = pd.DataFrame(rows)
    row = decision_summary(table, score="log_odds").iloc[0]
    assert row["above_chance"]
    low, high = row["decision_layer_low"], row["decision_layer_high"]
    assert low == int(low) and high == int(high) and low <= row["decision_layer"] <= high
    again = decision_summary(table, score="log_odds", n_resamples=50, seed=7).iloc[0]
    assert (again["decision_layer_low"], again["decision_layer_high"]) == (low, high)
