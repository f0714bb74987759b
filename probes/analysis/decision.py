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

**Divergence layer** (of a model on a task): where the distractor starts to act, found by
comparing like with like. Each ``prize`` item is paired with its ``no_distractor`` twin (the
same item id: the same case with the distractor cue removed). The *effect* at a layer is the
prize item's own answer pair (its true answer vs its distractor) scored under the prize prompt
minus the same pair scored under the twin's prompt. Where the twin asks for the same answer,
its score is the pair's; where the twin's true answer is the prize's distractor (negation
tasks: ``organism_negation``, negation_qa, redefine_math, sig_figs), its score is the pair's
negated (every score here is antisymmetric); which of the two holds is read from each item's
stored answers, and a twin scored on another pair is not paired (counted in ``n_unpaired``).
A negative effect means the prize prompt moves the pair toward the distractor more than the
control prompt does. All blocks are tested at once (:func:`probes.analysis.familywise.sign_flip_max_t`:
max-|t| over the blocks, sign flips of whole items, family-wise error 5%). The divergence
layer is the first block whose simultaneous 95% interval lies wholly below 0, or none.
The *separation layer* is the first block whose interval excludes 0 in either direction: where
the two prompts start to move the pair apart at all (on a negation task, a model that reads
the negation separates them toward the true answer: a positive effect, no divergence).

