"""The shape of a scaling curve (accuracy by model size), named only when a test says so.

:func:`scaling_shape` takes, per rung of a ladder (smallest model first), how many items were
answered right (a tie counts half) out of how many, and returns a :class:`ScalingShape`: one of
:data:`LABELS`, the p-value of the test behind it, each rung's accuracy with its Wilson 95%
interval, and the rungs that define the shape. The definitions and tests (``docs/conclusions.md``,
"Scaling shape"):

- **Gate**: no shape is named unless the rungs' accuracies differ at all (Pearson's chi-square
  test of homogeneity over the rungs × right/wrong table). A label's p-value is the larger of
  the gate's and its own test's, so a label is called exactly when its p-value is ≤ ``alpha``,
  and a ladder whose rungs all have the same accuracy gets *any* label at most ``alpha`` of
  the time.
- **U-shaped**: some middle rung ``m`` is below both the smallest rung and the largest. For each
  candidate ``m`` the two one-sided comparisons, smallest > ``m`` and largest > ``m``, are
  Fisher's exact tests; the candidate's p-value is the larger of the two (an
  intersection-union test: both sides must be significant). Choosing the dip among the
  ``rungs − 2`` candidates is corrected by Holm's method; the U's own p-value is the smallest
  Holm-adjusted p-value (``rungs − 2`` times the smallest), and its dip is that candidate.
- **inverted U**: the mirror image, some middle rung above both ends.
- **non-monotone**: both a U and an inverted U are significant (a zigzag; it needs ≥ 4 rungs);
  its p-value is the larger of the two.
- **positive** / **inverse**: no significant dip or peak, and the largest rung is significantly
  above / below the smallest (Fisher's exact test, two-sided by doubling the one-sided p-value).
- **not determined**: no label's p-value is ≤ ``alpha``. Its p-value is the smallest of the
  candidate labels' p-values, to show how near the closest shape came.

Why these tests: each label is a statement about a few rungs, so its test compares those rungs'
counts directly, with no resampling (deterministic without a seed, and fast enough to calibrate
on tens of thousands of simulated ladders in the unit tests). The intersection-union test with
Holm's correction keeps the chance of calling a U where there is none at most ``alpha`` whatever
the true curve (flat, monotone, or a peak): a false U needs at least one side of some candidate
to be wrongly significant. Fisher's exact test holds its level at any number of items (the
two-proportion *z* test does not: it calls 2/3, 0/3, 3/3 a U at p = 0.04); a tie counted half is
rounded against the claim being tested, which keeps it exact-or-conservative. A likelihood-ratio
test of a unimodal against an isotonic fit would use every rung, but needs a parametric
bootstrap under a composite null whose least favourable point is not known in closed form.

Calibrated by simulation in ``tests/unit/test_shape.py``: ladders whose rungs all share one
accuracy (chance at two or four options, or 0.9; 3–12 rungs, 20–500 items per rung) are labelled
U-shaped or inverse in at most 5%, and given any label in at most 5%.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float
from numpy.typing import ArrayLike
from scipy.stats import chi2, hypergeom

from probes.errors import InvalidOptionError

#: The labels :func:`scaling_shape` gives, most specific first.
LABELS = ("U-shaped", "inverted U", "non-monotone", "positive", "inverse", "not determined")
#: The labels that have a test of their own (:func:`shape_tests`' keys).
CANDIDATES = ("U-shaped", "inverted U", "positive", "inverse")
#: The level of every test here (and the family-wise level of the dip / peak search).
ALPHA = 0.05


def p_text(p_value: float) -> str:
    """A p-value as printed: ``"p = 0.012"``, ``"p < 0.001"`` below 0.001."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.2g}"


