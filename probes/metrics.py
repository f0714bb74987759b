"""Per-item, per-layer scores of true vs distractor, and their aggregates.

The tidy table has one row per (model, item, variant, layer). Aggregates are
per (model, task, variant, layer); the critical layer is per item and then
summarised per model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from probes.lens import OptionReadout

#: Columns that identify where a row came from.
PROVENANCE = ["model", "revision", "lens", "toolkit_version"]
#: Columns that identify a group of aggregated rows.
GROUP = ["model", "revision", "lens", "task", "variant"]


def layer_table(readout: OptionReadout, provenance: dict[str, Any], n_layers: int) -> pd.DataFrame:
    """One row per (item, layer) with the item's true-vs-distractor scores at that layer.

    Args:
        readout: What the lens read.
        provenance: Values of :data:`PROVENANCE` (and any other constant columns).
        n_layers: The model's number of blocks (for relative depth).

    Columns: true and distractor log-prob, ``log_odds`` (true − distractor),
    ``p_true`` / ``p_distractor`` (softmax over the options of the summed
    option log-probs), the chosen option and whether it is the true answer; at
    the last layer also the Inverse Scaling Prize metric (``prize_probability``
    of the true class and ``prize_loss`` = −log of it; NaN at other layers). The
    item's ``prompt`` (as scored: with a chain-of-thought rationale, if any),
    ``options`` and ``rationale`` (empty unless the model wrote one) ride along.
    """
    last = n_layers
    frames = []
    for item, logprobs, counts in zip(readout.items, readout.logprobs, readout.option_token_counts):
        option_p = torch.softmax(logprobs.double(), dim=-1)
        true_lp = logprobs[:, item.true_index].double()
        distractor_lp = logprobs[:, item.distractor_index].double()
        chosen = logprobs.argmax(dim=-1)
        p_true = option_p[:, item.true_index]
        is_last = torch.tensor([layer == last for layer in readout.layers])
        frames.append(
            pd.DataFrame(
                {
                    "task": item.task,
                    "variant": item.variant,
                    "item_id": item.id,
                    "layer": readout.layers,
                    "true_logprob": true_lp.numpy(),
                    "distractor_logprob": distractor_lp.numpy(),
                    "log_odds": (true_lp - distractor_lp).numpy(),
                    "p_true": p_true.numpy(),
                    "p_distractor": option_p[:, item.distractor_index].numpy(),
                    "chosen_option": chosen.numpy(),
                    "chosen_answer": [item.options[int(c)] for c in chosen],
                    "correct": (chosen == item.true_index).numpy(),
                    "prize_probability": torch.where(is_last, p_true, torch.nan).numpy(),
                    "prize_loss": torch.where(is_last, -p_true.log(), torch.nan).numpy(),
                    "option_logprobs": [row.tolist() for row in logprobs.double()],
                    "true_answer": item.true_answer,
                    "distractor_answer": item.distractor_answer,
                    "true_tokens": counts[item.true_index],
                    "distractor_tokens": counts[item.distractor_index],
                    "options": [list(item.options)] * len(readout.layers),
                    "prompt": item.prompt,
                    "rationale": str(item.meta.get("rationale", "")),
                }
            )
        )
    return layer_frames_table(frames, provenance, n_layers)


def layer_frames_table(frames: list[pd.DataFrame], provenance: dict[str, Any], n_layers: int) -> pd.DataFrame:
    """Per-item frames with a ``layer`` column as one table: ``n_layers`` and ``relative_depth``
    after ``layer``, the provenance columns first."""
    table = pd.concat(frames, ignore_index=True)
    table.insert(table.columns.get_loc("layer") + 1, "n_layers", n_layers)
    table.insert(table.columns.get_loc("n_layers") + 1, "relative_depth", table["layer"] / n_layers)
    for position, (column, value) in enumerate(provenance.items()):
        table.insert(position, column, value)
    return table


def bootstrap_interval(
    values: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_resamples, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def aggregate(table: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (model, task, variant, layer): accuracy, mean log-odds with a bootstrap 95% interval."""
    rows = []
    for key, group in table.groupby([*GROUP, "layer"], sort=False, dropna=False):
        low, high = bootstrap_interval(group["log_odds"].to_numpy(), n_resamples, seed=seed)
        rows.append(
            {
                **dict(zip([*GROUP, "layer"], key)),
                "n_layers": int(group["n_layers"].iloc[0]),
                "relative_depth": float(group["relative_depth"].iloc[0]),
                "n_items": len(group),
                "accuracy": float(group["correct"].mean()),
                "mean_log_odds": float(group["log_odds"].mean()),
                "log_odds_ci_low": low,
                "log_odds_ci_high": high,
                "mean_p_true": float(group["p_true"].mean()),
                "mean_true_logprob": float(group["true_logprob"].mean()),
            }
        )
    return pd.DataFrame(rows)


def critical_layer(layers: np.ndarray, log_odds: np.ndarray) -> float:
    """First layer from which the true answer beats the distractor through the last layer.

    NaN when the true answer does not win at the last layer.
    """
    order = np.argsort(layers)
    layers, wins = np.asarray(layers)[order], np.asarray(log_odds)[order] > 0
    if not wins[-1]:
        return float("nan")
    losing = np.flatnonzero(~wins)
    return float(layers[losing[-1] + 1] if losing.size else layers[0])


def item_critical_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Per item: its critical layer, absolute and relative (NaN if it is wrong at the end).

    Vectorised form of :func:`critical_layer` over every (model, task, variant, item) at once.
    """
    keys = [*GROUP, "item_id"]
    rows = table[[*keys, "layer", "n_layers", "log_odds"]].sort_values("layer", kind="stable")
    losing = rows["layer"].where(~(rows["log_odds"] > 0))  # NaN loses, as in critical_layer
    grouped = rows.assign(losing=losing).groupby(keys, sort=False, dropna=False)
    last_losing = grouped["losing"].transform("max").fillna(-np.inf)
    after = rows["layer"].where(rows["layer"] > last_losing)
    per_item = (
        rows.assign(after=after)
        .groupby(keys, sort=False, dropna=False)
        .agg(n_layers=("n_layers", "first"), critical_layer=("after", "min"))
        .reset_index()
    )
    per_item["critical_layer"] = per_item["critical_layer"].astype(float)
    per_item["critical_relative_depth"] = per_item["critical_layer"] / per_item["n_layers"]
    return per_item


def critical_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, variant): mean and median critical layer over items that have one."""
    per_item = item_critical_layers(table)
    grouped = per_item.groupby(GROUP, sort=False, dropna=False)
    summary = grouped.agg(
        n_layers=("n_layers", "first"),
        n_items=("item_id", "size"),
        share_with_critical_layer=("critical_layer", lambda s: float(s.notna().mean())),
        mean_critical_layer=("critical_layer", "mean"),
        median_critical_layer=("critical_layer", "median"),
        mean_critical_relative_depth=("critical_relative_depth", "mean"),
        median_critical_relative_depth=("critical_relative_depth", "median"),
    )
    return summary.reset_index()
