"""Reasoning depth: at which layer a k-step answer becomes readable, and where each step's value shows.

Wei et al. (2022, "Emergent abilities of large language models") argue that a task of ``l``
sequential steps needs ``O(l)`` layers. With the k-step tasks (:mod:`probes.tasks.multistep`:
items carry ``meta["steps"]`` and ``meta["intermediates"]``) the lens asks, per model and k:

- **accuracy**: share of items whose true answer is the top option at the last layer;
- **first decodable layer**: the first layer ``L`` at which the true answer is the top option
  among the item's options *and stays so at every later layer* (NaN when it is not the top
  option at the last layer); relative depth ``L / n_layers`` (0 = embeddings, 1 = output);
- **step readout**: the lens log-prob (and probability among the options) of the value after
  every step ``j = 0 … k`` at every layer, so one can see whether step ``j``'s value peaks at an
  earlier layer than step ``j + 1``'s.

Everything is computed from one :func:`probes.lenses.reading.read_options` readout and the tidy
:func:`probes.analysis.metrics.layer_table`; no new hooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from probes.analysis.decision import first_winning_layers
from probes.analysis.metrics import GROUP, layer_frames_table, option_credit
from probes.analysis.scoring import per_layer_credit
from probes.errors import InvalidItemError
from probes.lenses.reading import OptionReadout

#: A model, lens, task and variant at one step count: the unit of the depth summary.
STEPS_GROUP = [*GROUP, "steps"]

#: Last-layer accuracy from which a step count counts as solved (options are 10 or more).
SOLVED_ACCURACY = 0.5


def first_decodable_layer(layers: np.ndarray, correct: np.ndarray) -> float:
    """First layer from which the true answer is the top option through the last layer.

    Args:
        layers: The layers read (any order).
        correct: Per layer, whether the true answer is the top option there.

    Returns:
        The layer, or NaN when the true answer is not the top option at the last layer.
    """
    order = np.argsort(layers)
    layers, correct = np.asarray(layers)[order], np.asarray(correct, dtype=bool)[order]
    if not correct[-1]:
        return float("nan")
    wrong = np.flatnonzero(~correct)
    return float(layers[wrong[-1] + 1] if wrong.size else layers[0])


def with_steps(table: pd.DataFrame, items: Any) -> pd.DataFrame:
    """``table`` with a ``steps`` column (k) taken from its items' ``meta["steps"]``.

    Raises:
        InvalidItemError: an item is not a k-step item.
    """
    steps = {}
    for item in items:
        if "steps" not in item.meta:
            raise InvalidItemError(
                f"item {item.id!r} of task {item.task!r} has no meta['steps']; use a k-step task "
                "(variable_chain, multi_hop, arithmetic_steps)."
            )
        steps[item.id] = int(item.meta["steps"])
    return table.assign(steps=table["item_id"].map(steps).astype("int64"))


def item_first_decodable_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Per item: its first decodable layer, absolute and relative (NaN where never decodable).

    ``table`` is a :func:`probes.analysis.metrics.layer_table` (with a ``steps`` column, kept if present).
    The same computation as the decision layer (:mod:`probes.analysis.decision`) from layer 0 on, with
    "the true answer alone is the top option" (a tie is no win) in place of "the true answer
    beats the distractor", under the per-layer score (``fair_correct``, the length-fair score's
    credit over all options, where the table has it: :mod:`probes.analysis.scoring`).
    """
    per_item = first_winning_layers(table, table[per_layer_credit(table)] == 1).rename(
        columns={"layer": "first_decodable_layer", "relative_depth": "first_decodable_relative_depth"}
    )
    firsts = table.drop_duplicates(["task", "item_id"])
    for column in ("steps", "options"):
        if column in table.columns:
            lookup = dict(zip(zip(firsts["task"], firsts["item_id"]), firsts[column]))
            per_item[column] = [lookup[key] for key in zip(per_item["task"], per_item["item_id"])]
    return per_item