@dataclass(frozen=True)
class ScalingShape:
    """The named shape of one scaling curve, with its evidence.

    Attributes:
        label: One of :data:`LABELS`.
        p_value: The p-value of the test behind ``label``; for "not determined", the smallest
            p-value among the candidate shapes (none of which is below ``alpha``); NaN with one rung.
        accuracy: Per rung, smallest first: correct / total (a tie counts half).
        accuracy_low: Per rung, the lower end of the Wilson 95% interval.
        accuracy_high: Per rung, the upper end of the Wilson 95% interval.
        rungs: The rungs (0-based, smallest first) that define the label: (0, dip, last) for a
            U, (0, peak, last) for an inverted U, (0, dip, peak, last) sorted for non-monotone,
            (0, last) for positive or inverse, () when not determined.
        p_values: Each testable candidate label's p-value (:data:`CANDIDATES`, each already the
            larger of its own test's and the gate's), whether or not it was called, and the
            gate's own (``"homogeneity"``).
        alpha: The level the tests were read at.
    """

    label: str
    p_value: float
    accuracy: tuple[float, ...]
    accuracy_low: tuple[float, ...]
    accuracy_high: tuple[float, ...]
    rungs: tuple[int, ...]
    p_values: dict[str, float] = field(default_factory=dict, hash=False)
    alpha: float = ALPHA

    def __str__(self) -> str:
        return self.label

    def path(self) -> str:
        """The accuracies at the defining rungs, e.g. ``"0.50→0.00→0.99"`` (at every rung if none)."""
        rungs = self.rungs or range(len(self.accuracy))
        return "→".join(f"{self.accuracy[i]:.2f}" for i in sorted(set(rungs)))


def _greater(
    correct_a: np.ndarray, total_a: np.ndarray, correct_b: np.ndarray, total_b: np.ndarray
) -> np.ndarray:
    """One-sided p-value of Fisher's exact test that proportion a > proportion b.

    Conditional on both margins, the count right in a is hypergeometric; the p-value is the
    chance of at least the count observed. A tie counted half is rounded against the claim
    (down in a, up in b), which keeps the test exact-or-conservative.
    """
    right_a, right_b = np.floor(correct_a), np.ceil(correct_b)
    right_a, right_b = np.broadcast_arrays(right_a, right_b)
    total_a, total_b = np.broadcast_arrays(total_a, total_b)
    return hypergeom.sf(right_a - 1, total_a + total_b, right_a + right_b, total_a)


def _homogeneity(correct: np.ndarray, total: np.ndarray) -> np.ndarray:
    """p-value of Pearson's chi-square test that every rung has the same accuracy (rungs − 1 df)."""
    pooled = correct.sum(axis=-1, keepdims=True) / total.sum(axis=-1, keepdims=True)
    expected = pooled * total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (correct - expected) ** 2 / (expected * (1 - pooled))
    statistic = np.where((pooled > 0) & (pooled < 1), terms, 0.0).sum(axis=-1)
    return chi2.sf(statistic, correct.shape[-1] - 1)


