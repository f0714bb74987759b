"""Many layers tested at once: the sign-flip max-t test keeps the family-wise error at 5%."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from probes.analysis.familywise import sign_flip_max_t


def _null(rng: np.random.Generator, n_items: int, n_layers: int) -> np.ndarray:
    """Paired differences with no effect at any layer: heavy-tailed (t with 3 degrees of
    freedom), symmetric, correlated over layers (a random walk along depth), of unequal scale."""
    steps = rng.standard_t(3, size=(n_items, n_layers))
    return np.cumsum(steps, axis=1) * rng.uniform(0.1, 3.0, size=(n_items, 1))


@pytest.mark.parametrize(("n_items", "n_layers"), [(12, 30), (40, 30), (200, 12)])
def test_family_wise_false_positive_rate_is_at_most_five_percent_on_null_data(n_items, n_layers):
    rng = np.random.default_rng(n_items * 100 + n_layers)
    n_simulations = 400
    any_layer, any_uncorrected = 0, 0
    for _ in range(n_simulations):
        differences = _null(rng, n_items, n_layers)
        tests = sign_flip_max_t(differences, n_resamples=500, seed=int(rng.integers(1 << 30)))
        any_layer += bool(tests.significant.any())
        per_layer = stats.ttest_1samp(differences, 0.0, axis=0).pvalue
        any_uncorrected += bool((per_layer < 0.05).any())
    rate = any_layer / n_simulations
    # the rate is consistent with at most 5%: an exact binomial test of rate > 5% does not reject
    assert stats.binomtest(any_layer, n_simulations, 0.05, alternative="greater").pvalue > 0.05, rate
    assert rate <= 0.07
    assert any_uncorrected / n_simulations > 2 * rate  # testing every layer at 5% is what it corrects


def test_a_real_effect_at_some_layers_is_found_there_only():
    rng = np.random.default_rng(0)
    differences = rng.normal(0, 1, size=(60, 20))
    differences[:, 15:] -= 1.0
    tests = sign_flip_max_t(differences, n_resamples=1000)
    assert tests.significant[15:].all() and not tests.significant[:15].any()
    assert (tests.high[15:] < 0).all() and (tests.low[:15] < 0).all() and (tests.high[:15] > 0).all()
    assert (tests.p_adjusted[15:] < 0.05).all()
    # simultaneous intervals are wider than per-layer 95% t intervals
    per_layer = stats.t.ppf(0.975, 59)
    assert tests.critical > per_layer


def test_few_items_use_every_sign_pattern_and_are_deterministic():
    differences = np.array([[1.0, -0.5], [2.0, 0.1], [1.5, 0.3], [0.7, -0.2], [1.2, 0.0]])
    first, second = sign_flip_max_t(differences, n_resamples=1000), sign_flip_max_t(differences)
    assert first.n_flips == 32 and second.n_flips == 32
    assert first.critical == second.critical
    # with 5 items the smallest attainable adjusted p is 2/32 (all positive or all negative):
    # nothing can be significant at 5%, however large the effect
    assert first.p_adjusted.min() == pytest.approx(2 / 32)
    assert not first.significant.any()
    many = sign_flip_max_t(np.vstack([differences] * 3), n_resamples=400, seed=3)
    assert many.n_flips == 401 and many.significant[0] and not many.significant[1]
    assert sign_flip_max_t(np.vstack([differences] * 3), n_resamples=400, seed=3).critical == many.critical


def test_constant_and_too_few_differences():
    zeros = sign_flip_max_t(np.zeros((10, 3)))
    assert (zeros.t == 0).all() and not zeros.significant.any()
    one = sign_flip_max_t(np.ones((1, 3)))
    assert np.isnan(one.critical) and not one.significant.any() and (one.mean == 1).all()