def depth_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, revision, lens, task, variant, steps): accuracy and first decodable depth.

    Columns: ``n_layers``, ``n_items``, ``accuracy`` (share of items whose true answer is the top
    option at the last layer, under the per-layer score of :func:`item_first_decodable_layers`:
    equal to the prize metric's wherever every option is one token), ``chance`` (mean of one
    over the number of options),
    ``share_decodable`` (items with a first decodable layer: the same share, since an item is
    decodable exactly when it is right at the last layer), ``median_first_decodable_layer`` and
    ``mean_…`` over those items, both absolute and relative (NaN where no item is decodable),
    and ``toolkit_version``.

    Raises:
        InvalidItemError: the table has no ``steps`` column.
    """
    if "steps" not in table.columns:
        raise InvalidItemError("the table has no 'steps' column; add it with with_steps(table, items).")
    per_item = item_first_decodable_layers(table)
    versions = dict(zip(table["model"], table["toolkit_version"]))
    per_item = per_item.assign(
        decodable=per_item["first_decodable_layer"].notna(),
        chance=[1 / len(options) for options in per_item["options"]],
        toolkit_version=per_item["model"].map(versions),
    )
    summary = per_item.groupby(STEPS_GROUP, sort=True, dropna=False).agg(
        n_layers=("n_layers", "first"),
        n_items=("item_id", "size"),
        accuracy=("decodable", "mean"),
        chance=("chance", "mean"),
        share_decodable=("decodable", "mean"),
        median_first_decodable_layer=("first_decodable_layer", "median"),
        mean_first_decodable_layer=("first_decodable_layer", "mean"),
        median_first_decodable_relative_depth=("first_decodable_relative_depth", "median"),
        mean_first_decodable_relative_depth=("first_decodable_relative_depth", "mean"),
        toolkit_version=("toolkit_version", "first"),
    )
    return summary.reset_index()


def steps_solved(summary: pd.DataFrame, threshold: float = SOLVED_ACCURACY) -> pd.DataFrame:
    """Per (model, task, variant): the largest k such that every k' ≤ k has accuracy ≥ ``threshold``.

    0 where even k = 1 is below it. ``n_layers`` rides along, for "steps solved vs layers".
    """
    rows = []
    for key, group in summary.groupby(GROUP, sort=False, dropna=False):
        solved = 0
        for steps, accuracy in group.sort_values("steps")[["steps", "accuracy"]].itertuples(index=False):
            if accuracy < threshold or steps != solved + 1:
                break
            solved = int(steps)
        rows.append(
            {
                **dict(zip(GROUP, key)),
                "n_layers": int(group["n_layers"].iloc[0]),
                "max_steps_tested": int(group["steps"].max()),
                "steps_solved": solved,
                "threshold": threshold,
            }
        )
    return pd.DataFrame(rows)


def step_readout_table(readout: OptionReadout, provenance: dict[str, Any], n_layers: int) -> pd.DataFrame:
    """One row per (item, step j = 0 … k, layer): the lens readout of the value after step ``j``.

    ``logprob`` is the lens log-prob of that value's option, ``probability`` its share of the
    softmax over the item's options, ``top`` whether it is the top option. Step 0 is the start
    value (``meta["start"]``); step k is the true answer.

    Raises:
        InvalidItemError: an item lacks ``meta["intermediates"]`` or an intermediate is no option.
    """
    frames = []
    for item, logprobs in zip(readout.items, readout.logprobs):
        intermediates = item.meta.get("intermediates")
        if not intermediates or "start" not in item.meta:
            raise InvalidItemError(
                f"item {item.id!r} has no meta['intermediates'] and meta['start']; use a k-step task."
            )
        values = [item.meta["start"], *intermediates]
        missing = [value for value in values if value not in item.options]
        if missing:
            raise InvalidItemError(f"item {item.id!r}: step values {missing} are not among its options.")
        columns = [item.options.index(value) for value in values]
        probabilities = torch.softmax(logprobs.double(), dim=-1)
        for step, column in enumerate(columns):
            frames.append(
                pd.DataFrame(
                    {
                        "task": item.task,
                        "variant": item.variant,
                        "item_id": item.id,
                        "steps": len(intermediates),
                        "step": step,
                        "value": values[step],
                        "layer": readout.layers,
                        "logprob": logprobs[:, column].double().numpy(),
                        "probability": probabilities[:, column].numpy(),
                        "top": option_credit(logprobs, column).numpy(),
                    }
                )
            )
    return layer_frames_table(frames, provenance, n_layers)


def step_readout_summary(steps_table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, variant, k, step j, layer): mean log-prob, probability and top share."""
    keys = [*STEPS_GROUP, "step", "layer"]
    return (
        steps_table.groupby(keys, sort=True, dropna=False)
        .agg(
            n_layers=("n_layers", "first"),
            relative_depth=("relative_depth", "first"),
            n_items=("item_id", "size"),
            mean_logprob=("logprob", "mean"),
            mean_probability=("probability", "mean"),
            top_share=("top", "mean"),
        )
        .reset_index()
    )


def step_peaks(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, variant, k, step j ≥ 1): the layer where the step's mean probability peaks.

    ``ordered`` (per k) says whether the peaks never move to an earlier layer as j grows: step
    j's value peaks no later than step j + 1's.
    """
    steps = summary[summary["step"] >= 1]
    peaks = (
        steps.loc[steps.groupby([*STEPS_GROUP, "step"], dropna=False)["mean_probability"].idxmax()]
        .rename(columns={"layer": "peak_layer", "relative_depth": "peak_relative_depth"})
        .loc[:, [*STEPS_GROUP, "step", "n_layers", "peak_layer", "peak_relative_depth", "mean_probability"]]
        .rename(columns={"mean_probability": "peak_mean_probability"})
        .sort_values([*STEPS_GROUP, "step"])
    )
    ordered = peaks.groupby(STEPS_GROUP, dropna=False)["peak_layer"].transform(
        lambda layers: bool(np.all(np.diff(layers.to_numpy()) >= 0))
    )
    return peaks.assign(ordered=ordered.astype(bool)).reset_index(drop=True)
