"""Tests of a paired effect at many layers at once, with the family-wise error controlled.

A model's layers are tested together (the divergence layer asks at which layers a paired effect
differs from 0), so a per-layer 95% interval would, over 30 layers, find some layer "significant"
in most null data. :func:`sign_flip_max_t` controls the family-wise error rate over the layers
with the max-statistic of Westfall & Young (1993), resampled by sign flips over items (Nichols
& Holmes 2002): under the null hypothesis that each item's vector of paired differences is as
likely as its negation (a distribution symmetric about 0, whatever the dependence between
layers), flipping the sign of whole items leaves the joint distribution unchanged, so the
largest |t| over the layers has a known null distribution. Its 95% quantile ``c`` gives
simultaneous intervals ``mean ± c · standard error``, one per layer: all of them cover the true
means at once with probability about 95%, and a layer is significant exactly where its interval
excludes 0. The calibration is in ``tests/unit/test_familywise.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

#: Two-sided confidence of the simultaneous intervals.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class LayerTests:
    """Per layer: the mean paired difference, its simultaneous interval and adjusted p-value."""

    mean: Float[np.ndarray, " layer"]
    standard_error: Float[np.ndarray, " layer"]
    t: Float[np.ndarray, " layer"]
    #: The 95% quantile of the largest |t| over the layers under sign flips (NaN with < 2 items).
    critical: float
    low: Float[np.ndarray, " layer"]
    high: Float[np.ndarray, " layer"]
    #: Share of sign flips whose largest |t| over the layers reaches this layer's |t|.
    p_adjusted: Float[np.ndarray, " layer"]
    #: Number of sign patterns drawn (every one when 2^items is at most the resamples asked for).
    n_flips: int

    @property
    def significant(self) -> np.ndarray:
        """Layers whose simultaneous interval excludes 0."""
        return np.abs(self.t) > self.critical


def _t_statistics(
    sums: Float[np.ndarray, "flip layer"], squares: Float[np.ndarray, " layer"], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Means and t statistics from the sums of (sign-flipped) differences; the sum of squares
    does not change under sign flips. 0/0 (every difference 0) is t = 0."""
    mean = sums / n
    variance = np.clip((squares - n * mean**2) / (n - 1), 0.0, None)
    error = np.sqrt(variance / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(error > 0, mean / np.where(error > 0, error, 1.0), np.sign(mean) * np.inf)
    return error, np.where(mean == 0, 0.0, t)


def sign_flip_max_t(
    differences: Float[np.ndarray, "item layer"],
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> LayerTests:
    """Paired differences at every layer tested at once: simultaneous intervals and adjusted p.

    Args:
        differences: ``differences[item, layer]``, one row per item (paired: the same item's
            effect at every layer); no NaN.
        n_resamples: Random sign patterns to draw; with ``2**items`` at most this, every pattern
            is used (the exact permutation distribution).
        seed: Seed of the random sign patterns.
        confidence: Simultaneous confidence of the intervals (1 − the family-wise error rate).

    Returns:
        Per-layer means, standard errors, t statistics, simultaneous intervals and
        family-wise adjusted p-values; NaN intervals and p-values with fewer than 2 items.
    """
    differences = np.asarray(differences, dtype=float)
    n, n_layers = differences.shape
    if n < 2:
        nan = np.full(n_layers, np.nan)
        mean = differences.mean(axis=0) if n else nan
        return LayerTests(mean, nan, nan, float("nan"), nan, nan, nan, 0)
    if 2**n <= n_resamples:
        patterns = np.arange(2**n)[:, None] >> np.arange(n) & 1
        signs = 2.0 * patterns - 1.0
    else:
        rng = np.random.default_rng(seed)
        signs = np.vstack([np.ones(n), rng.choice([-1.0, 1.0], size=(n_resamples, n))])
    squares = (differences**2).sum(axis=0)
    error, t = _t_statistics(differences.sum(axis=0, keepdims=True), squares, n)
    error, t = error[0], t[0]
    _, flipped = _t_statistics(signs @ differences, squares, n)
    largest = np.abs(flipped).max(axis=1)
    critical = float(np.quantile(largest, confidence, method="higher"))
    mean = differences.mean(axis=0)
    half = critical * np.where(error > 0, error, 1.0) if np.isinf(critical) else critical * error
    p_adjusted = (largest[:, None] >= np.abs(t)[None, :]).mean(axis=0)
    return LayerTests(
        mean=mean,
        standard_error=error,
        t=t,
        critical=critical,
        low=mean - half,
        high=mean + half,
        p_adjusted=p_adjusted,
        n_flips=len(signs),
    )