def _holm_min(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over the last axis (the candidates): the smallest Holm-adjusted p-value and its candidate.

    Holm's smallest adjusted p-value is ``k × min p`` (capped at 1); the others are larger.
    """
    k = p.shape[-1]
    best = np.argmin(p, axis=-1)
    return np.minimum(1.0, k * np.take_along_axis(p, best[..., None], axis=-1)[..., 0]), best


def shape_tests(
    correct: Float[np.ndarray, "*ladder rung"], total: Float[np.ndarray, "*ladder rung"]
) -> dict[str, np.ndarray]:
    """The candidate shapes' p-values for one or many ladders at once (vectorised over ``*ladder``).

    Returns arrays of shape ``*ladder``: each of :data:`CANDIDATES` (the larger of its own
    test's p-value and the gate's; the U and the inverted U are NaN with fewer than three rungs),
    ``"homogeneity"`` (the gate), and ``"dip"`` / ``"peak"`` (the rung index of the U's dip and
    the inverted U's peak; 0 where there is none).
    """
    correct, total = np.asarray(correct, dtype=float), np.asarray(total, dtype=float)
    batch = correct.shape[:-1]
    first_c, first_n = correct[..., :1], total[..., :1]
    last_c, last_n = correct[..., -1:], total[..., -1:]
    if correct.shape[-1] >= 3:
        middle_c, middle_n = correct[..., 1:-1], total[..., 1:-1]
        dips = np.maximum(
            _greater(first_c, first_n, middle_c, middle_n), _greater(last_c, last_n, middle_c, middle_n)
        )
        peaks = np.maximum(
            _greater(middle_c, middle_n, first_c, first_n), _greater(middle_c, middle_n, last_c, last_n)
        )
        p_u, dip = _holm_min(dips)
        p_peak, peak = _holm_min(peaks)
        dip, peak = dip + 1, peak + 1
    else:
        p_u = p_peak = np.full(batch, np.nan)
        dip = peak = np.zeros(batch, dtype=int)
    rise = _greater(last_c, last_n, first_c, first_n)[..., 0]
    fall = _greater(first_c, first_n, last_c, last_n)[..., 0]
    gate = _homogeneity(correct, total)
    return {
        "U-shaped": np.maximum(gate, p_u),
        "inverted U": np.maximum(gate, p_peak),
        "positive": np.maximum(gate, np.minimum(1.0, 2 * rise)),
        "inverse": np.maximum(gate, np.minimum(1.0, 2 * fall)),
        "homogeneity": gate,
        "dip": dip,
        "peak": peak,
    }


def shape_labels(tests: dict[str, np.ndarray], alpha: float = ALPHA) -> np.ndarray:
    """The label of each ladder from :func:`shape_tests`' p-values (vectorised), by :data:`LABELS`' rules."""
    u = np.nan_to_num(tests["U-shaped"], nan=1.0) <= alpha
    peak = np.nan_to_num(tests["inverted U"], nan=1.0) <= alpha
    rise, fall = tests["positive"] <= alpha, tests["inverse"] <= alpha
    return np.select(
        [u & peak, u, peak, rise, fall],
        ["non-monotone", "U-shaped", "inverted U", "positive", "inverse"],
        default="not determined",
    )


def scaling_shape(correct: ArrayLike, total: ArrayLike, alpha: float = ALPHA) -> ScalingShape:
    """The shape of a scaling curve, called only when its test is significant at ``alpha``.

    Args:
        correct: Per rung, smallest model first: items answered right (a tie counts half, so
            halves are allowed).
        total: Per rung: items asked (the same length as ``correct``).
        alpha: Level of the tests (0.05: 95% confidence).

    Returns:
        A :class:`ScalingShape`: label, p-value, per-rung accuracy with Wilson 95% intervals and
        the rungs that define the label (see the module docstring for each test).

    Raises:
        InvalidOptionError: counts of different lengths, none at all, a total below 1, or a
            count of correct items outside 0..total.
    """
    from probes.analysis.metrics import wilson_interval

    correct_array = np.atleast_1d(np.asarray(correct, dtype=float))
    total_array = np.atleast_1d(np.asarray(total, dtype=float))
    if correct_array.ndim != 1 or correct_array.shape != total_array.shape or correct_array.size == 0:
        raise InvalidOptionError(
            f"scaling_shape needs one count of correct items and one total per rung, as two lists of "
            f"the same length; got {correct_array.shape} and {total_array.shape}"
        )
    bad_total = (total_array < 1).any() or (total_array != np.round(total_array)).any()
    if bad_total or (correct_array < 0).any() or (correct_array > total_array).any():
        raise InvalidOptionError(
            "scaling_shape needs 0 ≤ correct ≤ total and a whole total ≥ 1 at every rung; got "
            f"correct={correct_array.tolist()}, total={total_array.tolist()}"
        )
    if not 0 < alpha < 1:
        raise InvalidOptionError(f"alpha must lie between 0 and 1, got {alpha}")
    intervals = [wilson_interval(float(c), int(n)) for c, n in zip(correct_array, total_array)]
    accuracy = tuple(float(v) for v in correct_array / total_array)
    low, high = tuple(i[0] for i in intervals), tuple(i[1] for i in intervals)
    last = correct_array.size - 1
    if last == 0:
        return ScalingShape("not determined", float("nan"), accuracy, low, high, (), {}, alpha)
    tests = shape_tests(correct_array, total_array)
    label = str(shape_labels(tests, alpha))
    p_values = {name: float(tests[name]) for name in CANDIDATES if not np.isnan(tests[name])}
    dip, peak = int(tests["dip"]), int(tests["peak"])
    if label == "non-monotone":
        p_value, rungs = (
            max(p_values["U-shaped"], p_values["inverted U"]),
            tuple(sorted({0, dip, peak, last})),
        )
    elif label == "U-shaped":
        p_value, rungs = p_values[label], (0, dip, last)
    elif label == "inverted U":
        p_value, rungs = p_values[label], (0, peak, last)
    elif label in ("positive", "inverse"):
        p_value, rungs = p_values[label], (0, last)
    else:
        p_value, rungs = min(p_values[name] for name in CANDIDATES if name in p_values), ()
    p_values["homogeneity"] = float(tests["homogeneity"])
    return ScalingShape(label, p_value, accuracy, low, high, rungs, p_values, alpha)
