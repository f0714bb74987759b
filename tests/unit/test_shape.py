"""The tested shape of a scaling curve (probes.analysis.shape), calibrated on simulated ladders.

The simulations draw every ladder at once (one binomial array per setting) and label them with
the same vectorised functions :func:`probes.scaling_shape` calls, so the calibration covers
tens of thousands of ladders in about a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import probes
from probes.analysis.metrics import wilson_interval
from probes.analysis.shape import ALPHA, LABELS, ScalingShape, shape_labels, shape_tests
from probes.errors import InvalidOptionError

#: Ladders simulated per setting; a rate's Monte Carlo standard error at 5% is then 0.005.
N_LADDERS = 2000
#: Settings of the null calibration: rungs, items per rung, the accuracy every rung shares.
FLAT = [
    (rungs, items, share)
    for share in (0.5, 0.25)  # chance with two options and with four
    for rungs, items in ((3, 20), (3, 500), (4, 50), (6, 20), (6, 208), (8, 100), (12, 20), (12, 500))
] + [(6, 50, 0.9), (12, 208, 0.9)]  # a flat curve away from chance


def simulate(shares: np.ndarray, items: int, seed: int) -> np.ndarray:
    """Labels of ``N_LADDERS`` simulated ladders whose rungs have these true accuracies."""
    rng = np.random.default_rng(seed)
    correct = rng.binomial(items, shares, size=(N_LADDERS, len(shares))).astype(float)
    return shape_labels(shape_tests(correct, np.full(correct.shape, float(items))))


def margin_rule(correct: np.ndarray, items: int, margin: float = 0.05) -> np.ndarray:
    """The untested rule this module replaced: U when a middle rung is ``margin`` below both ends."""
    accuracy = correct / items
    dip = accuracy[:, 1:-1].min(axis=1)
    u = (accuracy[:, 0] - dip >= margin) & (accuracy[:, -1] - dip >= margin)
    inverse = ~u & (accuracy[:, -1] - accuracy[:, 0] <= -margin)
    return np.where(u, "U-shaped", np.where(inverse, "inverse", "other"))


@pytest.mark.parametrize(("rungs", "items", "share"), FLAT)
def test_flat_ladders_are_rarely_given_a_shape(rungs, items, share):
    """Every rung at one accuracy: U-shaped or inverse in ≤ 5%, any label in ≤ 5% (+ 3 Monte
    Carlo standard errors, the gate's chi-square being approximate at 20 items)."""
    labels = simulate(np.full(rungs, share), items, seed=rungs * 1000 + items)
    false_u_or_inverse = np.isin(labels, ["U-shaped", "inverse"]).mean()
    assert false_u_or_inverse <= ALPHA, (rungs, items, share, false_u_or_inverse)
    any_label = (labels != "not determined").mean()
    assert any_label <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / N_LADDERS), any_label


def test_the_calibration_fails_the_old_margin_rule():
    """The same check on the old rule (no test, 0.05 margin): chance ladders called U or inverse
    far above 5%, so the check above can fail."""
    rng = np.random.default_rng(0)
    for rungs, items in ((6, 20), (6, 50), (6, 208)):
        correct = rng.binomial(items, 0.5, size=(N_LADDERS, rungs)).astype(float)
        assert np.isin(margin_rule(correct, items), ["U-shaped", "inverse"]).mean() > 0.15


@pytest.mark.parametrize(("rungs", "items"), [(3, 20), (6, 50), (6, 208), (12, 500)])
def test_a_monotone_rise_is_rarely_called_u(rungs, items):
    """A true curve rising linearly 0.50 → 0.75: called U-shaped in ≤ 1% (measured ≤ 0.4%),
    never inverse; positive in most ladders of 208 items and more."""
    labels = simulate(np.linspace(0.5, 0.75, rungs), items, seed=rungs + items)
    assert (labels == "U-shaped").mean() <= 0.01
    assert (labels == "inverse").mean() == 0
    if items >= 208:
        assert (labels == "positive").mean() >= 0.95


def test_a_moderate_u_is_found_with_enough_items():
    """Ends at 0.6, dip at 0.4 over five rungs: found in most ladders of 208 items per rung."""
    labels = simulate(np.array([0.6, 0.5, 0.4, 0.5, 0.6]), 208, seed=5)
    assert (labels == "U-shaped").mean() >= 0.9


