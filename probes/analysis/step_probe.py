"""At which layer each intermediate step's value becomes decodable: lens readouts and linear probes.

For a k-step item the value after step ``j`` (``meta["intermediates"][j - 1]``) is one of the item's
options. Two readouts of the residual stream at the last prompt position, per layer:

- a **lens** (logit lens, or any :class:`probes.lenses.base.Lens`): the share of items whose step-``j``
  value is the top option (:func:`probes.analysis.reasoning.step_readout_summary`, ``top_share``);
- a **linear probe**: a ridge-regression classifier from the residual to the step-``j`` value's
  option (one-hot targets), trained on some items and scored on others. Its penalty is chosen per
  (step, layer) by exact leave-one-out error on the training items (:data:`PROBE_RIDGE_GRID`), so
  a probe on few items in many dimensions is regularised rather than overfitted
  (:func:`fit_probe`, a multinomial logistic regression at a fixed penalty, stays for callers that
  want probabilities). A lens reads only the directions the unembedding (or its translator)
  reads, a probe any direction; with enough training items the probe should read at least what a
  lens reads, and where it does not the probe is the weaker measure, not evidence that nothing is
  there.

:func:`first_decodable_layers` turns either score by layer into the first layer where it reaches a
threshold (NaN where it never does): if the model computes the steps one after another in depth,
that layer rises with ``j``. :func:`first_decodable_intervals` adds a bootstrap interval over
items to that layer (the same resampled items at every layer), so a first layer decided by one or
two items shows as a wide interval.
"""

from __future__ import annotations

import math
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

#: L2 penalty of the probe (on standardised residuals) when none is chosen by cross-validation.
PROBE_L2 = 1e-3

#: Ridge penalties the step probe's leave-one-out cross-validation chooses from (standardised
#: residuals, so a penalty of about the number of training items shrinks the weights by half).
PROBE_RIDGE_GRID = tuple(float(10**exponent) for exponent in np.arange(-2.0, 4.01, 0.5))


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


def ridge_probes(
    features: Float[torch.Tensor, "problem item d"],
    labels: Int[torch.Tensor, " item"],
    classes: int,
    grid: Sequence[float] = PROBE_RIDGE_GRID,
) -> tuple[Float[torch.Tensor, "problem d_plus_1 class"], Float[torch.Tensor, "problem 2 d"], list[float]]:
    """Ridge-regression classifiers (one-hot targets, with bias), the penalty of each problem
    chosen by exact leave-one-out error, all problems at once.

    Each problem (e.g. a layer) standardises its features, then for every penalty ``λ`` of
    ``grid`` solves ``min ||Y − b − X W||² + λ ||W||²`` in closed form from one SVD of ``X``; the
    leave-one-out residuals of a linear smoother are ``(Y − Ŷ) / (1 − h_ii)`` (``h`` the hat
    matrix's diagonal, the bias included), so the leave-one-out squared error of every penalty
    costs no refit (Golub, Heath & Wahba 1979; scikit-learn's ``RidgeClassifierCV``). The penalty
    with the least error is kept (a tie goes to the stronger one). Returns the weights (the bias
    in the last row), each problem's (mean, std) and the chosen penalties.
    """
    values = features.double()
    n_items = values.shape[1]
    mean = values.mean(1)
    std = values.std(1).clamp_min(1e-6)
    x = (values - mean[:, None]) / std[:, None]
    targets = torch.nn.functional.one_hot(labels, classes).double()
    centred = targets - targets.mean(0)
    u, singular, vt = torch.linalg.svd(x, full_matrices=False)  # x = u diag(s) vt
    projected = u.transpose(1, 2) @ centred  # problem x rank x class
    penalties = sorted(grid, reverse=True)
    errors = []
    for l2 in penalties:
        shrink = singular.square() / (singular.square() + l2)  # problem x rank
        fitted = u @ (shrink[..., None] * projected)
        leverage = (u.square() * shrink[:, None]).sum(2) + 1 / n_items
        residual = (centred - fitted) / (1 - leverage)[..., None]
        errors.append(residual.square().sum((1, 2)))
    table = torch.stack(errors, 1)  # problem x penalty
    chosen = [penalties[int(torch.nonzero(row <= row.min() + 1e-9)[0])] for row in table]
    weights = []
    for problem, l2 in enumerate(chosen):
        s = singular[problem]
        coefficients = vt[problem].T @ ((s / (s.square() + l2))[:, None] * projected[problem])
        bias = targets.mean(0, keepdim=True)
        weights.append(torch.cat([coefficients, bias], 0))
    return torch.stack(weights), torch.stack([mean, std], 1).float(), chosen


