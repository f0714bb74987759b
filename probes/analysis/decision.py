"""Where in depth an answer is settled: per-item decision layers and per-model divergence layers.

Both take the per-layer table of :func:`probes.analysis.metrics.layer_table` and a *score* column, the
log-odds true − distractor to read: by default the length-fair ``fair_log_odds`` where the table
has it, else the summed ``log_odds`` (:mod:`probes.analysis.scoring`).

**Decision layer** (of an item): the first block (layer ≥ 1: the embeddings decide nothing,
they hold one token and no context) from which the true answer beats the distractor at every
layer through the last. An item that does not beat it at the last layer has none; a layer where
the two tie is no win (neither answer is decided there), while accuracy counts a tie as half
right. Summarised per (model, task, variant) by its median over the items that have one, with a
distribution-free 95% interval from two order statistics (:func:`median_interval`: layers the
items took, no resampling), and by the share of items that have one. The median is
*reported only where the model is above chance* at its last layer (the lower end of the Wilson
interval of its accuracy above chance): a model at chance has items whose true answer wins by
luck, and their "decision" layers are noise. This was called the critical layer before; Halawi
et al. use that name for the layer defined next.

**Divergence layer** (of a model on a task): after Halawi, Denain & Steinhardt (2023),
"Overthinking the Truth: Understanding how Language Models Process False Demonstrations"
(arXiv:2307.09476), who find the *critical layer* where accuracy under false demonstrations
starts to fall below accuracy under true ones. Here: the first block at which the ``prize``
variant's score falls *significantly* below its ``no_distractor`` twin's, paired over items
(same item id): the bootstrap 95% interval of the mean paired difference lies wholly below 0.
It says where the distractor starts to act. Its own 95% interval comes from resampling the
items: in each resample, the first block where the mean difference is below 0 by more than
1.96 standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom

from probes.analysis.metrics import GROUP, accuracy_interval, bootstrap_interval
from probes.analysis.scoring import per_layer_score

#: The variant whose distractor acts, and its control.
PRIZE, CONTROL = "prize", "no_distractor"
#: Two-sided confidence of every interval here.
CONFIDENCE = 0.95


def decision_layer(layers: np.ndarray, log_odds: np.ndarray) -> float:
    """First layer ≥ 1 from which ``log_odds > 0`` at every layer through the last (NaN if none)."""
    order = np.argsort(layers)
    layers, wins = np.asarray(layers)[order], np.asarray(log_odds, dtype=float)[order] > 0
    blocks = layers >= 1
    layers, wins = layers[blocks], wins[blocks]
    if not wins.size or not wins[-1]:
        return float("nan")
    losing = np.flatnonzero(~wins)
    return float(layers[losing[-1] + 1] if losing.size else layers[0])


def item_decision_layers(table: pd.DataFrame, score: str | None = None) -> pd.DataFrame:
    """Per (model, task, variant, item): its decision layer, absolute and relative (NaN if none).

    Vectorised form of :func:`decision_layer`; a NaN score is no win.
    """
    score = score or per_layer_score(table)
    blocks = table[table["layer"] >= 1]
    per_item = first_winning_layers(blocks, blocks[score] > 0)
    return per_item.rename(columns={"layer": "decision_layer", "relative_depth": "decision_relative_depth"})


def first_winning_layers(table: pd.DataFrame, wins: pd.Series) -> pd.DataFrame:
    """Per (model, task, variant, item): the first layer of ``table`` from which ``wins`` holds
    through the last, absolute (``layer``) and relative (``relative_depth``); NaN where it does not
    hold at the last layer. Shared by the decision layer and the first decodable layer."""
    keys = [*GROUP, "item_id"]
    rows = table[[*keys, "layer", "n_layers"]].assign(wins=wins.to_numpy())
    rows = rows.sort_values("layer", kind="stable")
    losing = rows["layer"].where(~rows["wins"].astype(bool))
    grouped = rows.assign(losing=losing).groupby(keys, sort=False, dropna=False)
    last_losing = grouped["losing"].transform("max").fillna(-np.inf)
    after = rows["layer"].where(rows["layer"] > last_losing)
    per_item = (
        rows.assign(after=after)
        .groupby(keys, sort=False, dropna=False)
        .agg(n_layers=("n_layers", "first"), layer=("after", "min"))
        .reset_index()
    )
    per_item["layer"] = per_item["layer"].astype(float)
    per_item["relative_depth"] = per_item["layer"] / per_item["n_layers"]
    return per_item


def median_interval(
    values: np.ndarray, lowest: float, highest: float, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Distribution-free interval of the median of ``values``: two of its order statistics.

    The ``j``-th smallest and the ``j``-th largest value, with ``j`` the largest rank for which
    the count of values below the median (binomial, n and 1/2) falls under ``j`` with chance at
    most ``(1 − confidence) / 2`` (the interval :func:`scipy.stats.quantile_test` gives). Its
    ends are values the sample took, so the interval of an integer median (a layer) is
    integers; it covers the median with at least ``confidence`` for any distribution (more where
    values tie), with no resampling. Under six values (at 95%) no order statistic qualifies, and
    the end is the end of the support (``lowest``, ``highest``: the values can take no others),
    which is what a 95% interval is then. NaN for no values.
    """
    values = np.sort(np.asarray(values, dtype=float))
    n = values.size
    if n == 0:
        return (float("nan"), float("nan"))
    rank = int(np.count_nonzero(binom.cdf(np.arange(n + 1), n, 0.5) <= (1 - confidence) / 2))
    if rank == 0:
        return float(lowest), float(highest)
    return float(values[rank - 1]), float(values[n - rank])


