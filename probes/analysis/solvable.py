"""How many sequential steps a model solves, with confidence intervals, and how that grows with depth.

:mod:`probes.analysis.reasoning` gives the accuracy per model and step count k. This module turns it into
measures that are not capped by the design:

- **solvable k**: the largest k such that every k' ≤ k has accuracy ≥ a stated threshold; its
  interval comes from a bootstrap over items (resampled within each k). A model that solves the
  largest k tested is *censored* (its solvable k is at least that, not equal to it); the table
  says so instead of reporting the cap as a value.
- **accuracy intervals**: Wilson score intervals per (model, k).
- **depth fits**: solvable k against the number of layers L under three relations, constant
  (``k = a``), logarithmic (``k = a + b·log2 L``) and linear (``k = a + b·L``), least squares on the
  uncensored models; the evidence is the small-sample AIC (AICc), Akaike weights and the
  leave-one-out error of each fit. With few rungs the weights are weak evidence; they say which
  relation the data favour, not that it is the law. Solvable k hangs on one threshold; compute it
  at several (:data:`SOLVED_AT_SENSITIVITY`) and report how the fits move.
- **item-level model** (:func:`depth_logistic`): a logistic regression of each item's correctness
  on k, depth and their product, with the training seed as a factor, fitted to every item rather
  than to one number per model. Its depth coefficient needs no threshold. Depth varies only
  between models (training runs), so its interval is cluster-robust by model: the items of one
  run are not independent evidence about depth.

Wei et al. (2022) argue that l sequential steps need O(l) layers (linear); pointer doubling and
associative scans need only O(log l) (Sanford et al. 2024; Liu et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from probes.errors import InvalidItemError

#: Accuracy from which a step count counts as solved, unless stated otherwise.
SOLVED_AT = 0.8

#: Thresholds at which solvable k and its fits are reported side by side.
SOLVED_AT_SENSITIVITY = (0.7, 0.8, 0.9)

#: The fitted relations between layers L and solvable k: name -> feature of L (None: constant).
RELATIONS: dict[str, str | None] = {"constant": None, "logarithmic": "log2", "linear": "identity"}


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial share (``(nan, nan)`` when ``n`` is 0)."""
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    return low, 1.0 if successes == n else min(1.0, centre + half)


def solved_prefix(accuracy_by_k: dict[int, float], threshold: float) -> int:
    """The largest k such that k' = 1 … k are all tested and all have accuracy ≥ ``threshold``."""
    solved = 0
    for k in sorted(accuracy_by_k):
        if k != solved + 1 or accuracy_by_k[k] < threshold:
            break
        solved = k
    return solved