def probe_predictions(
    weights: Float[torch.Tensor, "d_plus_1 class"],
    scale: Float[torch.Tensor, "2 d"],
    features: Float[torch.Tensor, "item d"],
) -> Int[torch.Tensor, " item"]:
    """The probe's top class per item (a ridge or a logistic probe alike)."""
    x = torch.cat([(features - scale[0]) / scale[1], torch.ones(len(features), 1)], dim=1).double()
    return (x @ weights.double()).argmax(1)


def probe_step_items(
    residuals: Float[torch.Tensor, "item layer d_model"],
    items: Sequence[Item],
    layers: Sequence[int],
    train_share: float = 0.7,
    grid: Sequence[float] = PROBE_RIDGE_GRID,
) -> pd.DataFrame:
    """Per held-out item, step j = 0 … k and layer: whether a cross-validated linear probe reads it.

    The first ``train_share`` of the items train the probes (ridge classifiers, the penalty of each
    layer chosen by leave-one-out error on them: :func:`ridge_probes`), the rest are scored. One
    row per (held-out item, step, layer):
    ``steps``, ``step``, ``layer``, ``item_id``, ``correct`` (1.0 when the step's value is the
    probe's top class), ``l2`` (the chosen penalty), ``chance`` (share of the most common held-out
    label), ``n_train``, ``n_test``.

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
    held_ids = [item.id for item in items[n_train:]]
    frames = []
    for step in range(k + 1):
        labels = step_labels(items, step)
        train, test = labels[:n_train], labels[n_train:]
        chance = float(np.bincount(test.numpy(), minlength=classes).max() / len(test))
        by_layer = residuals.permute(1, 0, 2)
        weights, scales, chosen = ridge_probes(by_layer[:, :n_train], train, classes, grid)
        for column, (layer, l2) in enumerate(zip(layers, chosen)):
            correct = probe_predictions(weights[column], scales[column], residuals[n_train:, column]) == test
            frames.append(
                pd.DataFrame(
                    {
                        "steps": k,
                        "step": step,
                        "layer": layer,
                        "item_id": held_ids,
                        "correct": correct.double().numpy(),
                        "l2": l2,
                        "chance": chance,
                        "n_train": n_train,
                        "n_test": len(test),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


#: Columns of a probe's per-item table that are the same for every item of one (step, layer).
_PROBE_CELL = ["l2", "chance", "n_train", "n_test"]


def probe_step_scores(per_item: pd.DataFrame) -> pd.DataFrame:
    """A :func:`probe_step_items` table (any extra key columns kept) as one ``score`` (held-out
    accuracy) per (step, layer)."""
    keys = [column for column in per_item.columns if column not in {"item_id", "correct", *_PROBE_CELL}]
    cells = [column for column in _PROBE_CELL if column in per_item.columns]
    return (
        per_item.groupby(keys, sort=True, dropna=False)
        .agg(score=("correct", "mean"), **{column: (column, "first") for column in cells})
        .reset_index()
    )


def probe_steps(
    residuals: Float[torch.Tensor, "item layer d_model"],
    items: Sequence[Item],
    layers: Sequence[int],
    train_share: float = 0.7,
    grid: Sequence[float] = PROBE_RIDGE_GRID,
) -> pd.DataFrame:
    """Cross-validated linear-probe accuracy of every step's value at every layer, items of one k.

    :func:`probe_step_items` summarised: one row per (step j = 0 … k, layer) with ``steps``,
    ``step``, ``layer``, ``score`` (held-out accuracy), ``l2``, ``chance``, ``n_train``, ``n_test``.

    Raises:
        InvalidItemError: items of different k, or too few items to train and test.
    """
    return probe_step_scores(probe_step_items(residuals, items, layers, train_share, grid))


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


def first_decodable_intervals(
    per_item: pd.DataFrame,
    threshold: float = DECODABLE_AT,
    keys: Sequence[str] = ("model", "steps", "step"),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per ``keys`` (plus ``readout`` if present): the first layer whose share of items read right
    reaches ``threshold``, with a bootstrap interval over items.

    ``per_item`` has one row per (keys, item, layer) with ``item_id``, ``layer`` and ``correct``
    (1 when the value is read, a lens's ``top`` credit or a probe's held-out hit). Items are
    resampled with replacement ``n_resamples`` times, the same draw at every layer (an item's
    readouts across layers stay together), and the first layer is recomputed on each draw. Columns
    ``first_layer`` (NaN: never reached), ``first_layer_low`` / ``first_layer_high`` (the
    percentile interval's ends, values the draws took; ``inf`` where the share of draws that never
    reach the threshold puts that end past the last layer), ``never_share`` (share of draws that
    never reach it), ``peak_score``, ``n_items``, ``threshold`` (and ``n_layers``,
    ``first_relative_depth`` when the table has ``n_layers``).

    Raises:
        InvalidItemError: the table is empty or lacks a column, or an item lacks a layer.
    """
    group = [*keys, *(["readout"] if "readout" in per_item.columns else [])]
    missing = [column for column in [*group, "item_id", "layer", "correct"] if column not in per_item.columns]
    if missing or per_item.empty:
        raise InvalidItemError(f"the per-item step table is empty or lacks {missing}.")
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    rows: list[dict[str, Any]] = []
    for key, frame in per_item.groupby(group, sort=True, dropna=False):
        matrix = frame.pivot_table(index="item_id", columns="layer", values="correct", aggfunc="mean")
        if matrix.isna().to_numpy().any():
            raise InvalidItemError(f"{dict(zip(group, key))}: some items lack a layer's readout.")
        layers = matrix.columns.to_numpy(dtype=float)
        values = matrix.to_numpy(dtype=float)
        point = _first_reaching(values.mean(0), layers, threshold)
        draws = rng.integers(0, len(values), size=(n_resamples, len(values)))
        shares = values[draws].mean(1)  # resample x layer
        firsts = np.array([_first_reaching(share, layers, threshold) for share in shares])
        firsts = np.where(np.isnan(firsts), math.inf, firsts)
        row = {
            **dict(zip(group, key)),
            "first_layer": point,
            "first_layer_low": float(np.quantile(firsts, tail, method="lower")),
            "first_layer_high": float(np.quantile(firsts, 1 - tail, method="higher")),
            "never_share": float(np.mean(np.isinf(firsts))),
            "peak_score": float(values.mean(0).max()),
            "n_items": len(values),
        }
        if "n_layers" in frame.columns:
            row["n_layers"] = int(frame["n_layers"].iloc[0])
            row["first_relative_depth"] = point / row["n_layers"]
        rows.append({**row, "threshold": threshold})
    return pd.DataFrame(rows)


