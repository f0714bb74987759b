"""Per-item, per-layer scores of true vs distractor, and their aggregates.

The tidy table has one row per (model, item, variant, layer). Aggregates are
per (model, task, variant, layer); where in depth an answer is decided is in
:mod:`probes.analysis.decision`.

**Ties.** An option wins a layer when its score is the highest; when the true answer ties
with ``k - 1`` other options for the highest, the item is ``1/k`` right (half right against a
single distractor). ``correct`` holds that credit (1, 1/k or 0), so every accuracy (the mean
of ``correct``) treats a tie the same way and never gives it to option 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jaxtyping import Float, Int

from probes.analysis.scoring import fair_credit, fair_log_odds, per_layer_credit, per_layer_score

if TYPE_CHECKING:  # the table statistics below run without torch (``probes show`` stays light)
    import torch

    from probes.lenses.reading import OptionReadout

#: Two-sided confidence of every interval the toolkit reports.
CONFIDENCE = 0.95

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

    Columns: true and distractor log-prob, ``log_odds`` (true − distractor, summed over
    answer tokens), ``fair_log_odds`` (the length-fair score of :mod:`probes.analysis.scoring`)
    and ``fair_correct`` (its credit over all options: what per-layer accuracy reads),
    ``true_token_logprobs`` / ``distractor_token_logprobs`` (per answer token, at the layer),
    ``p_true`` / ``p_distractor`` (softmax over the options of the summed
    option log-probs), the chosen option (-1 and an empty answer on a tie for the
    top) and ``correct``, the true answer's credit under the summed option log-probs (1, 1/k on
    a k-way tie, 0: the prize metric, what last-layer accuracy reads); at
    the last layer also the Inverse Scaling Prize metric (``prize_probability``
    of the true class and ``prize_loss`` = −log of it; NaN at other layers). The
    item's ``prompt`` (as scored: with a chain-of-thought rationale, if any),
    ``options`` and ``rationale`` (empty unless the model wrote one) ride along.
    """
    import torch

    last = n_layers
    frames = []
    for index, (item, logprobs, counts) in enumerate(
        zip(readout.items, readout.logprobs, readout.option_token_counts)
    ):
        true_tokens, distractor_tokens, fair, fair_correct = _token_scores(readout, index, logprobs)
        option_p = torch.softmax(logprobs.double(), dim=-1)
        true_lp = logprobs[:, item.true_index].double()
        distractor_lp = logprobs[:, item.distractor_index].double()
        credit = option_credit(logprobs, item.true_index)
        chosen = chosen_options(logprobs)
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
                    "fair_log_odds": fair.numpy(),
                    "p_true": p_true.numpy(),
                    "p_distractor": option_p[:, item.distractor_index].numpy(),
                    "chosen_option": chosen.numpy(),
                    "chosen_answer": [item.options[int(c)] if c >= 0 else "" for c in chosen],
                    "correct": credit.numpy(),
                    "fair_correct": fair_correct.numpy(),
                    "prize_probability": torch.where(is_last, p_true, torch.nan).numpy(),
                    "prize_loss": torch.where(is_last, -p_true.log(), torch.nan).numpy(),
                    "option_logprobs": [row.tolist() for row in logprobs.double()],
                    "true_answer": item.true_answer,
                    "distractor_answer": item.distractor_answer,
                    "true_token_logprobs": [row.tolist() for row in true_tokens],
                    "distractor_token_logprobs": [row.tolist() for row in distractor_tokens],
                    "true_tokens": counts[item.true_index],
                    "distractor_tokens": counts[item.distractor_index],
                    "options": [list(item.options)] * len(readout.layers),
                    "prompt": item.prompt,
                    "rationale": str(item.meta.get("rationale", "")),
                }
            )
        )
    return layer_frames_table(frames, provenance, n_layers)


def _token_scores(
    readout: OptionReadout, index: int, logprobs: Float[torch.Tensor, "layer option"]
) -> tuple[torch.Tensor, torch.Tensor, Float[torch.Tensor, " layer"], Float[torch.Tensor, " layer"]]:
    """One item's per-token log-probs of the true answer and the distractor, its fair score and
    the fair score's credit over all options.

    A readout built without per-token values (single-token answers) counts each option as one
    token, so both fair values are the summed ones; with longer answers and no per-token values
    they are NaN.
    """
    import torch

    item = readout.items[index]
    true, distractor = item.true_index, item.distractor_index
    if readout.token_logprobs:
        tokens, ids = readout.token_logprobs[index], readout.option_ids[index]
        fair = fair_log_odds(tokens[true], tokens[distractor], ids[true], ids[distractor])
        return tokens[true].double(), tokens[distractor].double(), fair, fair_credit(tokens, ids, true)
    true_tokens, distractor_tokens = logprobs[:, [true]].double(), logprobs[:, [distractor]].double()
    fair = true_tokens[:, 0] - distractor_tokens[:, 0]
    credit = option_credit(logprobs, true)
    if max(readout.option_token_counts[index]) > 1:
        fair, credit = torch.full_like(fair, torch.nan), torch.full_like(credit, torch.nan)
    return true_tokens, distractor_tokens, fair, credit