def accuracy_table(per_item: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (model, k): items, accuracy and its Wilson interval.

    ``per_item`` has one row per (model, item) with ``model``, ``n_layers``, ``steps`` and a boolean
    ``correct`` (the true answer is the top option at the last layer).
    """
    _check(per_item, ["model", "n_layers", "steps", "correct"])
    rows = []
    for (model, steps), group in per_item.groupby(["model", "steps"], sort=True):
        right, n = int(group["correct"].sum()), len(group)
        low, high = wilson_interval(right, n, confidence)
        rows.append(
            {
                "model": model,
                "n_layers": int(group["n_layers"].iloc[0]),
                "steps": int(steps),
                "n_items": n,
                "accuracy": right / n,
                "accuracy_low": low,
                "accuracy_high": high,
            }
        )
    return pd.DataFrame(rows)


def solvable_steps(
    per_item: pd.DataFrame,
    threshold: float = SOLVED_AT,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per model: solvable k (the largest k with accuracy ≥ ``threshold`` at every k' ≤ k) and its CI.

    The interval is the percentile interval of the solvable k over ``n_resamples`` bootstrap
    resamples of the items, drawn within each k; its ends are values the draws took (k is a whole
    number: no interpolation between two draws). ``censored`` is True when the model solves the
    largest k tested (its solvable k is only a lower bound).
    """
    _check(per_item, ["model", "n_layers", "steps", "correct"])
    rng = np.random.default_rng(seed)
    rows = []
    for model, group in per_item.groupby("model", sort=False):
        by_k = {int(k): g["correct"].to_numpy(dtype=float) for k, g in group.groupby("steps")}
        point = solved_prefix({k: values.mean() for k, values in by_k.items()}, threshold)
        draws = np.empty(n_resamples)
        for r in range(n_resamples):
            resampled = {k: rng.choice(v, size=len(v)).mean() for k, v in by_k.items()}
            draws[r] = solved_prefix(resampled, threshold)
        tail = (1 - confidence) / 2
        rows.append(
            {
                "model": model,
                "n_layers": int(group["n_layers"].iloc[0]),
                "solvable_k": point,
                "solvable_k_low": float(np.quantile(draws, tail, method="lower")),
                "solvable_k_high": float(np.quantile(draws, 1 - tail, method="higher")),
                "max_k_tested": max(by_k),
                "censored": point == max(by_k),
                "threshold": threshold,
            }
        )
    return pd.DataFrame(rows).sort_values(["n_layers", "model"]).reset_index(drop=True)


def _feature(name: str | None, layers: np.ndarray) -> np.ndarray | None:
    if name is None:
        return None
    return np.log2(layers) if name == "log2" else layers.astype(float)


def _least_squares(x: np.ndarray | None, y: np.ndarray) -> np.ndarray:
    design = np.ones((len(y), 1)) if x is None else np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def fit_relations(layers: Sequence[float], solvable: Sequence[float]) -> pd.DataFrame:
    """Least-squares fits of solvable k against layers L: constant, logarithmic, linear.

    Returns one row per relation: ``intercept``, ``slope`` (NaN for constant), ``rss``, ``aicc``
    (Gaussian errors, variance estimated; parameters = coefficients + 1), ``akaike_weight`` and
    ``loo_rmse`` (leave-one-out root-mean-square error), with ``n_points``.

    Raises:
        InvalidItemError: fewer than three points, or all at one depth.
    """
    x_all, y = np.asarray(layers, dtype=float), np.asarray(solvable, dtype=float)
    if len(y) < 3 or len(set(x_all)) < 2:
        raise InvalidItemError(
            f"fitting depth against solvable k needs at least three models of two depths; got {len(y)}."
        )
    n = len(y)
    rows = []
    for relation, feature in RELATIONS.items():
        x = _feature(feature, x_all)
        coefficients = _least_squares(x, y)
        fitted = coefficients[0] + (0 if x is None else coefficients[1] * x)
        rss = float(np.sum((y - fitted) ** 2))
        parameters = len(coefficients) + 1
        log_likelihood_term = n * math.log(max(rss, 1e-12) / n)
        correction = (
            2 * parameters * (parameters + 1) / (n - parameters - 1) if n - parameters - 1 > 0 else math.inf
        )
        errors = []
        for left_out in range(n):
            keep = np.arange(n) != left_out
            x_keep = None if x is None else x[keep]
            held = _least_squares(x_keep, y[keep])
            guess = held[0] + (0 if x is None else held[1] * x[left_out])
            errors.append(y[left_out] - guess)
        rows.append(
            {
                "relation": relation,
                "intercept": float(coefficients[0]),
                "slope": float(coefficients[1]) if len(coefficients) > 1 else math.nan,
                "rss": rss,
                "aicc": log_likelihood_term + 2 * parameters + correction,
                "loo_rmse": float(np.sqrt(np.mean(np.square(errors)))),
                "n_points": n,
            }
        )
    table = pd.DataFrame(rows)
    finite = np.isfinite(table["aicc"])
    delta = table["aicc"] - table.loc[finite, "aicc"].min()
    weights = np.where(finite, np.exp(-delta.where(finite, 0) / 2), 0.0)
    if not finite.any():  # too few points for any AICc: no relation is preferred (not 0/0)
        return table.assign(akaike_weight=math.nan)
    return table.assign(akaike_weight=weights / weights.sum())


def relation_curve(fits: pd.DataFrame, layers: Sequence[float]) -> pd.DataFrame:
    """Each fitted relation evaluated at ``layers`` (for the figure): relation, n_layers, solvable_k."""
    rows = []
    for fit in fits.itertuples(index=False):
        feature = RELATIONS[fit.relation]
        for depth in layers:
            x = 0.0 if feature is None else (math.log2(depth) if feature == "log2" else float(depth))
            slope = 0.0 if feature is None else fit.slope
            rows.append(
                {"relation": fit.relation, "n_layers": depth, "solvable_k": fit.intercept + slope * x}
            )
    return pd.DataFrame(rows)


def _check(table: pd.DataFrame, columns: list[str]) -> None:
    missing = [column for column in columns if column not in table.columns]
    if table.empty or missing:
        raise InvalidItemError(
            f"the per-item table is empty or lacks {missing}; build it from a layer table's last layer "
            "(probes.analysis.solvable.last_layer_items)."
        )


def last_layer_items(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, item): ``correct`` at the model's last layer, from a layer table with ``steps``."""
    _check(table, ["model", "n_layers", "steps", "correct", "layer", "item_id"])
    last = table[table["layer"] == table["n_layers"]]
    return last[["model", "n_layers", "task", "item_id", "steps", "correct"]].assign(
        correct=last["correct"].astype(bool)
    )


def depth_logistic(per_item: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Logistic regressions of last-layer correctness on k and depth, one row per coefficient.

    Two models are fitted to every item (``statsmodels`` GLM, binomial, logit link):

    - ``additive``: ``correct ~ steps + n_layers [+ C(seed)]``;
    - ``interaction``: ``correct ~ steps * n_layers [+ C(seed)]`` (the depth effect may change with k).

    The seed factor enters when ``per_item`` has a ``seed`` column with two or more values.
    ``per_item`` is :func:`last_layer_items` (``model``, ``n_layers``, ``steps``, ``correct``).
    Each row: ``model_form``, ``term``, ``estimate`` (log-odds), ``low`` / ``high`` and ``p_value``
    from standard errors clustered by model (depth varies between models only, so items of one
    model are not independent evidence about it), ``naive_low`` / ``naive_high`` (items treated
    as independent, for comparison), ``aic``, ``n_items``, ``n_models``. One derived row per
    model form, term ``steps_per_layer`` = −β(n_layers) / β(steps) (the additive model; for the
    interaction model at the mean k), is how far the k reached at any fixed accuracy moves per
    added layer, with a delta-method interval from the clustered covariance.

    Raises:
        InvalidItemError: too few models (fewer than three, or of one depth) or one k only.
    """
    import statsmodels.api as sm  # imported here: a heavy import only this function needs
    import statsmodels.formula.api as smf

    _check(per_item, ["model", "n_layers", "steps", "correct"])
    models = per_item.groupby("model")["n_layers"].first()
    if len(models) < 3 or models.nunique() < 2 or per_item["steps"].nunique() < 2:
        raise InvalidItemError(
            "the item-level depth model needs items of at least three models of two depths and two k; "
            f"got {len(models)} models of {models.nunique()} depths and {per_item['steps'].nunique()} k."
        )
    data = per_item.assign(correct=per_item["correct"].astype(float))
    seeds = "seed" in data.columns and data["seed"].nunique() > 1
    groups = pd.factorize(data["model"])[0]
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rows = []
    for form, rhs in (("additive", "steps + n_layers"), ("interaction", "steps * n_layers")):
        formula = f"correct ~ {rhs}" + (" + C(seed)" if seeds else "")
        model = smf.glm(formula, data, family=sm.families.Binomial())
        naive = model.fit()
        clustered = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
        common = {"model_form": form, "aic": float(naive.aic), "n_items": len(data), "n_models": len(models)}
        for term in clustered.params.index:
            estimate, error = float(clustered.params[term]), float(clustered.bse[term])
            naive_error = float(naive.bse[term])
            rows.append(
                {
                    **common,
                    "term": term,
                    "estimate": estimate,
                    "low": estimate - z * error,
                    "high": estimate + z * error,
                    "p_value": float(clustered.pvalues[term]),
                    "naive_low": estimate - z * naive_error,
                    "naive_high": estimate + z * naive_error,
                }
            )
        rows.append({**common, **_steps_per_layer(clustered, float(data["steps"].mean()), z)})
    return pd.DataFrame(rows)


def _steps_per_layer(fit: Any, mean_k: float, z: float) -> dict[str, Any]:
    """−∂logit/∂L ÷ ∂logit/∂k at ``mean_k`` (and L at its mean, for the interaction), delta method."""
    params, cov = fit.params, fit.cov_params()
    names = list(params.index)
    gradient_depth = np.zeros(len(names))  # ∂logit/∂L = β_L + β_kL·k
    gradient_steps = np.zeros(len(names))  # ∂logit/∂k = β_k + β_kL·L
    gradient_depth[names.index("n_layers")] = 1.0
    gradient_steps[names.index("steps")] = 1.0
    if "steps:n_layers" in names:
        mean_layers = float(fit.model.data.frame["n_layers"].mean())
        gradient_depth[names.index("steps:n_layers")] = mean_k
        gradient_steps[names.index("steps:n_layers")] = mean_layers
    values = params.to_numpy()
    depth, steps = float(gradient_depth @ values), float(gradient_steps @ values)
    ratio = -depth / steps
    gradient = -(gradient_depth / steps) + depth * gradient_steps / steps**2
    error = float(np.sqrt(gradient @ cov.to_numpy() @ gradient))
    return {
        "term": "steps_per_layer",
        "estimate": ratio,
        "low": ratio - z * error,
        "high": ratio + z * error,
        "p_value": math.nan,
        "naive_low": math.nan,
        "naive_high": math.nan,
    }