def _first_reaching(scores: np.ndarray, layers: np.ndarray, threshold: float) -> float:
    hit = np.flatnonzero(scores >= threshold)
    return float(layers[hit[0]]) if len(hit) else math.nan


def probe_against_lens(
    per_item: pd.DataFrame,
    threshold: float = DECODABLE_AT,
    keys: Sequence[str] = ("model", "steps", "step", "lens"),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per ``keys`` and layer: the probe against a lens on the same held-out items.

    ``per_item`` is a :func:`probe_step_items` table with ``lens_correct`` (the lens's top-option
    credit for the same item, step and layer; above 0.5 counts as read). Columns ``n_items``,
    ``probe_score``, ``lens_score``, ``probe_only`` / ``lens_only`` (items only the probe / only
    the lens reads), ``p_value`` (exact two-sided McNemar test: a binomial test on the discordant
    items), ``lens_reads`` (lens score ≥ ``threshold``), ``p_holm`` (Holm-adjusted over the cells
    where the lens reads; NaN elsewhere) and ``probe_worse`` (adjusted p < ``alpha`` and the lens
    ahead).

    Raises:
        InvalidItemError: the table is empty or lacks a column.
    """
    from scipy.stats import binomtest
    from statsmodels.stats.multitest import multipletests

    needed = [*keys, "layer", "item_id", "correct", "lens_correct"]
    missing = [column for column in needed if column not in per_item.columns]
    if missing or per_item.empty:
        raise InvalidItemError(f"the probe table is empty or lacks {missing}.")
    rows = []
    for key, frame in per_item.groupby([*keys, "layer"], sort=True, dropna=False):
        probe = frame["correct"].to_numpy() > 0.5
        lens = frame["lens_correct"].to_numpy() > 0.5
        probe_only, lens_only = int((probe & ~lens).sum()), int((lens & ~probe).sum())
        discordant = probe_only + lens_only
        rows.append(
            {
                **dict(zip([*keys, "layer"], key)),
                "n_items": len(frame),
                "probe_score": float(probe.mean()),
                "lens_score": float(lens.mean()),
                "probe_only": probe_only,
                "lens_only": lens_only,
                "p_value": binomtest(probe_only, discordant).pvalue if discordant else 1.0,
            }
        )
    table = pd.DataFrame(rows)
    table["lens_reads"] = table["lens_score"] >= threshold
    table["p_holm"] = np.nan
    if table["lens_reads"].any():
        reads = table["lens_reads"]
        table.loc[reads, "p_holm"] = multipletests(table.loc[reads, "p_value"], method="holm")[1]
    table["probe_worse"] = (table["p_holm"] < alpha) & (table["lens_only"] > table["probe_only"])
    return table
