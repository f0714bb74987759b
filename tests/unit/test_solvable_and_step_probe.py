"""The uncapped depth measures on synthetic data: solvable k with CIs, depth fits, step decodability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from probes.analysis.solvable import (
    accuracy_table,
    depth_logistic,
    fit_relations,
    relation_curve,
    solvable_steps,
    solved_prefix,
    wilson_interval,
)
from probes.analysis.step_probe import (
    first_decodable_intervals,
    first_decodable_layers,
    fit_probe,
    probe_accuracy,
    probe_against_lens,
    probe_predictions,
    probe_steps,
    ridge_probes,
    step_labels,
)
from probes.errors import InvalidItemError
from probes.report.solvable import accuracy_by_k, solvable_by_depth, step_decodability
from probes.tasks import get_task


def per_item_table(accuracies: dict[str, tuple[int, list[float]]], n: int = 40) -> pd.DataFrame:
    """Synthetic per-item rows: model -> (layers, accuracy per k), exactly round(acc * n) right per k."""
    rows = []
    for model, (layers, by_k) in accuracies.items():
        for k, share in enumerate(by_k, start=1):
            right = round(share * n)
            rows += [
                {
                    "model": model,
                    "n_layers": layers,
                    "task": "t",
                    "item_id": f"{k}-{i}",
                    "steps": k,
                    "correct": i < right,
                }
                for i in range(n)
            ]
    return pd.DataFrame(rows)


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_solved_prefix_stops_at_the_first_failure_or_gap() -> None:
    assert solved_prefix({1: 0.9, 2: 0.85, 3: 0.5, 4: 0.95}, 0.8) == 2
    assert solved_prefix({1: 0.5, 2: 0.95}, 0.8) == 0
    assert solved_prefix({1: 0.9, 3: 0.9}, 0.8) == 1


def test_solvable_steps_has_intervals_and_flags_censored_models() -> None:
    table = per_item_table(
        {
            "shallow": (1, [1.0, 0.3, 0.1, 0.0]),
            "middle": (2, [1.0, 1.0, 0.8, 0.2]),  # k = 3 sits on the threshold: the CI must straddle
            "deep": (4, [1.0, 1.0, 1.0, 1.0]),
        }
    )
    solved = solvable_steps(table, threshold=0.8, n_resamples=300).set_index("model")
    assert solved.loc["shallow", "solvable_k"] == 1 and not solved.loc["shallow", "censored"]
    assert solved.loc["middle", "solvable_k"] == 3
    assert solved.loc["middle", "solvable_k_low"] == 2 and solved.loc["middle", "solvable_k_high"] == 3
    assert solved.loc["deep", "solvable_k"] == 4 and solved.loc["deep", "censored"]
    near = per_item_table({f"m{a}": (2, [1.0, a, a, 0.0]) for a in (0.825, 0.85, 0.875, 0.9)})
    ends = solvable_steps(near, threshold=0.8)[["solvable_k_low", "solvable_k_high"]].to_numpy().ravel()
    assert all(float(end).is_integer() for end in ends), ends  # k is whole (interpolating gave 2.975)
    accuracy = accuracy_table(table)
    row = accuracy[(accuracy["model"] == "middle") & (accuracy["steps"] == 3)].iloc[0]
    assert row["accuracy_low"] < 0.8 < row["accuracy_high"]


@pytest.mark.parametrize(
    ("relation", "truth"),
    [
        ("linear", lambda layers: 2 * layers - 1),
        ("logarithmic", lambda layers: 1 + 3 * np.log2(layers)),
        ("constant", lambda layers: 3 + 0 * layers),
    ],
)
def test_fit_relations_prefers_the_relation_that_made_the_data(relation, truth) -> None:
    layers = np.array([1, 2, 3, 4, 6, 8, 12, 16], dtype=float)
    noise = np.random.default_rng(0).normal(0, 0.2, len(layers))
    fits = fit_relations(layers, truth(layers) + noise).set_index("relation")
    assert fits["akaike_weight"].idxmax() == relation
    if relation == "constant":  # the nested fits find no slope (their LOO error may tie by chance)
        assert fits["slope"].abs().max() < 0.1
    else:
        assert fits["loo_rmse"].idxmin() == relation
    assert fits["akaike_weight"].sum() == pytest.approx(1.0)
    curve = relation_curve(fits.reset_index(), [1, 2, 4])
    assert set(curve["relation"]) == {"constant", "logarithmic", "linear"}


def test_fit_relations_refuses_too_few_points() -> None:
    with pytest.raises(InvalidItemError, match="at least three"):
        fit_relations([1, 2], [1, 2])
    with pytest.raises(InvalidItemError, match="at least three"):
        fit_relations([2, 2, 2], [1, 2, 3])


def test_linear_probe_finds_a_planted_direction_and_not_noise() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (400,), generator=generator)
    directions = torch.randn(5, 16, generator=generator)
    planted = directions[labels] + 0.3 * torch.randn(400, 16, generator=generator)
    noise = torch.randn(400, 16, generator=generator)
    for features, expected in ((planted, (0.95, 1.0)), (noise, (0.0, 0.4))):
        weights, scale = fit_probe(features[:300], labels[:300], 5)
        accuracy = probe_accuracy(weights, scale, features[300:], labels[300:])
        assert expected[0] <= accuracy <= expected[1]


def test_probe_steps_reads_each_step_only_where_it_was_planted() -> None:
    """Residuals that carry step j's value at layer j: the probe's first decodable layer is j."""
    items = [
        item
        for item in get_task("permutation_walk").items("prize", 16 * 120, seed=5)
        if item.meta["steps"] == 3
    ]
    generator = torch.Generator().manual_seed(1)
    codes = torch.randn(5, 12, generator=generator) * 3
    residuals = torch.randn(len(items), 4, 12, generator=generator)
    for layer in range(4):  # layer j holds the value after step j (0 = start)
        residuals[:, layer] += codes[step_labels(items, layer)]
    scores = probe_steps(residuals, items, layers=[0, 1, 2, 3]).assign(model="m", n_layers=3, readout="probe")
    first = first_decodable_layers(scores, threshold=0.9).set_index("step")
    assert first["first_layer"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert (scores["chance"] < 0.5).all()
    figure = step_decodability(first.reset_index().assign(steps=3), 3)
    assert len(figure.data) == 1


def test_probe_steps_refuses_mixed_k_and_too_few_items() -> None:
    items = get_task("pointer_chase").items("prize", 32, seed=0)
    with pytest.raises(InvalidItemError, match="one k at a time"):
        probe_steps(torch.zeros(len(items), 2, 4), items, [0, 1])
    few = [item for item in items if item.meta["steps"] == 1]
    with pytest.raises(InvalidItemError, match="too few"):
        probe_steps(torch.zeros(len(few), 2, 4), few, [0, 1])


def test_first_decodable_layer_is_nan_when_never_reached() -> None:
    scores = pd.DataFrame({"model": "m", "steps": 2, "step": 1, "layer": [0, 1, 2], "score": [0.1, 0.2, 0.3]})
    first = first_decodable_layers(scores, threshold=0.5)
    assert math.isnan(first["first_layer"].iloc[0]) and first["peak_score"].iloc[0] == 0.3


def test_figures_draw_the_measures() -> None:
    table = per_item_table({"a": (1, [1.0, 0.2, 0.0]), "b": (2, [1.0, 0.9, 0.2]), "c": (3, [1.0, 1.0, 0.9])})
    solved = solvable_steps(table, 0.8, n_resamples=50)
    fits = fit_relations(solved["n_layers"], solved["solvable_k"])
    figure = solvable_by_depth(solved, fits, relation_curve(fits, [1, 2, 3]))
    assert {trace.name.split(" ")[0] for trace in figure.data} >= {"constant", "logarithmic", "linear", "≥"}
    assert len(accuracy_by_k(accuracy_table(table), 0.8, 0.1).data) == 3


def simulated_ladder(
    rng: np.random.Generator, depth_effect: float, rung_sd: float, n: int = 20, depths: int = 8
) -> pd.DataFrame:
    """Per-item rows of a two-seed ladder: logit p = 4 − 1.5 k + depth_effect·L + a rung's own
    offset (sd ``rung_sd``, the training-run lottery), k = 1 … 4, ``n`` items per (rung, k)."""
    frames = []
    for layers in range(1, depths + 1):
        for seed in (0, 1):
            offset = rng.normal(0, rung_sd)
            for k in range(1, 5):
                p = 1 / (1 + np.exp(-(4 - 1.5 * k + depth_effect * layers + offset)))
                frames.append(
                    pd.DataFrame(
                        {
                            "model": f"{layers}x-s{seed}",
                            "n_layers": layers,
                            "seed": seed,
                            "steps": k,
                            "correct": rng.random(n) < p,
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True)


def test_depth_logistic_recovers_a_planted_depth_effect() -> None:
    table = depth_logistic(simulated_ladder(np.random.default_rng(3), depth_effect=0.4, rung_sd=0.2, n=40))
    depth = table[(table["model_form"] == "additive") & (table["term"] == "n_layers")].iloc[0]
    assert depth["low"] <= 0.4 <= depth["high"] and depth["low"] > 0
    assert set(table["term"]) >= {"steps", "n_layers", "steps:n_layers", "C(seed)[T.1]", "steps_per_layer"}
    per_layer = table[(table["model_form"] == "additive") & (table["term"] == "steps_per_layer")].iloc[0]
    assert per_layer["low"] <= 0.4 / 1.5 <= per_layer["high"]
    with pytest.raises(InvalidItemError, match="three models"):
        depth_logistic(per_item_table({"a": (1, [1.0, 0.5]), "b": (2, [1.0, 0.7])}))


@pytest.mark.slow
def test_depth_logistic_interval_is_calibrated_when_runs_differ_but_depth_does_not_matter() -> None:
    """No depth effect, but each training run has its own offset (sd 1 in log-odds): the clustered
    interval excludes 0 in ≤ 12 % of 40 ladders (nominal 5 %), the naive one far more often."""
    rng = np.random.default_rng(0)
    clustered = naive = 0
    for _ in range(40):
        table = depth_logistic(simulated_ladder(rng, depth_effect=0.0, rung_sd=1.0))
        row = table[(table["model_form"] == "additive") & (table["term"] == "n_layers")].iloc[0]
        clustered += not row["low"] <= 0 <= row["high"]
        naive += not row["naive_low"] <= 0 <= row["naive_high"]
    assert clustered / 40 <= 0.12 and naive / 40 >= 0.25


def test_first_decodable_intervals_cover_the_population_first_layer() -> None:
    """Shares 0.2, 0.45, 0.55, 0.9 by layer (the population's first layer ≥ 0.5 is 2) on 90 items:
    the point estimate wanders between layers 1 and 3, the bootstrap interval covers 2 in ≥ 90 %
    of 100 draws; all-right-from-layer-1 items give [1, 1]; a value never read gives NaN and inf."""
    rng = np.random.default_rng(0)
    shares = np.array([0.2, 0.45, 0.55, 0.9])
    frames = []
    for draw in range(100):
        correct = (rng.random((90, 4)) < shares).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "model": draw,
                    "steps": 1,
                    "step": 1,
                    "item_id": np.repeat(np.arange(90), 4),
                    "layer": np.tile(np.arange(4), 90),
                    "correct": correct.ravel(),
                }
            )
        )
    first = first_decodable_intervals(pd.concat(frames), 0.5, n_resamples=300)
    covered = (first["first_layer_low"] <= 2) & (first["first_layer_high"] >= 2)
    assert covered.mean() >= 0.9 and first["first_layer"].nunique() >= 2
    sure = pd.DataFrame(
        {"model": "m", "steps": 1, "step": 1, "item_id": np.repeat(np.arange(30), 3), "layer": [0, 1, 2] * 30}
    )
    row = first_decodable_intervals(sure.assign(correct=(sure["layer"] >= 1).astype(float))).iloc[0]
    assert (row["first_layer"], row["first_layer_low"], row["first_layer_high"]) == (1.0, 1.0, 1.0)
    never = first_decodable_intervals(sure.assign(correct=0.0)).iloc[0]
    assert (
        math.isnan(never["first_layer"])
        and never["first_layer_low"] == math.inf
        and never["never_share"] == 1
    )


def test_ridge_probe_penalty_is_the_brute_force_leave_one_out_choice() -> None:
    """The closed-form leave-one-out errors choose the penalty that refitting without each item in
    turn chooses (ridge with an unpenalised bias, features standardised on all items)."""
    generator = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 4, (40,), generator=generator)
    features = torch.randn(40, 6, generator=generator) + 0.8 * torch.randn(4, 6, generator=generator)[labels]
    grid = [0.1, 1.0, 10.0, 100.0]
    _, _, (chosen,) = ridge_probes(features[None], labels, 4, grid)
    x = ((features - features.mean(0)) / features.std(0)).double()
    y = torch.nn.functional.one_hot(labels, 4).double()
    errors = []
    for l2 in grid:
        total = 0.0
        for left in range(40):
            keep = torch.arange(40) != left
            xk, yk = x[keep] - x[keep].mean(0), y[keep] - y[keep].mean(0)
            w = torch.linalg.solve(xk.T @ xk + l2 * torch.eye(6, dtype=torch.float64), xk.T @ yk)
            guess = y[keep].mean(0) + (x[left] - x[keep].mean(0)) @ w
            total += float((y[left] - guess).square().sum())
        errors.append(total)
    assert chosen == grid[int(np.argmin(errors))]


def test_cross_validated_probe_shrinks_on_noise_and_not_on_signal() -> None:
    """Few items in many dimensions: on noise the leave-one-out choice is a strong penalty; on a
    planted code a weak one, and the chosen probe scores at least as well as a barely penalised one."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 8, (120,), generator=generator)
    noise = torch.randn(120, 48, generator=generator)
    assert ridge_probes(noise[None], labels, 8)[2][0] >= 100
    planted = noise + 1.5 * torch.randn(8, 48, generator=generator)[labels]
    weights, scale, (chosen,) = ridge_probes(planted[None, :80], labels[:80], 8)
    assert chosen <= 10
    tuned = float((probe_predictions(weights[0], scale[0], planted[80:]) == labels[80:]).double().mean())
    loose_weights, loose_scale, _ = ridge_probes(planted[None, :80], labels[:80], 8, [1e-6])
    loose = float(
        (probe_predictions(loose_weights[0], loose_scale[0], planted[80:]) == labels[80:]).double().mean()
    )
    assert tuned >= loose and tuned >= 0.9


def test_solvable_figure_has_a_panel_per_threshold() -> None:
    table = per_item_table(
        {"a": (1, [1.0, 0.75, 0.0]), "b": (2, [1.0, 0.85, 0.2]), "c": (3, [1.0, 1.0, 0.95])}
    )
    solved = pd.concat([solvable_steps(table, t, n_resamples=50) for t in (0.7, 0.8, 0.9)])
    fits = pd.concat(
        [
            fit_relations(g["n_layers"], g["solvable_k"]).assign(threshold=t)
            for t, g in solved.groupby("threshold")
        ]
    )
    curve = pd.concat(
        [relation_curve(g, [1, 2, 3]).assign(threshold=t) for t, g in fits.groupby("threshold")]
    )
    assert solved.groupby("threshold")["solvable_k"].apply(list).to_dict() == {
        0.7: [2, 2, 3],
        0.8: [1, 2, 3],
        0.9: [1, 1, 3],
    }
    figure = solvable_by_depth(solved, fits, curve)
    assert len(figure.layout.annotations) == 3 and sum(t.name.startswith("linear") for t in figure.data) == 3


def test_probe_against_lens_flags_only_a_probe_that_misses_what_the_lens_reads() -> None:
    """Same items: a probe that misses 30 of the 60 items the lens reads is flagged (McNemar,
    Holm); one that misses two is not; a cell the lens does not read gets
    no adjusted p-value."""
    items = np.arange(60)
    lens_right = np.ones(60)
    worse = np.where(items < 30, 0.0, 1.0)
    close = np.where(items < 2, 0.0, 1.0)
    frames = [
        pd.DataFrame(
            {"model": "m", "steps": 1, "step": 1, "lens": "logit", "layer": layer, "item_id": items}
        ).assign(correct=probe, lens_correct=lens)
        for layer, probe, lens in ((1, worse, lens_right), (2, close, lens_right), (0, worse, np.zeros(60)))
    ]
    table = probe_against_lens(pd.concat(frames)).set_index("layer")
    assert table.loc[1, "probe_worse"] and table.loc[1, "lens_only"] == 30
    assert not table.loc[2, "probe_worse"]
    assert math.isnan(table.loc[0, "p_holm"]) and not table.loc[0, "probe_worse"]
