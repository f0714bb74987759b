"""At which layer each intermediate step's value becomes decodable: lens readouts and linear probes.

For a k-step item the value after step ``j`` (``meta["intermediates"][j - 1]``) is one of the item's
options. Two readouts of the residual stream at the last prompt position, per layer:

- a **lens** (logit lens, or any :class:`probes.lenses.base.Lens`): the share of items whose step-``j``
  value is the top option (:func:`probes.analysis.reasoning.step_readout_summary`, ``top_share``);
- a **linear probe**: a multinomial logistic regression from the residual to the step-``j``
  value's option, trained on some items and scored on others. The probe is the upper bound of what
  is linearly present: a lens reads only the directions the unembedding (or its translator)
  reads, a probe any direction.

:func:`first_decodable_layers` turns either score by layer into the first layer where it reaches a
threshold (NaN where it never does): if the model computes the steps one after another in depth,
that layer rises with ``j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int

from probes.errors import InvalidItemError
from probes.lenses.reading import encode_item, resolve_layers, right_padded
from probes.model.loading import HookedModel
from probes.tasks.items import Item

#: Score (lens top share, probe accuracy) from which a step's value counts as decodable.
DECODABLE_AT = 0.5

#: L2 penalty of the probe (on standardised residuals).
PROBE_L2 = 1e-3


@torch.inference_mode()
def final_residuals(
    model: HookedModel, items: Sequence[Item], layers: Sequence[int] | None = None, batch_size: int = 32
) -> Float[torch.Tensor, "item layer d_model"]:
    """The residual stream at each item's last prompt token, at every readable layer (or ``layers``)."""
    layer_list = resolve_layers(layers, model.n_layers)
    prompts = [encode_item(item, model.tokenizer, model.n_ctx).prompt_ids for item in items]
    out = torch.empty(len(items), len(layer_list), model.d_model)
    with model.residual_reader(layer_list) as catcher:
        for start in range(0, len(items), batch_size):
            chunk = prompts[start : start + batch_size]
            input_ids, attention_mask = right_padded(chunk)
            rows = torch.arange(len(chunk))
            positions = torch.tensor([len(ids) - 1 for ids in chunk])
            device = model.device
            resid = catcher.run(
                input_ids.to(device), attention_mask.to(device), rows.to(device), positions.to(device)
            )
            out[start : start + len(chunk)] = resid.permute(1, 0, 2).float().cpu()
    return out


def step_labels(items: Sequence[Item], step: int) -> Int[torch.Tensor, " item"]:
    """Per item, the option index of its value after step ``step`` (0 = the start value).

    Raises:
        InvalidItemError: an item has fewer steps, no intermediates, or the value is not an option.
    """
    labels = []
    for item in items:
        values = [item.meta.get("start"), *item.meta.get("intermediates", [])]
        if step >= len(values) or values[step] not in item.options:
            raise InvalidItemError(f"item {item.id!r} has no option for the value after step {step}.")
        labels.append(item.options.index(values[step]))
    return torch.tensor(labels)


def fit_probe(
    features: Float[torch.Tensor, "item d"],
    labels: Int[torch.Tensor, " item"],
    classes: int,
    l2: float = PROBE_L2,
) -> tuple[Float[torch.Tensor, "d_plus_1 class"], Float[torch.Tensor, "2 d"]]:
    """A multinomial logistic regression (with bias) fitted by L-BFGS on standardised features.

    Returns the weights and the (mean, std) used to standardise.
    """
    scale = torch.stack([features.mean(0), features.std(0).clamp_min(1e-6)])
    x = torch.cat([(features - scale[0]) / scale[1], torch.ones(len(features), 1)], dim=1).double()
    weights = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([weights], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        solver.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weights, labels) + l2 * weights[:-1].square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        solver.step(closure)
    return weights.detach(), scale


def probe_accuracy(
    weights: Float[torch.Tensor, "d_plus_1 class"],
    scale: Float[torch.Tensor, "2 d"],
    features: Float[torch.Tensor, "item d"],
    labels: Int[torch.Tensor, " item"],
) -> float:
    """Share of items whose label is the probe's top class."""
    x = torch.cat([(features - scale[0]) / scale[1], torch.ones(len(features), 1)], dim=1).double()
    return float(((x @ weights).argmax(1) == labels).double().mean())


def probe_steps(
    residuals: Float[torch.Tensor, "item layer d_model"],
    items: Sequence[Item],
    layers: Sequence[int],
    train_share: float = 0.7,
) -> pd.DataFrame:
    """Linear-probe accuracy of every step's value at every layer, items of one k.

    The first ``train_share`` of the items train the probes, the rest score them. One row per
    (step j = 0 … k, layer): ``steps``, ``step``, ``layer``, ``score`` (held-out accuracy),
    ``chance`` (share of the most common held-out label), ``n_train``, ``n_test``.

    Raises:
        InvalidItemError: items of different k, or too few items to train and test.
    """
    ks = {item.meta.get("steps") for item in items}
    if len(ks) != 1:
        raise InvalidItemError(f"probe the items of one k at a time; got k in {sorted(map(str, ks))}.")
    n_train = int(len(items) * train_share)
    if n_train < 10 or len(items) - n_train < 10:
        raise InvalidItemError(f"{len(items)} items are too few to train and test a probe; use 50 or more.")
    (k,) = ks
    classes = len(items[0].options)
    rows = []
    for step in range(k + 1):
        labels = step_labels(items, step)
        train, test = labels[:n_train], labels[n_train:]
        chance = float(np.bincount(test.numpy(), minlength=classes).max() / len(test))
        for column, layer in enumerate(layers):
            weights, scale = fit_probe(residuals[:n_train, column], train, classes)
            score = probe_accuracy(weights, scale, residuals[n_train:, column], test)
            rows.append(
                {
                    "steps": k,
                    "step": step,
                    "layer": layer,
                    "score": score,
                    "chance": chance,
                    "n_train": n_train,
                    "n_test": len(test),
                }
            )
    return pd.DataFrame(rows)


def lens_step_scores(step_summary: pd.DataFrame) -> pd.DataFrame:
    """A lens step-readout summary as step scores: ``score`` = share of items where the value is top."""
    return step_summary.rename(columns={"top_share": "score"})


def first_decodable_layers(
    scores: pd.DataFrame, threshold: float = DECODABLE_AT, keys: Sequence[str] = ("model", "steps", "step")
) -> pd.DataFrame:
    """Per ``keys`` (plus ``readout`` if present): the first layer whose ``score`` ≥ ``threshold``.

    Columns ``first_layer`` (NaN if never), ``first_relative_depth`` (layer / n_layers, when the
    table has ``n_layers``), ``peak_score`` and ``threshold``.
    """
    group = [*keys, *(["readout"] if "readout" in scores.columns else [])]
    missing = [column for column in [*group, "layer", "score"] if column not in scores.columns]
    if missing or scores.empty:
        raise InvalidItemError(f"the step score table is empty or lacks {missing}.")
    rows: list[dict[str, Any]] = []
    for key, frame in scores.groupby(group, sort=True, dropna=False):
        frame = frame.sort_values("layer")
        hit = frame[frame["score"] >= threshold]
        first = float(hit["layer"].iloc[0]) if len(hit) else float("nan")
        row = {**dict(zip(group, key)), "first_layer": first, "peak_score": float(frame["score"].max())}
        if "n_layers" in frame.columns:
            row["n_layers"] = int(frame["n_layers"].iloc[0])
            row["first_relative_depth"] = first / row["n_layers"]
        rows.append({**row, "threshold": threshold})
    return pd.DataFrame(rows)