After Halawi, Denain & Steinhardt (2023), "Overthinking the Truth: Understanding how Language
Models Process False Demonstrations" (arXiv:2307.09476), whose *critical layer* is where
accuracy under false demonstrations starts to fall below accuracy under true ones, both
measured against the same correct label. Theirs compares accuracies at each layer by eye; ours
compares the paired log-odds of one fixed answer pair with a family-wise test, and pairs a
prompt with a distractor cue with the same question without it (``docs/conclusions.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom

from probes.analysis.familywise import sign_flip_max_t
from probes.analysis.metrics import GROUP, accuracy_interval
from probes.analysis.scoring import per_layer_credit, per_layer_score

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
    under that score (its credit, ``credit``: ``fair_correct`` for the length-fair score, so an
    item is right there exactly when it can have a decision layer; a tie is half right) with
    its Wilson interval, ``chance``, ``above_chance``,
    ``share_with_decision_layer`` (always given), and ``decision_layer`` /
    ``decision_layer_low`` / ``decision_layer_high`` and ``decision_relative_depth`` (and its
    interval): the median over the items that have one, NaN where the model is not above chance.
    """
    score = score or per_layer_score(table)
    credit = per_layer_credit(table) if score == "fair_log_odds" else "correct"
    per_item = item_decision_layers(table, score)
    deepest = table.groupby(GROUP, sort=False, dropna=False)["layer"].transform("max")
    last = table[table["layer"] == deepest]
    rows = []
    for key, group in per_item.groupby(GROUP, sort=False, dropna=False):
        final = last[(last[GROUP] == pd.Series(key, index=GROUP)).all(axis=1)]
        accuracy, low, high = accuracy_interval(final[credit].to_numpy())
        chance = float((1.0 / final["option_logprobs"].map(len)).mean())
        above = bool(low > chance)
        layers = group["decision_layer"].dropna().to_numpy()
        n_layers = int(group["n_layers"].iloc[0])
        row = {
            **dict(zip(GROUP, key)),
            "n_layers": n_layers,
            "n_items": len(group),
            "score": score,
            "credit": credit,
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


def _orientation(prize: pd.DataFrame, control: pd.DataFrame) -> pd.Series:
    """Per paired row: +1 where the twin's (true, distractor) is the prize item's, −1 where it is
    swapped, NaN where the twin is scored on another pair."""
    same = (control["true_answer"].to_numpy() == prize["true_answer"].to_numpy()) & (
        control["distractor_answer"].to_numpy() == prize["distractor_answer"].to_numpy()
    )
    swapped = (control["true_answer"].to_numpy() == prize["distractor_answer"].to_numpy()) & (
        control["distractor_answer"].to_numpy() == prize["true_answer"].to_numpy()
    )
    return pd.Series(np.where(same, 1.0, np.where(swapped, -1.0, np.nan)), index=prize.index)


def paired_differences(table: pd.DataFrame, score: str | None = None) -> pd.DataFrame:
    """Per (model, revision, lens, task, item, layer ≥ 1): the prize item's answer pair scored
    under the prize prompt minus under its no_distractor twin's prompt.

    Columns: the keys, ``{score}_prize``, ``{score}_control`` (the twin's own score),
    ``orientation`` (+1: the twin's answer pair is the prize's; −1: swapped; NaN: another pair)
    and ``difference`` (``{score}_prize − orientation × {score}_control``; NaN where not paired).
    Only items present in both variants appear; an empty frame when none are.
    """
    score = score or per_layer_score(table)
    keys = [c for c in GROUP if c != "variant"] + ["item_id", "layer", "n_layers"]
    answers = ["true_answer", "distractor_answer"]
    blocks = table[table["layer"] >= 1]
    prize = blocks.loc[blocks["variant"] == PRIZE, [*keys, score, *answers]]
    control = blocks.loc[blocks["variant"] == CONTROL, [*keys, score, *answers]]
    paired = prize.merge(control, on=keys, suffixes=("_prize", "_control"))
    paired["orientation"] = _orientation(
        paired[[f"{a}_prize" for a in answers]].set_axis(answers, axis=1),
        paired[[f"{a}_control" for a in answers]].set_axis(answers, axis=1),
    )
    paired["difference"] = paired[f"{score}_prize"] - paired["orientation"] * paired[f"{score}_control"]
    return paired.drop(columns=[f"{a}_{side}" for a in answers for side in ("prize", "control")])


def _wide(group: pd.DataFrame) -> pd.DataFrame:
    """Items × layers of paired differences: items paired at every layer only."""
    paired = group[group["orientation"].notna()]
    return paired.pivot_table(index="item_id", columns="layer", values="difference", dropna=False).dropna()


def divergence_curve(
    table: pd.DataFrame, score: str | None = None, n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per (model, task, layer ≥ 1): the mean paired effect (:func:`paired_differences`) with its
    simultaneous 95% interval over the blocks (:func:`~probes.analysis.familywise.sign_flip_max_t`).

    Columns: ``n_pairs``, ``mean_difference``, ``difference_low``, ``difference_high`` (the
    simultaneous interval), ``p_adjusted`` (family-wise), ``separated`` (the interval excludes
    0) and ``significant`` (it lies wholly below 0: the prize prompt pulls toward the distractor).
    """
    score = score or per_layer_score(table)
    paired = paired_differences(table, score)
    keys = [c for c in GROUP if c != "variant"]
    columns = [*keys, "layer", "n_layers", "n_pairs", "mean_difference", "difference_low"]
    columns += ["difference_high", "p_adjusted", "separated", "significant"]
    frames = []
    for key, group in paired.groupby(keys, sort=False, dropna=False):
        wide = _wide(group)
        tests = sign_flip_max_t(wide.to_numpy(), n_resamples, seed, CONFIDENCE)
        frame = pd.DataFrame(
            {
                **dict(zip(keys, key)),
                "layer": wide.columns.to_numpy(),
                "n_layers": int(group["n_layers"].iloc[0]),
                "n_pairs": len(wide),
                "mean_difference": tests.mean,
                "difference_low": tests.low,
                "difference_high": tests.high,
                "p_adjusted": tests.p_adjusted,
                "separated": tests.significant,
                "significant": tests.significant & (tests.mean < 0),
            }
        )
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(frames, ignore_index=True)[columns]
    return frame.sort_values([*keys, "layer"], kind="stable").reset_index(drop=True)


def testable(n_pairs: int) -> bool:
    """Whether a sign-flip test over ``n_pairs`` items can reject at all: the smallest adjusted
    p-value it can give is 2 / 2**n_pairs (every sign alike), so 5 pairs or fewer never can."""
    return n_pairs >= 2 and 2.0 ** (1 - n_pairs) <= 1 - CONFIDENCE


def divergence_summary(
    table: pd.DataFrame, score: str | None = None, n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per (model, task): the divergence layer (NaN if none) and the separation layer.

    Columns: ``n_layers``, ``n_pairs`` (items paired at every block), ``n_unpaired`` (twins
    scored on another answer pair), ``score``; ``divergence_layer`` (the first block whose
    simultaneous interval lies below 0) with its relative depth and the effect there
    (``divergence_effect``, ``_low``, ``_high``); the same for ``separation_layer`` (the first
    block whose interval excludes 0, either way) and ``separation_effect``; ``testable``: whether
    there are pairs enough for any block to be significant (:func:`testable`; where not, "none"
    is "not determined").
    """
    score = score or per_layer_score(table)
    curve = divergence_curve(table, score, n_resamples, seed)
    paired = paired_differences(table, score)
    keys = [c for c in GROUP if c != "variant"]
    rows = []
    for key, group in curve.groupby(keys, sort=False, dropna=False):
        n_layers = int(group["n_layers"].iloc[0])
        mask = (paired[keys] == pd.Series(key, index=keys)).all(axis=1)
        unpaired = paired.loc[mask & paired["orientation"].isna(), "item_id"].nunique()
        row = {
            **dict(zip(keys, key)),
            "n_layers": n_layers,
            "n_pairs": int(group["n_pairs"].iloc[0]),
            "n_unpaired": int(unpaired),
            "score": score,
            "testable": testable(int(group["n_pairs"].iloc[0])),
        }
        for kind, column in (("divergence", "significant"), ("separation", "separated")):
            found = group[group[column].astype(bool)]
            at = found.iloc[0] if len(found) else None
            layer = float(at["layer"]) if at is not None else float("nan")
            row.update(
                {
                    f"{kind}_layer": layer,
                    f"{kind}_relative_depth": layer / n_layers,
                    f"{kind}_effect": float(at["mean_difference"]) if at is not None else float("nan"),
                    f"{kind}_effect_low": float(at["difference_low"]) if at is not None else float("nan"),
                    f"{kind}_effect_high": float(at["difference_high"]) if at is not None else float("nan"),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)