def organism_counts() -> dict[str, tuple[list[float], list[int]]]:
    """The organism ladder's measured last-layer accuracies (the catalogue's accuracy.json,
    rungs at their final step, smallest first) as counts over its probe items."""
    from probes.tasks import organism_negation

    path = Path(probes.__file__).parent / "builtin" / "organism" / "accuracy.json"
    entries = [e for e in json.loads(path.read_text())["entries"] if "-step" not in e["name"]]
    entries.sort(key=lambda e: e["parameters"])
    counts = {}
    for variant in ("prize", "one_shot", "no_distractor"):
        items = len(organism_negation.items(variant))
        counts[variant] = ([round(e[variant] * items) for e in entries], [items] * len(entries))
    return counts


def test_the_organism_is_u_shaped_in_prize_and_one_shot():
    counts = organism_counts()
    for variant in ("prize", "one_shot"):
        shape = probes.scaling_shape(*counts[variant])
        assert shape.label == "U-shaped" and shape.p_value < 1e-6, (variant, shape)
        assert shape.rungs == (0, 2, 5)  # the dip is 1x32, at 0.00
        assert shape.path().startswith("0.50→0.00→")
    assert probes.scaling_shape(*counts["no_distractor"]).label == "positive"


def test_result_fields_intervals_and_determinism():
    shape = probes.scaling_shape([30, 5, 45], [50, 50, 50])
    assert isinstance(shape, ScalingShape) and str(shape) == shape.label == "U-shaped"
    assert shape.label in LABELS and shape.alpha == ALPHA
    assert shape.accuracy == pytest.approx((0.6, 0.1, 0.9))
    for low, high, (c, n) in zip(shape.accuracy_low, shape.accuracy_high, [(30, 50), (5, 50), (45, 50)]):
        assert (low, high) == pytest.approx(wilson_interval(c, n))
    assert shape.p_value == shape.p_values["U-shaped"] <= ALPHA
    assert set(shape.p_values) == {"U-shaped", "inverted U", "positive", "inverse", "homogeneity"}
    assert shape == probes.scaling_shape([30, 5, 45], [50, 50, 50])
    with pytest.raises(AttributeError):
        shape.label = "flat"  # type: ignore[misc]


def test_each_label_on_clear_curves():
    n = [100] * 5
    assert probes.scaling_shape([90, 50, 10, 50, 90], n).label == "U-shaped"
    assert probes.scaling_shape([10, 50, 90, 50, 10], n).label == "inverted U"
    assert probes.scaling_shape([50, 5, 50, 95, 50], n).label == "non-monotone"
    assert probes.scaling_shape([10, 30, 50, 70, 90], n).label == "positive"
    assert probes.scaling_shape([90, 70, 50, 30, 10], n).label == "inverse"
    assert probes.scaling_shape([50, 52, 49, 51, 50], n).label == "not determined"
    inverse = probes.scaling_shape([90, 70, 50, 30, 10], n)
    assert inverse.rungs == (0, 4) and inverse.path() == "0.90→0.10"


def test_few_items_decide_nothing():
    """2 of 3, 0 of 3, 3 of 3 (the old rule's U): not determined; a two-proportion z test would
    call it U at p = 0.04."""
    shape = probes.scaling_shape([2, 0, 3], [3, 3, 3])
    assert shape.label == "not determined" and shape.rungs == () and shape.p_value > ALPHA


def test_ties_count_half_and_are_rounded_against_the_claim():
    """A rung of ties (half right) reads as accuracy 0.5; 10.5 of 20 is tested as 10 when it
    would support the claim."""
    assert probes.scaling_shape([10.5, 0, 20], [20, 20, 20]).accuracy[0] == 0.525
    assert probes.scaling_shape([10.5, 0, 20], [20, 20, 20]).p_values["U-shaped"] == pytest.approx(
        probes.scaling_shape([10, 0, 20], [20, 20, 20]).p_values["U-shaped"]
    )


def test_one_and_two_rungs():
    one = probes.scaling_shape([5], [10])
    assert one.label == "not determined" and np.isnan(one.p_value)
    two = probes.scaling_shape([10, 90], [100, 100])
    assert two.label == "positive" and set(two.p_values) == {"positive", "inverse", "homogeneity"}


@pytest.mark.parametrize(
    ("correct", "total"),
    [([1, 2], [10]), ([], []), ([11], [10]), ([-1, 2], [10, 10]), ([1, 2], [0, 10]), ([1], [2.5])],
)
def test_bad_counts_are_one_clear_error(correct, total):
    with pytest.raises(InvalidOptionError, match="scaling_shape needs"):
        probes.scaling_shape(correct, total)
