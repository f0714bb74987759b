"""Activation patching from an item's ``no_distractor`` twin into the item, per layer and per head.

For each item and its twin (the same case with the distractor cue removed: the
``no_distractor`` variant, matched by item id), the model runs on the item while one
activation is taken from the twin's run: the residual stream entering block ``l`` (layer
``l`` in the lens's numbering: 0 = embeddings, ``n_layers`` = the last block's output), or
one head's output (``hook_z``). The item's log-odds (its own true answer over its own
distractor, first tokens) is read in the clean item run, the twin run and the patched run;

    restored = (patched - clean) / (twin - clean)

is the share of the log-odds gap the patched activation carries. Patching the last layer's
residual at the answer position restores the twin's log-odds exactly.

Positions: ``answer`` (default) patches the answer position only, which aligns any pair
(both prompts end where the answer starts); ``suffix`` patches every position the two prompts
share counted back from the answer position (the whole twin when the twin is the item less a
prefix, as "X is" of "not X is"); ``all`` patches every position and needs prompts of the same
length. Pairs that cannot be aligned are returned in a table of their own, with the reason,
never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch

from probes.ablate.components import head_hook
from probes.ablate.prompts import HookFunction, Prompt, PromptBatch, encode_prompt, run
from probes.errors import InvalidItemError, ProbesError
from probes.models import HookedModel
from probes.tasks.items import Item

Positions = Literal["answer", "suffix", "all"]

#: The ways of choosing the patched positions.
POSITIONS: tuple[str, ...] = ("answer", "suffix", "all")

#: The variant whose items are the twins.
TWIN_VARIANT = "no_distractor"


class PatchingError(ProbesError):
    """Patching that cannot run as asked."""


@dataclass(frozen=True)
class Pair:
    """An item and its twin: the twin's prompt, read on the item's own answer tokens."""

    item: Prompt
    twin: Prompt


def pair_items(
    model: HookedModel, items: Sequence[Item], twins: Sequence[Item], positions: Positions = "answer"
) -> tuple[list[Pair], pd.DataFrame]:
    """Match each item with the twin of the same id; the pairs, and the unpaired with reasons."""
    if positions not in POSITIONS:
        raise PatchingError(f"positions {positions!r} is unknown; use one of {list(POSITIONS)}.")
    by_id = {twin.id: twin for twin in twins}
    pairs: list[Pair] = []
    unpaired: list[dict[str, str]] = []
    for item in items:
        prompt = encode_prompt(item, model)
        twin = by_id.get(item.id)
        if twin is None:
            unpaired.append({"item_id": item.id, "reason": f"no {TWIN_VARIANT} twin with this id"})
            continue
        try:
            twin_tokens = encode_prompt(twin, model).tokens
        except InvalidItemError as err:
            unpaired.append({"item_id": item.id, "reason": f"twin cannot be read: {err}"})
            continue
        if positions == "all" and len(twin_tokens) != len(prompt.tokens):
            unpaired.append(
                {
                    "item_id": item.id,
                    "reason": f"positions='all' needs equal lengths; item has {len(prompt.tokens)} "
                    f"tokens, twin {len(twin_tokens)} (positions='answer' aligns them)",
                }
            )
            continue
        pairs.append(Pair(prompt, Prompt(item, twin_tokens, prompt.option_tokens, prompt.answer_tokens)))
    return pairs, pd.DataFrame(unpaired, columns=["item_id", "reason"])


def residual_hook(layer: int, n_layers: int) -> str:
    """The hook point of layer ``layer`` of the residual stream (0 = embeddings)."""
    return f"blocks.{layer}.hook_resid_pre" if layer < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"


def _patch(
    source: torch.Tensor,
    item_batch: PromptBatch,
    twin_batch: PromptBatch,
    positions: Positions,
    head: int | None,
) -> HookFunction:
    """A hook writing the twin's activation (``source``) into the item's run."""
    spans = []  # per row: (item positions, twin positions), aligned at the answer position
    for item_length, twin_length in zip(item_batch.lengths, twin_batch.lengths):
        shared = 1 if positions == "answer" else min(item_length, twin_length)
        spans.append((slice(item_length - shared, item_length), slice(twin_length - shared, twin_length)))

    def hook(activation: torch.Tensor, hook: object) -> torch.Tensor:
        patched = activation.clone()
        for row, (item_span, twin_span) in enumerate(spans):
            if head is None:
                patched[row, item_span] = source[row, twin_span].to(patched.dtype)
            else:
                patched[row, item_span, head] = source[row, twin_span, head].to(patched.dtype)
        return patched

    return hook


def patch(
    model: HookedModel,
    pairs: Sequence[Pair],
    positions: Positions = "answer",
    heads: bool = True,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Per pair and site, the item's log-odds clean, in the twin and patched from the twin.

    Returns:
        One row per (item, site): ``item_id``, ``site`` (``resid`` or ``head``), ``layer``,
        ``head``, ``component``, ``log_odds_clean``, ``log_odds_twin``, ``log_odds_patched``,
        ``restored``, ``positions``, ``answer_tokens``.
    """
    n_layers, n_heads = model.n_layers, int(model.bridge.cfg.n_heads)
    sites: list[tuple[str, int, int | None, str]] = [
        ("resid", layer, None, residual_hook(layer, n_layers)) for layer in range(n_layers + 1)
    ]
    if heads:
        sites += [
            ("head", layer, head, head_hook(layer)) for layer in range(n_layers) for head in range(n_heads)
        ]
    names = sorted({name for *_, name in sites})
    records = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        item_batch = PromptBatch.of([p.item for p in chunk], model.device)
        twin_batch = PromptBatch.of([p.twin for p in chunk], model.device)
        twin, cache = run(model, twin_batch, cache_names=names)
        clean, _ = run(model, item_batch)
        for site, layer, head, name in sites:
            patched, _ = run(
                model, item_batch, [(name, _patch(cache[name], item_batch, twin_batch, positions, head))]
            )
            component = f"L{layer}H{head}" if site == "head" else f"resid {layer}"
            for row, pair in enumerate(chunk):
                base, target, value = (float(r.log_odds[row]) for r in (clean, twin, patched))
                gap = target - base
                records.append(
                    {
                        "item_id": pair.item.item.id,
                        "site": site,
                        "layer": layer,
                        "head": head,
                        "component": component,
                        "log_odds_clean": base,
                        "log_odds_twin": target,
                        "log_odds_patched": value,
                        "restored": (value - base) / gap if gap != 0 else float("nan"),
                        "positions": positions,
                        "answer_tokens": pair.item.answer_tokens,
                    }
                )
    table = pd.DataFrame.from_records(records)
    return table.astype({"layer": "Int64", "head": "Int64"}) if len(table) else table