def decision_summary(
    table: pd.DataFrame, score: str | None = None, n_resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per (model, task, variant): the decision layer's median and 95% interval, where above chance.

    Columns: ``n_layers``, ``n_items``, ``score`` (the column read), last-layer ``accuracy``
    (a tie is half right) with its Wilson interval, ``chance``, ``above_chance``,
    ``share_with_decision_layer`` (always given), and ``decision_layer`` /
    ``decision_layer_low`` / ``decision_layer_high`` and ``decision_relative_depth`` (and its
    interval): the median over the items that have one, NaN where the model is not above chance.
    """
    score = score or per_layer_score(table)
    per_item = item_decision_layers(table, score)
    deepest = table.groupby(GROUP, sort=False, dropna=False)["layer"].transform("max")
    last = table[table["layer"] == deepest]
    rows = []
    for key, group in per_item.groupby(GROUP, sort=False, dropna=False):
        final = last[(last[GROUP] == pd.Series(key, index=GROUP)).all(axis=1)]
        accuracy, low, high = accuracy_interval(final["correct"].to_numpy())
        chance = float((1.0 / final["option_logprobs"].map(len)).mean())
        above = bool(low > chance)
        layers = group["decision_layer"].dropna().to_numpy()
        n_layers = int(group["n_layers"].iloc[0])
        row = {
            **dict(zip(GROUP, key)),
            "n_layers": n_layers,
            "n_items": len(group),
            "score": score,
            "accuracy": accuracy,
            "accuracy_low": low,
            "accuracy_high": high,
            "chance": chance,
            "above_chance": above,
            "share_with_decision_layer": float(group["decision_layer"].notna().mean()),
        }
        median = float(np.median(layers)) if above and layers.size else float("nan")
        layer_low, layer_high = (
            median_interval(layers, 1, n_layers) if above else (float("nan"), float("nan"))
        )
        row.update(
            decision_layer=median,
            decision_layer_low=layer_low,
            decision_layer_high=layer_high,
            decision_relative_depth=median / n_layers,
            decision_relative_depth_low=layer_low / n_layers,
            decision_relative_depth_high=layer_high / n_layers,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(table: pd.DataFrame, score: str | None = None) -> pd.DataFrame:
    """Per (model, revision, lens, task, item, layer ≥ 1): prize score − its no_distractor twin's.

    Only items present in both variants are paired; an empty frame when none are.
    """
    score = score or per_layer_score(table)
    keys = [c for c in GROUP if c != "variant"] + ["item_id", "layer", "n_layers"]
    blocks = table[table["layer"] >= 1]
    prize = blocks.loc[blocks["variant"] == PRIZE, [*keys, score]]
    control = blocks.loc[blocks["variant"] == CONTROL, [*keys, score]]
    paired = prize.merge(control, on=keys, suffixes=("_prize", "_control"))
    paired["difference"] = paired[f"{score}_prize"] - paired[f"{score}_control"]
    return paired


def divergence_curve(
    table: pd.DataFrame, score: str | None = None, n_resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per (model, task, layer ≥ 1): mean paired difference prize − no_distractor and its interval.

    Columns: ``n_pairs``, ``mean_difference``, ``difference_low``, ``difference_high``,
    ``significant`` (the interval wholly below 0).
    """
    score = score or per_layer_score(table)
    paired = paired_differences(table, score)
    keys = [c for c in GROUP if c != "variant"]
    rows = []
    for key, group in paired.groupby([*keys, "layer"], sort=False, dropna=False):
        low, high = bootstrap_interval(group["difference"].to_numpy(), n_resamples, CONFIDENCE, seed)
        rows.append(
            {
                **dict(zip([*keys, "layer"], key)),
                "n_layers": int(group["n_layers"].iloc[0]),
                "n_pairs": len(group),
                "mean_difference": float(group["difference"].mean()),
                "difference_low": low,
                "difference_high": high,
                "significant": bool(high < 0),
            }
        )
    columns = [*keys, "layer", "n_layers", "n_pairs", "mean_difference"]
    frame = pd.DataFrame(rows, columns=[*columns, "difference_low", "difference_high", "significant"])
    return frame.sort_values([*keys, "layer"], kind="stable").reset_index(drop=True)


def divergence_summary(
    table: pd.DataFrame, score: str | None = None, n_resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per (model, task): the divergence layer (NaN if the prize variant never falls
    significantly below its control) and its 95% bootstrap interval over items.

    Columns: ``n_layers``, ``n_pairs``, ``score``, ``divergence_layer``, ``divergence_layer_low``,
    ``divergence_layer_high``, their relative depths, and ``share_diverging``: the share of
    resamples that find a divergence layer at all (the interval is over those).
    """
    score = score or per_layer_score(table)
    curve = divergence_curve(table, score, n_resamples, seed)
    paired = paired_differences(table, score)
    keys = [c for c in GROUP if c != "variant"]
    rows = []
    for key, group in curve.groupby(keys, sort=False, dropna=False):
        n_layers = int(group["n_layers"].iloc[0])
        significant = group.loc[group["significant"], "layer"]
        layer = float(significant.min()) if len(significant) else float("nan")
        mask = (paired[keys] == pd.Series(key, index=keys)).all(axis=1)
        wide = paired[mask].pivot_table(index="item_id", columns="layer", values="difference")
        wide = wide.dropna()
        low, high, share = _divergence_interval(wide.to_numpy(), wide.columns.to_numpy(), n_resamples, seed)
        rows.append(
            {
                **dict(zip(keys, key)),
                "n_layers": n_layers,
                "n_pairs": len(wide),
                "score": score,
                "divergence_layer": layer,
                "divergence_layer_low": low,
                "divergence_layer_high": high,
                "divergence_relative_depth": layer / n_layers,
                "divergence_relative_depth_low": low / n_layers,
                "divergence_relative_depth_high": high / n_layers,
                "share_diverging": share,
            }
        )
    return pd.DataFrame(rows)


def _divergence_interval(
    differences: np.ndarray, layers: np.ndarray, n_resamples: int, seed: int
) -> tuple[float, float, float]:
    """Percentile interval of the divergence layer over item resamples, and the share that have one.

    ``differences[item, layer]``; in each resample the layer is the first whose mean is below 0
    by more than 1.96 standard errors.
    """
    n_items = differences.shape[0]
    if n_items < 2:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = differences[rng.integers(0, n_items, size=(n_resamples, n_items))]  # resample item layer
    mean = draws.mean(axis=1)
    error = draws.std(axis=1, ddof=1) / np.sqrt(n_items)
    below = mean + 1.96 * error < 0
    found = below.any(axis=1)
    if not found.any():
        return (float("nan"), float("nan"), 0.0)
    first = layers[below[found].argmax(axis=1)].astype(float)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(first, [tail, 100 - tail])
    return float(low), float(high), float(found.mean())
