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

The sign is the item's: where the twin's own true answer is the item's distractor (in
``organism_negation`` the twin "X is" asks for the value the negated item must avoid), the twin's
log-odds is negative and "restored" measures how much of the move *towards the distractor* a
patch carries, i.e. where the item's run differs from the twin's.

Positions: ``answer`` (default) patches the answer position only, which aligns any pair
(both prompts end where the answer starts); ``suffix`` patches the longest run of identical
tokens the two prompts end with (the whole twin when it is the item less a prefix, as "X is" of
"not X is"), plus the first position when both start with the tokenizer's BOS token; ``all``
patches every position and needs prompts of the same length. Pairs that cannot be aligned are
returned in a table of their own, with the reason, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch

from probes.ablate.prompts import HookFunction, Prompt, PromptBatch, encode_prompt, run
from probes.errors import InvalidItemError, ProbesError
from probes.model.loading import HookedModel
from probes.tasks.items import Item

Positions = Literal["answer", "suffix", "all"]

#: The ways of choosing the patched positions.
POSITIONS: tuple[str, ...] = ("answer", "suffix", "all")

#: The variant whose items are the twins.
TWIN_VARIANT = "no_distractor"


#: Columns of :func:`patch`'s table.
COLUMNS = [
    "item_id", "site", "layer", "head", "component", "log_odds_clean", "log_odds_twin", "log_odds_patched",
    "restored", "positions", "patched_positions", "answer_tokens",
]  # fmt: skip


class PatchingError(ProbesError):
    """Patching that cannot run as asked."""


@dataclass(frozen=True)
class Pair:
    """An item and its twin (the twin's prompt, read on the item's own answer tokens), with the
    positions of the item that take the twin's activations at the matching twin positions."""

    item: Prompt
    twin: Prompt
    item_positions: tuple[int, ...]
    twin_positions: tuple[int, ...]


def aligned_positions(
    item_tokens: Sequence[int], twin_tokens: Sequence[int], positions: Positions, bos: int | None
) -> tuple[tuple[int, ...], tuple[int, ...]] | str:
    """Matching (item, twin) positions for a positions mode, or why there are none."""
    item_length, twin_length = len(item_tokens), len(twin_tokens)
    if positions == "answer":
        return (item_length - 1,), (twin_length - 1,)
    if positions == "all":
        if item_length != twin_length:
            return (
                f"positions='all' needs equal lengths; item has {item_length} tokens, twin {twin_length} "
                "(positions='answer' aligns them)"
            )
        return tuple(range(item_length)), tuple(range(twin_length))
    shared = 0
    while shared < min(item_length, twin_length) and item_tokens[-1 - shared] == twin_tokens[-1 - shared]:
        shared += 1
    if shared == 0:
        return "positions='suffix': the prompts end in different tokens, so no suffix is shared"
    item_positions = list(range(item_length - shared, item_length))
    twin_positions = list(range(twin_length - shared, twin_length))
    starts_with_bos = bos is not None and item_tokens[0] == twin_tokens[0] == bos
    if starts_with_bos and item_positions[0] > 0 and twin_positions[0] > 0:
        item_positions.insert(0, 0)
        twin_positions.insert(0, 0)
    return tuple(item_positions), tuple(twin_positions)


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
        if set(twin.options) != set(item.options):
            reason = f"twin's options {list(twin.options)} differ from the item's {list(item.options)}"
            unpaired.append({"item_id": item.id, "reason": reason})
            continue
        try:
            twin_tokens = encode_prompt(twin, model).tokens
        except InvalidItemError as err:
            unpaired.append({"item_id": item.id, "reason": f"twin cannot be read: {err}"})
            continue
        aligned = aligned_positions(prompt.tokens, twin_tokens, positions, model.tokenizer.bos_token_id)
        if isinstance(aligned, str):
            unpaired.append({"item_id": item.id, "reason": aligned})
            continue
        twin_prompt = Prompt(item, twin_tokens, prompt.option_tokens, prompt.answer_tokens)
        pairs.append(Pair(prompt, twin_prompt, *aligned))
    return pairs, pd.DataFrame(unpaired, columns=["item_id", "reason"])


def _patch(source: torch.Tensor, pairs: Sequence[Pair], head: int | None) -> HookFunction:
    """A hook writing the twin's activation (``source``, one row per pair) into the item's run."""
    index = [(row, list(p.item_positions), list(p.twin_positions)) for row, p in enumerate(pairs)]

    def hook(activation: torch.Tensor, hook: object) -> torch.Tensor:
        patched = activation.clone()
        for row, item_positions, twin_positions in index:
            if head is None:
                patched[row, item_positions] = source[row, twin_positions].to(patched.dtype)
            else:
                patched[row, item_positions, head] = source[row, twin_positions, head].to(patched.dtype)
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

    Args:
        model: The hooked model.
        pairs: Items and twins from :func:`pair_items` (their positions mode decides what is patched).
        positions: The mode the pairs were made for (recorded in the rows).
        heads: Also patch each head's output, not only the residual stream.
        batch_size: Pairs per forward pass.

    Returns:
        One row per (item, site), columns :data:`COLUMNS`.
    """
    n_layers, n_heads = model.n_layers, model.n_heads
    sites: list[tuple[str, int, int | None, str]] = [
        ("resid", layer, None, name) for layer, name in enumerate(model.resid_hook_names)
    ]
    if heads:
        sites += [
            ("head", layer, head, model.head_hook(layer))
            for layer in range(n_layers)
            for head in range(n_heads)
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
            patched, _ = run(model, item_batch, [(name, _patch(cache[name], chunk, head))])
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
                        "patched_positions": len(pair.item_positions),
                        "answer_tokens": pair.item.answer_tokens,
                    }
                )
    table = pd.DataFrame.from_records(records, columns=COLUMNS)
    return table.astype({"layer": "Int64", "head": "Int64"})
