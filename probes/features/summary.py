"""Aggregates of the feature tables: rankings with intervals, the identity's terms per size, and the checks.

Every function takes tables as :meth:`probes.store.store.Store.read` returns them (several
models, tasks, variants and layers at once) and groups by :data:`KEYS`. Means over items count
an item where a feature is inactive as 0 (its attribution there is exactly 0), so the mean
attributions of all features, the baseline and the error term add up to the mean log-odds.
Intervals are 95%: Student's t for mean attributions (features named as pushing one way pass
Holm's correction over their layer's features), the percentile bootstrap over items
(seeded) for changes and their differences, Wilson for accuracies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from probes.analysis.metrics import accuracy_interval, bootstrap_interval

KEYS = ["model", "task", "variant", "layer"]


def _n_items(items: pd.DataFrame) -> pd.DataFrame:
    return items.groupby(KEYS, sort=False).agg(n_items=("item_id", "nunique")).reset_index()


def feature_ranking(features: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Each active feature's mean attribution over items, 95% t-interval, most distractor-pushing first.

    Columns: :data:`KEYS`, ``feature``, ``attribution`` (mean), ``low``, ``high``, ``p_value``
    (Student's t, mean ≠ 0), ``p_holm`` (Holm-adjusted over the group's active features: a layer's
    SAE tests hundreds of features at once), ``n_items``,
    ``n_active`` (items where it fires), ``activation`` (mean where it fires), ``token``,
    ``token_text`` and ``from_end`` (where its activation is largest on most items: the token, as
    id and text, and its position counted back from the answer position, taken together).
    """
    counts = _n_items(items)
    keys = [*KEYS, "feature"]
    rows = features.assign(
        squared=features["attribution"] ** 2,
        peak=features["token"].astype(str) + "@" + features["from_end"].astype(str),
    )
    table = rows.groupby(keys, sort=False).agg(
        total=("attribution", "sum"),
        squares=("squared", "sum"),
        n_active=("item_id", "nunique"),
        activation=("activation", "mean"),
    )
    # where it peaks on most items (ties: the smallest, as Series.mode)
    peaks = rows.groupby([*keys, "peak"], sort=False).size().rename("count").reset_index()
    peaks = peaks.sort_values(["count", "peak"], ascending=[False, True], kind="stable").drop_duplicates(keys)
    table = table.join(peaks.set_index(keys)["peak"]).reset_index()
    table = table.merge(counts, on=KEYS)
    split = table.pop("peak").str.split("@", expand=True)
    table["token"], table["from_end"] = split[0].astype(int), split[1].astype(int)
    if "token_text" in features:  # each token's text (one tokenizer per model)
        texts = features.drop_duplicates(["model", "token"]).set_index(["model", "token"])["token_text"]
        table["token_text"] = [texts.get((m, t), str(t)) for m, t in zip(table["model"], table["token"])]
    else:
        table["token_text"] = table["token"].astype(str)
    n = table["n_items"].to_numpy(dtype=float)
    mean = table["total"] / n
    variance = (table["squares"] - n * mean**2) / np.maximum(n - 1, 1)
    half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * np.sqrt(np.maximum(variance, 0) / n)
    half = np.where(n > 1, half, np.nan)  # one item: no interval (not a zero-width one that excludes 0)
    table = table.assign(attribution=mean, low=mean - half, high=mean + half)
    spread = np.sqrt(np.maximum(variance, 0) / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(spread > 0, np.abs(mean) / spread, np.where(mean != 0, np.inf, 0.0))
    table["p_value"] = np.where(n > 1, 2 * stats.t.sf(t, np.maximum(n - 1, 1)), np.nan)
    table["p_holm"] = table.groupby(KEYS, sort=False)["p_value"].transform(_holm)
    table = table.drop(columns=["total", "squares"])
    return table.sort_values([*KEYS, "attribution"], kind="stable").reset_index(drop=True)


def _holm(p_values: pd.Series) -> pd.Series:
    """Holm's step-down adjustment of one group's p-values (missing ones stay missing).

    The same numbers as ``statsmodels.stats.multitest.multipletests(method="holm")`` (tested),
    which runs a full garbage collection per call: per group of a large store that took minutes.
    """
    adjusted = pd.Series(np.nan, index=p_values.index)
    known = p_values.dropna()
    if len(known):
        order = np.argsort(known.to_numpy(), kind="stable")
        ranked = known.to_numpy()[order] * (len(known) - np.arange(len(known)))
        values = np.empty(len(known))
        values[order] = np.minimum(np.maximum.accumulate(ranked), 1.0)
        adjusted[known.index] = values
    return adjusted


def top_features(ranking: pd.DataFrame, n: int = 5, alpha: float = 0.05) -> pd.DataFrame:
    """Per group, the ``n`` features pushing the distractor hardest and the ``n`` pushing the true answer.

    Only features whose mean differs from 0 after Holm's correction over the group's features
    (``p_holm < alpha``: at most ``alpha`` chance that any feature of a layer with no effect is
    named); ``side`` says which way it pushes.
    """
    found = ranking[ranking["p_holm"] < alpha]
    distractor = found[found["attribution"] < 0].groupby(KEYS, sort=False).head(n).assign(side="distractor")
    true = (
        found[found["attribution"] > 0]
        .sort_values([*KEYS, "attribution"], ascending=[True] * len(KEYS) + [False], kind="stable")
        .groupby(KEYS, sort=False)
        .head(n)
        .assign(side="true")
    )
    return pd.concat([distractor, true], ignore_index=True)


def identity_terms(features: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per group, the mean log-odds as the sum of its terms.

    ``distractor_features`` sums the mean attributions of the features whose mean is below 0,
    ``true_features`` those above 0; with ``baseline``, ``error`` and ``gap`` (the integration's
    own error) they add up to ``log_odds``. Also ``accuracy`` and ``spliced_accuracy`` (the SAE's
    reconstruction without its error term in place of the residual).
    """
    ranking = feature_ranking(features, items)
    sides = (
        ranking.assign(
            distractor_features=ranking["attribution"].clip(upper=0),
            true_features=ranking["attribution"].clip(lower=0),
        )
        .groupby(KEYS, sort=False)[["distractor_features", "true_features"]]
        .sum()
    )
    means = items.groupby(KEYS, sort=False).agg(
        log_odds=("log_odds", "mean"),
        baseline=("baseline", "mean"),
        error=("error_attribution", "mean"),
        gap=("completeness_gap", "mean"),
        spliced_log_odds=("spliced_log_odds", "mean"),
        accuracy=("correct", "mean"),
        spliced_accuracy=("spliced_correct", "mean"),
        n_items=("item_id", "nunique"),
    )
    return means.join(sides).fillna({"distractor_features": 0.0, "true_features": 0.0}).reset_index()


def splice_check(items: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per group: how splicing the SAE in moves the log-odds (mean, bootstrap 95% interval) and the
    accuracy (Wilson intervals), and the largest gap of the attribution identity."""
    rows = []
    for key, group in items.groupby(KEYS, sort=False):
        change = (group["spliced_log_odds"] - group["log_odds"]).to_numpy()
        low, high = bootstrap_interval(change, 2000, seed=seed)
        accuracy, accuracy_low, accuracy_high = accuracy_interval(group["correct"].to_numpy())
        spliced, spliced_low, spliced_high = accuracy_interval(group["spliced_correct"].to_numpy())
        rows.append(
            {
                **dict(zip(KEYS, key)),
                "n_items": len(group),
                "splice_change": float(change.mean()),
                "splice_change_low": low,
                "splice_change_high": high,
                "accuracy": accuracy,
                "accuracy_low": accuracy_low,
                "accuracy_high": accuracy_high,
                "spliced_accuracy": spliced,
                "spliced_accuracy_low": spliced_low,
                "spliced_accuracy_high": spliced_high,
                "max_completeness_gap": float(group["completeness_gap"].abs().max()),
                "error_share": float(
                    group["error_attribution"].abs().mean()
                    / max((group["error_attribution"].abs() + group["features_total"].abs()).mean(), 1e-12)
                ),
            }
        )
    return pd.DataFrame(rows)


def attribution_check(features: pd.DataFrame) -> pd.DataFrame:
    """Per group: attribution against the exact effect of ablating the feature (rows where measured).

    ``r`` is Pearson's correlation of ``attribution`` with ``-ablation_effect``, ``slope`` the
    least-squares slope through 0 (1 = the attribution predicts the ablation's size), ``r_linear``
    the same correlation for the gradient-at-the-clean-point estimate.
    """
    checked = features.dropna(subset=["ablation_effect"])
    rows = []
    for key, group in checked.groupby(KEYS, sort=False):
        effect = -group["ablation_effect"].to_numpy()
        attribution = group["attribution"].to_numpy()
        linear = group["linear_attribution"].to_numpy()
        defined = len(group) > 2 and effect.std() > 0
        rows.append(
            {
                **dict(zip(KEYS, key)),
                "n_checked": len(group),
                "r": float(np.corrcoef(attribution, effect)[0, 1])
                if defined and attribution.std() > 0
                else np.nan,
                "r_linear": float(np.corrcoef(linear, effect)[0, 1])
                if defined and linear.std() > 0
                else np.nan,
                "slope": float((attribution * effect).sum() / max((attribution**2).sum(), 1e-12)),
            }
        )
    return pd.DataFrame(rows)


def ablation_comparison(ablation: pd.DataFrame, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group and k: the accuracy change of ablating the top-k distractor features and k random ones.

    Per item, ``top`` is its credit change with the top-k set ablated and ``random`` the mean of its
    changes over the random draws; ``difference`` = top − random. Each with a percentile-bootstrap
    95% interval over items (the same resamples for the three), and the log-odds changes likewise.
    ``decided`` says whether the difference's interval excludes 0: ``top > random``,
    ``top < random`` or ``not determined``. Ks with no top set (fewer distractor-pushing
    features than k) are left out; where only one half's ranking has k of them, the comparison
    (``n_items``, ``accuracy_clean``) is over the other half's items alone.
    """
    measures = [
        f"{prefix}_{name}{end}"
        for prefix in ("accuracy", "log_odds")
        for name in ("top", "random", "difference")
        for end in ("", "_low", "_high")
    ]
    columns = [*KEYS, "k", "n_items", *measures, "decided", "accuracy_clean"]
    if ablation.empty:  # no k had a feature set to ablate
        return pd.DataFrame(columns=columns)
    table = ablation.assign(
        accuracy_change=ablation["correct_ablated"] - ablation["correct_clean"],
        log_odds_change=ablation["log_odds_ablated"] - ablation["log_odds_clean"],
    )
    rows = []
    for key, group in table.groupby([*KEYS, "k"], sort=False):
        per_item = (
            group.groupby(["item_id", "selection"])[["accuracy_change", "log_odds_change"]].mean().unstack()
        )
        if ("accuracy_change", "top") not in per_item or ("accuracy_change", "random") not in per_item:
            continue
        per_item = per_item.dropna()
        n = len(per_item)  # resampled afresh per group: its interval does not depend on the others
        resamples = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
        row = {**dict(zip([*KEYS, "k"], key)), "n_items": n}
        for measure in ("accuracy_change", "log_odds_change"):
            top = per_item[(measure, "top")].to_numpy()
            random = per_item[(measure, "random")].to_numpy()
            prefix = "accuracy" if measure == "accuracy_change" else "log_odds"
            for name, values in (("top", top), ("random", random), ("difference", top - random)):
                low, high = np.percentile(values[resamples].mean(1), [2.5, 97.5])
                row.update(
                    {f"{prefix}_{name}": float(values.mean()), f"{prefix}_{name}_low": float(low),
                     f"{prefix}_{name}_high": float(high)}
                )  # fmt: skip
        low, high = row["accuracy_difference_low"], row["accuracy_difference_high"]
        row["decided"] = "top > random" if low > 0 else "top < random" if high < 0 else "not determined"
        compared = group[group["item_id"].isin(per_item.index)].drop_duplicates("item_id")
        row["accuracy_clean"] = float(compared["correct_clean"].mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def token_totals(ranking: pd.DataFrame) -> pd.DataFrame:
    """Per group, the mean attribution summed over the features that peak at each (token, position).

    Groups the rows of :func:`feature_ranking` by where each feature peaks most often (``token``,
    ``from_end``): what the features read at "not" carry to the answer, per size and layer.
    Columns: :data:`KEYS`, ``token``, ``from_end``, ``features`` (how many), ``attribution``
    (their summed mean attribution), ``distractor`` and ``true`` (its negative and positive parts).
    """
    parts = ranking.assign(
        distractor=ranking["attribution"].clip(upper=0), true=ranking["attribution"].clip(lower=0)
    )
    totals = parts.groupby([*KEYS, "token", "token_text", "from_end"], sort=False).agg(
        features=("feature", "size"),
        attribution=("attribution", "sum"),
        distractor=("distractor", "sum"),
        true=("true", "sum"),
    )
    return totals.reset_index()
