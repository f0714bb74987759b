"""Aggregates of the ablation study's tables: what the figures plot and the summaries report.

Every function takes the per-item table of one kind (as :meth:`probes.store.store.Store.read`
returns it, several models at once) and returns one row per model and whatever it groups
by; ratios of sums are used where per-item ratios would divide by near-zero gaps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_KEYS = ["model", "task", "variant"]

#: Smallest mean item-to-twin log-odds gap (nats) the share restored is divided by. Below it the
#: twin and the item barely differ: the ratio would amplify noise (a gap of 1e-6 turns any
#: rounding into "restored = 1"), so ``restored`` is left missing and figures mask the cell.
MIN_GAP = 0.1


def mean_attribution(attribution: pd.DataFrame) -> pd.DataFrame:
    """Mean attribution of every part over items, per model, task and variant."""
    keys = [*_KEYS, "component", "kind", "layer", "head"]
    means = attribution.groupby(keys, as_index=False, dropna=False, sort=False).agg(
        attribution=("attribution", "mean"), n_items=("item_id", "nunique")
    )
    return means


def distractor_pushers(attribution: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Per model, the heads and MLPs with the most negative mean attribution (push the distractor)."""
    means = mean_attribution(attribution)
    means = means[means["kind"].isin(["head", "mlp"])]
    ranked = means.sort_values([*_KEYS, "attribution"], kind="stable")
    return ranked.groupby(_KEYS, sort=False).head(top).reset_index(drop=True)


def ablation_effects(ablation: pd.DataFrame) -> pd.DataFrame:
    """Per model, ablated set and method: mean log-odds change and accuracy before and after.

    Random sets of one ``k`` are pooled over their draws (``n_draws``), with the spread of the
    draws' mean changes (``delta_std`` and ``accuracy_std``).
    """
    table = ablation.assign(delta=ablation["log_odds_ablated"] - ablation["log_odds_clean"])
    per_set = table.groupby(
        [*_KEYS, "selection", "method", "k", "draw", "components"], as_index=False, sort=False
    ).agg(
        delta=("delta", "mean"),
        accuracy_clean=("correct_clean", "mean"),
        accuracy_ablated=("correct_ablated", "mean"),
        n_items=("item_id", "nunique"),
    )
    per_set["accuracy_change"] = per_set["accuracy_ablated"] - per_set["accuracy_clean"]
    pooled = per_set.groupby([*_KEYS, "selection", "method", "k"], as_index=False, sort=False).agg(
        components=("components", lambda c: c.iloc[0] if c.nunique() == 1 else f"{c.nunique()} random sets"),
        delta=("delta", "mean"),
        delta_std=("delta", "std"),
        accuracy_clean=("accuracy_clean", "mean"),
        accuracy_ablated=("accuracy_ablated", "mean"),
        accuracy_change=("accuracy_change", "mean"),
        accuracy_std=("accuracy_change", "std"),
        n_draws=("draw", "nunique"),
        n_items=("n_items", "max"),
    )
    singles = per_set[per_set["selection"].isin(["single", "chosen"])]
    pooled = pooled[~pooled["selection"].isin(["single", "chosen"])]
    singles = singles.assign(delta_std=np.nan, accuracy_std=np.nan, n_draws=1)
    return pd.concat([singles[pooled.columns], pooled], ignore_index=True)


def patching_curve(patching: pd.DataFrame) -> pd.DataFrame:
    """Per model, positions mode and site, the share of the item-to-twin log-odds gap the patch restores.

    ``restored = mean(patched - clean) / mean(twin - clean)`` over items (``gap`` is the mean
    ``twin - clean``), missing where ``|gap|`` is below :data:`MIN_GAP`; ``relative_depth`` is
    the layer over the model's number of blocks (residual sites; heads sit at their block's
    input, ``layer / n_layers``).
    """
    table = patching.assign(
        moved=patching["log_odds_patched"] - patching["log_odds_clean"],
        gap=patching["log_odds_twin"] - patching["log_odds_clean"],
    )
    keys = [*_KEYS, "positions", "site", "component", "layer", "head"]
    curve = table.groupby(keys, as_index=False, dropna=False, sort=False).agg(
        moved=("moved", "mean"), gap=("gap", "mean"), n_items=("item_id", "nunique")
    )
    curve["restored"] = curve["moved"] / curve["gap"].where(curve["gap"].abs() >= MIN_GAP)
    blocks = table[table["site"] == "resid"].groupby("model")["layer"].max()
    curve["relative_depth"] = curve["layer"].astype(float) / curve["model"].map(blocks).astype(float)
    return curve.drop(columns=["moved"])
