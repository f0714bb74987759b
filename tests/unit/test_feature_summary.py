"""The feature study's aggregates on tables built by hand: identity, intervals, and the verdict's calibration.

No model and no SAELens: these check the statistics (:mod:`probes.features.summary`) and the
cross-fitting split (:func:`probes.features.ablation.halves`) on simulated data, including
how often the top-k vs random-k verdict claims a difference where there is none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probes.features.ablation import halves
from probes.features.summary import (
    ablation_comparison,
    attribution_check,
    feature_ranking,
    identity_terms,
    splice_check,
    top_features,
)

GROUP = {"model": "m", "task": "t", "variant": "prize", "layer": 1}


def _tables(rng: np.random.Generator, n_items: int = 40, n_features: int = 12):
    """Feature rows (each feature active on a random subset of items) and item rows that obey the identity."""
    feature_rows, item_rows = [], []
    means = np.linspace(-1.0, 1.0, n_features)
    for item in range(n_items):
        active = np.flatnonzero(rng.random(n_features) < 0.6)
        values = means[active] + rng.normal(0, 0.3, len(active))
        for feature, value in zip(active, values):
            feature_rows.append(
                {**GROUP, "item_id": f"i{item}", "feature": int(feature), "activation": 1.0, "token": 7,
                 "from_end": 0, "attribution": float(value), "linear_attribution": float(value),
                 "ablation_effect": float(-value)}
            )  # fmt: skip
        baseline, error = rng.normal(0, 1), rng.normal(0, 0.5)
        log_odds = baseline + error + values.sum()
        item_rows.append(
            {**GROUP, "item_id": f"i{item}", "log_odds": log_odds, "baseline": baseline,
             "error_attribution": error, "features_total": values.sum(), "completeness_gap": 0.0,
             "spliced_log_odds": log_odds - error, "correct": float(log_odds > 0),
             "spliced_correct": float(log_odds - error > 0)}
        )  # fmt: skip
    return pd.DataFrame(feature_rows), pd.DataFrame(item_rows)


def test_identity_terms_add_up_to_the_mean_log_odds():
    features, items = _tables(np.random.default_rng(0))
    terms = identity_terms(features, items).iloc[0]
    total = terms["baseline"] + terms["error"] + terms["distractor_features"] + terms["true_features"]
    assert total == pytest.approx(terms["log_odds"], abs=1e-9)
    assert terms["distractor_features"] < 0 < terms["true_features"]


def test_ranking_counts_inactive_items_as_zero_and_orders_distractor_first():
    features, items = _tables(np.random.default_rng(1))
    ranking = feature_ranking(features, items)
    first = ranking.iloc[0]
    rows = features[features["feature"] == first["feature"]]
    assert first["attribution"] == pytest.approx(rows["attribution"].sum() / len(items))
    assert first["n_items"] == len(items) and first["n_active"] == rows["item_id"].nunique()
    assert list(ranking["attribution"]) == sorted(ranking["attribution"])
    tops = top_features(ranking, n=3)
    assert (tops.loc[tops["side"] == "distractor", "high"] < 0).all()
    assert (tops.loc[tops["side"] == "true", "low"] > 0).all()


def test_ranking_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    trials, n = 400, 30
    models = np.repeat([f"m{t}" for t in range(trials)], n)
    ids = np.tile([f"i{i}" for i in range(n)], trials)
    common = {"task": "t", "variant": "prize", "layer": 1}
    features = pd.DataFrame(
        {**common, "model": models, "item_id": ids, "feature": 0, "activation": 1.0, "token": 1,
         "from_end": 0, "attribution": rng.normal(-0.2, 1.0, trials * n)}
    )  # fmt: skip
    items = pd.DataFrame({**common, "model": models, "item_id": ids})
    ranking = feature_ranking(features, items)
    covered = ((ranking["low"] <= -0.2) & (ranking["high"] >= -0.2)).mean()
    assert len(ranking) == trials and 0.92 <= covered <= 0.98


def _ablation(rng: np.random.Generator, n_items: int, top_flip: float, random_flip: float, draws: int = 5):
    rows = []
    for item in range(n_items):
        base = dict(GROUP, item_id=f"i{item}", k=4, correct_clean=0.0, log_odds_clean=-1.0)
        flip = float(rng.random() < top_flip)
        rows.append(
            {**base, "selection": "top", "draw": 0, "correct_ablated": flip, "log_odds_ablated": flip}
        )
        for draw in range(draws):
            flip = float(rng.random() < random_flip)
            rows.append(
                {
                    **base,
                    "selection": "random",
                    "draw": draw,
                    "correct_ablated": flip,
                    "log_odds_ablated": flip,
                }
            )
    return pd.DataFrame(rows)


def test_top_vs_random_verdict_is_calibrated_on_null_data():
    """Top and random sets that flip items equally often: a difference is claimed about 5% of the time."""
    rng = np.random.default_rng(3)
    claims, trials = 0, 300
    for trial in range(trials):
        row = ablation_comparison(_ablation(rng, 100, 0.2, 0.2), n_resamples=500, seed=trial).iloc[0]
        claims += row["decided"] != "not determined"
    assert claims / trials <= 0.09


def test_top_vs_random_verdict_finds_a_real_difference():
    row = ablation_comparison(_ablation(np.random.default_rng(4), 100, 0.5, 0.05)).iloc[0]
    assert row["decided"] == "top > random"
    assert row["accuracy_difference_low"] > 0
    assert row["accuracy_top"] == pytest.approx(row["accuracy_top"])  # a number, not NaN


def test_no_difference_at_all_is_not_determined():
    row = ablation_comparison(_ablation(np.random.default_rng(5), 30, 0.0, 0.0)).iloc[0]
    assert row["decided"] == "not determined"
    assert row["accuracy_difference_low"] == row["accuracy_difference_high"] == 0


def test_splice_and_attribution_checks():
    features, items = _tables(np.random.default_rng(6))
    splice = splice_check(items).iloc[0]
    assert splice["splice_change_low"] <= splice["splice_change"] <= splice["splice_change_high"]
    assert splice["max_completeness_gap"] == 0
    check = attribution_check(features).iloc[0]
    assert check["r"] == pytest.approx(1.0) and check["slope"] == pytest.approx(1.0)


def test_halves_are_balanced_seeded_and_independent_of_order():
    ids = [f"item{i}" for i in range(11)]
    split = halves(ids, seed=0)
    assert sorted(split.values()).count(0) in (5, 6)
    assert split == halves(list(reversed(ids)), seed=0)
    assert split != halves(ids, seed=1)


def test_token_totals_split_the_features_by_where_they_peak():
    from probes.features.summary import token_totals

    features, items = _tables(np.random.default_rng(7))
    features["token"] = np.where(features["feature"] < 6, 3, 4)
    ranking = feature_ranking(features, items)
    totals = token_totals(ranking)
    assert totals["features"].sum() == len(ranking)
    assert totals["attribution"].sum() == pytest.approx(ranking["attribution"].sum())
    assert (totals["distractor"] <= 0).all() and (totals["true"] >= 0).all()


def test_a_groups_intervals_do_not_depend_on_the_other_groups_in_the_store():
    alone = _ablation(np.random.default_rng(8), 40, 0.3, 0.1)
    other = _ablation(np.random.default_rng(9), 40, 0.3, 0.1).assign(model="another")
    together = ablation_comparison(pd.concat([other, alone], ignore_index=True))
    pd.testing.assert_frame_equal(
        together[together["model"] == "m"].reset_index(drop=True), ablation_comparison(alone)
    )


def test_one_item_gives_no_interval_and_no_top_feature():
    features, items = _tables(np.random.default_rng(10), n_items=1)
    ranking = feature_ranking(features, items)
    assert ranking["low"].isna().all() and ranking["high"].isna().all()
    assert top_features(ranking).empty


def test_no_k_with_a_feature_set_gives_an_empty_comparison_with_its_columns():
    only_random = _ablation(np.random.default_rng(11), 10, 0.2, 0.2).query("selection == 'random'")
    for table in (only_random, only_random.iloc[:0], pd.DataFrame({"layer": []})):
        comparison = ablation_comparison(table)
        assert comparison.empty and {"model", "task", "k", "decided", "accuracy_difference_low"} <= set(
            comparison.columns
        )


def test_a_k_ranked_on_one_half_only_is_compared_on_the_other_half_alone():
    table = _ablation(np.random.default_rng(12), 20, 0.3, 0.1)
    table["correct_clean"] = np.where(table["item_id"].isin([f"i{i}" for i in range(10)]), 1.0, 0.0)
    no_top = (table["selection"] == "top") & table["item_id"].isin([f"i{i}" for i in range(10, 20)])
    row = ablation_comparison(table[~no_top]).iloc[0]
    assert row["n_items"] == 10 and row["accuracy_clean"] == 1.0


def test_named_features_are_family_wise_controlled_on_null_data():
    """Layers of 200 features with no effect: some feature is named in about 5% of them, not nearly all."""
    rng = np.random.default_rng(8)
    layers, n_features, n_items = 60, 200, 30
    model = np.repeat([f"m{i}" for i in range(layers)], n_features * n_items)
    feature = np.tile(np.repeat(np.arange(n_features), n_items), layers)
    item = np.tile([f"i{i}" for i in range(n_items)], layers * n_features)
    common = {"task": "t", "variant": "prize", "layer": 1, "activation": 1.0, "token": 1, "from_end": 0}
    features = pd.DataFrame(
        {**common, "model": model, "feature": feature, "item_id": item,
         "attribution": rng.normal(0, 1, len(model))}
    )  # fmt: skip
    items = features[["model", "task", "variant", "layer", "item_id"]].drop_duplicates()
    ranking = feature_ranking(features, items)
    named = top_features(ranking)["model"].nunique() / layers
    uncorrected = ((ranking["high"] < 0) | (ranking["low"] > 0)).groupby(ranking["model"]).any().mean()
    assert named <= 0.12 and uncorrected > 0.9


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from probes.features.summary import _holm

    p = np.random.default_rng(9).uniform(0, 0.2, 50) ** 2
    p[[3, 7]] = p[5]  # ties
    expected = multipletests(p, method="holm")[1]
    assert np.allclose(_holm(pd.Series(p)).to_numpy(), expected)
    with_missing = _holm(pd.Series([0.01, np.nan, 0.04]))
    assert np.isnan(with_missing[1]) and np.allclose(with_missing[[0, 2]], [0.02, 0.04])
