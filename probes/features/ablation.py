"""Ablating the top-k distractor features against k random features, cross-fitted over items.

A feature is ablated by removing it at every position the SAE reads (``x_p - a_pf D_f``, the
error term kept), so the model runs exactly as before but for those features. Which features
are "top" is decided on other items than those they are ablated on: the items are split into
two seeded halves; the features most pushing the distractor on one half (lowest mean
attribution, only those below zero) are ablated on the other, and the other way round. The
comparison sets are ``draws`` sets of k features drawn uniformly from the features active on
the ranking half, seeded. Per item the rows hold the log-odds and the true answer's credit
(1 right, 1/k tied, 0 wrong) clean and ablated, so :mod:`probes.features.summary` can give the
accuracy changes and their difference with intervals over items.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pandas as pd
import torch

from probes.ablate.prompts import Prompt, PromptBatch, batches
from probes.features.attribution import decompose, log_odds_with
from probes.features.dictionary import LayerSAE
from probes.model.loading import HookedModel

#: Columns of :func:`top_vs_random`'s rows (before ``layer``), with their types.
COLUMNS = {
    "item_id": str, "half": int, "selection": str, "k": int, "draw": int, "features": str,
    "log_odds_clean": float, "correct_clean": float, "log_odds_ablated": float, "correct_ablated": float,
}  # fmt: skip


def halves(item_ids: Sequence[str], seed: int) -> dict[str, int]:
    """Each item's half (0 or 1), a seeded split of equal sizes (±1)."""
    order = sorted(item_ids)
    random.Random(seed).shuffle(order)
    return {item: index % 2 for index, item in enumerate(order)}


def _ranked(features: pd.DataFrame, items: Sequence[str]) -> tuple[list[int], list[int]]:
    """On ``items``: features by mean attribution, most distractor-pushing first (only those below 0),
    and every feature active on them."""
    chosen = features[features["item_id"].isin(set(items))]
    means = chosen.groupby("feature")["attribution"].sum() / max(len(items), 1)
    pushing = means[means < 0].sort_values(kind="stable")
    return [int(f) for f in pushing.index], sorted(int(f) for f in chosen["feature"].unique())


def _ablated(
    model: HookedModel, batch: PromptBatch, sae: LayerSAE, feature_sets: Sequence[Sequence[int]]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Log-odds and credit of ``batch`` with each set of features removed (clean first)."""
    hook = model.resid_hook(sae.layer)
    parts, _ = decompose(model, batch, sae)
    results = []
    for features in [(), *feature_sets]:
        remove = torch.zeros_like(parts.activations)
        if features:
            index = torch.tensor(list(features))
            remove[:, :, index] = parts.activations[:, :, index]
        log_odds, _, credit = log_odds_with(model, batch, hook, parts.residual(1.0, remove=remove))
        results.append((log_odds, credit))
    return results


def top_vs_random(
    model: HookedModel,
    prompts: Sequence[Prompt],
    sae: LayerSAE,
    features: pd.DataFrame,
    ks: Sequence[int] = (1, 2, 4, 8),
    draws: int = 10,
    seed: int = 0,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Per item: log-odds and credit clean and with the top-k or k random features ablated.

    Args:
        features: The feature rows of :func:`probes.features.attribution.attribute_features`
            for these prompts and this SAE (``item_id``, ``feature``, ``attribution``).
        ks: Numbers of features ablated together; a k above the ranking's length is skipped for
            ``top`` (there are not k distractor-pushing features) but kept for ``random``.
        draws: Random sets per k and half.

    Returns:
        ``item_id``, ``half``, ``selection`` (``top`` or ``random``), ``k``, ``draw``,
        ``features`` (space-separated), ``log_odds_clean``, ``correct_clean``,
        ``log_odds_ablated``, ``correct_ablated``, ``layer``.
    """
    split = halves([p.item.id for p in prompts], seed)
    records = []
    for half in (0, 1):
        ranking_items = [item for item, h in split.items() if h != half]
        top, pool = _ranked(features, ranking_items)
        sets: list[tuple[str, int, int, list[int]]] = []
        generator = random.Random(f"{seed}/{sae.layer}/{half}")
        for k in ks:
            if k <= len(top):
                sets.append(("top", k, 0, top[:k]))
            if k <= len(pool):
                sets.extend(("random", k, draw, sorted(generator.sample(pool, k))) for draw in range(draws))
        evaluated = [p for p in prompts if split[p.item.id] == half]
        for batch in batches(evaluated, batch_size, model.device):
            (clean, clean_credit), *ablated = _ablated(model, batch, sae, [s[3] for s in sets])
            for (selection, k, draw, chosen), (log_odds, credit) in zip(sets, ablated):
                for row, prompt in enumerate(batch.prompts):
                    records.append(
                        {
                            "item_id": prompt.item.id,
                            "half": half,
                            "selection": selection,
                            "k": k,
                            "draw": draw,
                            "features": " ".join(map(str, chosen)),
                            "log_odds_clean": float(clean[row]),
                            "correct_clean": float(clean_credit[row]),
                            "log_odds_ablated": float(log_odds[row]),
                            "correct_ablated": float(credit[row]),
                        }
                    )
    # no k fits (every k above the active features): no rows, but the table keeps its columns
    table = pd.DataFrame.from_records(records, columns=list(COLUMNS)).astype(COLUMNS)
    return table.assign(layer=sae.layer)