def layer_frames_table(frames: list[pd.DataFrame], provenance: dict[str, Any], n_layers: int) -> pd.DataFrame:
    """Per-item frames with a ``layer`` column as one table: ``n_layers`` and ``relative_depth``
    after ``layer``, the provenance columns first."""
    table = pd.concat(frames, ignore_index=True)
    table.insert(table.columns.get_loc("layer") + 1, "n_layers", n_layers)
    table.insert(table.columns.get_loc("n_layers") + 1, "relative_depth", table["layer"] / n_layers)
    for position, (column, value) in enumerate(provenance.items()):
        table.insert(position, column, value)
    return table


def option_credit(
    scores: Float[torch.Tensor, "layer option"], true_index: int
) -> Float[torch.Tensor, " layer"]:
    """Per layer, how right the options' scores are: 1 if the true answer alone scores highest,
    ``1/k`` if it ties with ``k - 1`` others for the highest, 0 otherwise (NaN scores lose)."""
    import torch

    scores = torch.nan_to_num(scores.double(), nan=-torch.inf)
    top = scores == scores.max(dim=-1, keepdim=True).values
    return top[:, true_index].double() / top.sum(dim=-1).clamp(min=1)


def chosen_options(scores: Float[torch.Tensor, "layer option"]) -> Int[torch.Tensor, " layer"]:
    """Per layer, the index of the highest-scoring option, or -1 where several tie for it."""
    import torch

    scores = torch.nan_to_num(scores.double(), nan=-torch.inf)
    top = scores == scores.max(dim=-1, keepdim=True).values
    return torch.where(top.sum(dim=-1) == 1, scores.argmax(dim=-1), -1)


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sensible at 0/n and n/n, unlike the bootstrap).

    ``successes`` may be fractional: a tie is half a success.
    """
    if n == 0:
        return (float("nan"), float("nan"))
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def accuracy_interval(credit: np.ndarray) -> tuple[float, float, float]:
    """Accuracy (mean credit; a tie is half right) and its Wilson 95% interval."""
    credit = np.asarray(credit, dtype=float)
    if credit.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    low, high = wilson_interval(float(credit.sum()), credit.size)
    return float(credit.mean()), low, high


def bootstrap_interval(
    values: np.ndarray, n_resamples: int = 1000, confidence: float = CONFIDENCE, seed: int = 0
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


def aggregate(
    table: pd.DataFrame, n_resamples: int = 1000, seed: int = 0, score: str | None = None
) -> pd.DataFrame:
    """Per (model, task, variant, layer): accuracy (a tie is half right) with its Wilson 95%
    interval and the mean of ``score`` with a bootstrap 95% interval over items.

    Both follow one score (:mod:`probes.analysis.scoring`): by default the per-layer one
    (:func:`~probes.analysis.scoring.per_layer_score`: the length-fair score where the table has
    it), whose credit (``fair_correct``) gives the accuracy; ``score="log_odds"`` gives the
    summed score and its credit ``correct`` (the prize metric). Columns ``score`` and
    ``credit`` name them.
    """
    score = score or per_layer_score(table)
    credit = per_layer_credit(table) if score == "fair_log_odds" else "correct"
    rows = []
    for key, group in table.groupby([*GROUP, "layer"], sort=False, dropna=False):
        low, high = bootstrap_interval(group[score].to_numpy(), n_resamples, seed=seed)
        accuracy, accuracy_low, accuracy_high = accuracy_interval(group[credit].to_numpy())
        rows.append(
            {
                **dict(zip([*GROUP, "layer"], key)),
                "n_layers": int(group["n_layers"].iloc[0]),
                "relative_depth": float(group["relative_depth"].iloc[0]),
                "n_items": len(group),
                "accuracy": accuracy,
                "accuracy_low": accuracy_low,
                "accuracy_high": accuracy_high,
                "score": score,
                "credit": credit,
                "mean_log_odds": float(group[score].mean()),
                "log_odds_ci_low": low,
                "log_odds_ci_high": high,
                "mean_p_true": float(group["p_true"].mean()),
                "mean_true_logprob": float(group["true_logprob"].mean()),
            }
        )
    return pd.DataFrame(rows)
