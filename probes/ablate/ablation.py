"""Zero, mean and resample ablation of heads, MLPs and blocks, and the top-k vs random-k search.

An ablation replaces a component's output at every position of the prompt:

* ``zero``: by zeros (a head's output without the attention's output bias);
* ``mean``: by its mean over the reference items (the task's items by default) at the same
  position *counted back from the answer position*: prompts of one task share their ending,
  and the answer position is where they are read. Where fewer items reach that far back,
  the mean is over those that do. The first position (BOS, attention sink) is replaced by the
  mean of first positions only, never by a mid-prompt value;
* ``resample``: by its value on another item of the reference set (a seeded derangement),
  aligned the same way (first with first); positions the donor prompt does not reach take the
  mean.

Mean and resample ablation remove only what varies between items: a head that writes the same
vector on every item (always pushing one fixed token) keeps that push under mean ablation, and
only zero ablation removes it. Use the method that matches the question.

The change in the log-odds of true over distractor at the answer position, and in accuracy
(the true answer's first token above every other option's), is what is reported.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch

from probes.ablate.components import Component
from probes.ablate.prompts import HookFunction, Prompt, PromptBatch, batches, run
from probes.errors import ProbesError
from probes.model.loading import HookedModel

Method = Literal["zero", "mean", "resample"]

#: Ablation methods, in the order the help text lists them.
METHODS: tuple[str, ...] = ("zero", "mean", "resample")


class AblationError(ProbesError):
    """An ablation that cannot run as asked (unknown method, too few reference items ...)."""


@dataclass
class Reference:
    """Activations of the reference items at the hook points an ablation replaces.

    The first position of a prompt (a BOS token, or the first token, where attention sinks
    form) is kept apart: it is replaced only by first positions. Every other position is
    aligned counting back from the answer position.
    """

    #: ``activations[name][i]``: hook ``name``'s activation on reference prompt ``i`` (pos, ...).
    activations: dict[str, list[torch.Tensor]]
    #: ``first[name]``: mean over reference prompts of their first position.
    first: dict[str, torch.Tensor]
    #: ``from_end[name][offset]``: mean at ``offset`` positions before the answer position,
    #: over the references' positions after the first.
    from_end: dict[str, torch.Tensor]

    @classmethod
    def collect(
        cls, model: HookedModel, prompts: Sequence[Prompt], names: Sequence[str], batch_size: int = 8
    ) -> Reference:
        """Run the reference prompts once and keep their activations at ``names``."""
        activations: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for batch in batches(prompts, batch_size, model.device):
            _, cache = run(model, batch, cache_names=list(names))
            for name in names:
                for row, length in enumerate(batch.lengths):
                    activations[name].append(cache[name][row, :length].cpu())
        return cls.of(activations)

    @classmethod
    def of(cls, activations: dict[str, list[torch.Tensor]]) -> Reference:
        """A reference from activations already collected (one ``(pos, ...)`` tensor per prompt)."""
        first = {name: torch.stack([v[0] for v in values]).mean(0) for name, values in activations.items()}
        from_end = {name: _means_from_end([v[1:] for v in values]) for name, values in activations.items()}
        return cls(activations, first, from_end)

    def row(self, name: str, length: int, width: int, donor: int | None = None) -> torch.Tensor:
        """The replacement of a row of ``length`` real positions (padded to ``width``).

        From reference prompt ``donor`` where it reaches, else from the means.
        """
        first, from_end = self.first[name], self.from_end[name]
        values = None if donor is None else self.activations[name][donor]
        row = torch.zeros(width, *first.shape, dtype=first.dtype)
        row[0] = first if values is None else values[0]
        rest = None if values is None else values[1:]
        for position in range(1, length):
            offset = length - 1 - position
            if rest is not None and offset < len(rest):
                row[position] = rest[len(rest) - 1 - offset]
            elif offset < len(from_end):
                row[position] = from_end[offset]
            else:  # longer than every reference: the mean of their farthest position
                row[position] = from_end[-1] if len(from_end) else first
        return row


def _means_from_end(values: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over prompts at each offset before the answer position (offset 0 = answer position)."""
    longest = max(len(v) for v in values)
    total = torch.zeros(longest, *values[0].shape[1:], dtype=torch.float64)
    count = torch.zeros(longest, dtype=torch.float64)
    for value in values:
        total[: len(value)] += value.flip(0).double()
        count[: len(value)] += 1
    return (total / count.clamp(min=1).view(-1, *([1] * (total.dim() - 1)))).to(values[0].dtype)


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation of ``range(n)`` without fixed points (``donor[i] != i``), ``n >= 2``."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    donors = [0] * n
    for i, item in enumerate(order):
        donors[item] = order[(i + 1) % n]
    return donors


def _replacement(
    method: Method, name: str, batch: PromptBatch, reference: Reference, donors: Sequence[int] | None
) -> torch.Tensor:
    """What the hook ``name`` takes on each row of ``batch`` (the padded positions do not matter)."""
    width = batch.input_ids.shape[1]
    rows = [
        reference.row(name, length, width, donors[row] if method == "resample" and donors else None)
        for row, length in enumerate(batch.lengths)
    ]
    return torch.stack(rows).to(batch.input_ids.device)


def ablation_hooks(
    model: HookedModel,
    components: Sequence[Component],
    method: Method,
    batch: PromptBatch,
    reference: Reference | None = None,
    donors: Sequence[int] | None = None,
) -> list[tuple[str, HookFunction]]:
    """Hooks that ablate ``components`` on ``batch`` (one hook per hook point)."""
    if method not in METHODS:
        raise AblationError(f"ablation method {method!r} is unknown; use one of {list(METHODS)}.")
    heads: dict[str, list[int]] = {}
    whole: set[str] = set()
    for component in components:
        if component.kind == "head":
            heads.setdefault(model.head_hook(component.layer), []).append(int(component.head))  # type: ignore[arg-type]
        else:
            whole.update(component.hook_names(model))
    hooks: list[tuple[str, HookFunction]] = []
    for name in sorted(set(heads) | whole):
        index = None if name in whole else torch.tensor(sorted(set(heads[name])))
        value = None
        if method != "zero":
            assert reference is not None, "mean and resample ablation need a reference"
            value = _replacement(method, name, batch, reference, donors)

        def hook(
            activation: torch.Tensor, hook: object, index: torch.Tensor | None = index, value=value
        ) -> torch.Tensor:
            ablated = activation.clone()
            new = torch.zeros_like(activation) if value is None else value.to(activation.dtype)
            if index is None:
                ablated[:] = new
            else:
                ablated[:, :, index] = new[:, :, index]
            return ablated

        hooks.append((name, hook))
    return hooks


def clean_answers(model: HookedModel, prompts: Sequence[Prompt], batch_size: int = 8) -> pd.DataFrame:
    """Per item, the clean log-odds and correctness at the answer position."""
    return _answers(model, prompts, lambda batch, start: [], batch_size, "clean")


def ablate(
    model: HookedModel,
    prompts: Sequence[Prompt],
    components: Sequence[Component],
    method: Method = "mean",
    reference: Reference | None = None,
    seed: int = 0,
    batch_size: int = 8,
    clean: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per item, log-odds and correctness with and without ``components`` ablated.

    Args:
        model: The hooked model.
        prompts: Encoded items (:func:`probes.ablate.prompts.encode_prompts`).
        components: What to ablate; none gives the clean numbers twice.
        method: ``zero``, ``mean`` or ``resample``.
        reference: Activations to take means and donors from: the prompts' own when omitted;
            for ``resample``, one reference item per prompt.
        seed: Seed of the resample donors.
        batch_size: Prompts per forward pass.
        clean: :func:`clean_answers` of the prompts, when already computed.

    Returns:
        ``item_id``, ``log_odds_clean``, ``correct_clean``, ``log_odds_ablated``,
        ``correct_ablated``, ``answer_tokens``: one row per prompt.
    """
    if method not in METHODS:
        raise AblationError(f"ablation method {method!r} is unknown; use one of {list(METHODS)}.")
    for component in components:
        component.check(model)
    names = sorted({name for c in components for name in c.hook_names(model)})
    if method != "zero" and reference is None and names:
        reference = Reference.collect(model, prompts, names, batch_size)
    donors: list[int] | None = None
    if method == "resample" and names:
        assert reference is not None
        count = len(reference.activations[names[0]])
        if count < 2 or count != len(prompts):
            raise AblationError(
                f"resample ablation needs one reference item per ablated item and at least 2 (got "
                f"{count} for {len(prompts)}); use mean or zero ablation, or give more items."
            )
        donors = derangement(count, seed)

    def hooks(batch: PromptBatch, start: int) -> list[tuple[str, HookFunction]]:
        if not components:
            return []
        batch_donors = donors[start : start + len(batch.prompts)] if donors else None
        return ablation_hooks(model, components, method, batch, reference, batch_donors)

    clean = clean_answers(model, prompts, batch_size) if clean is None else clean
    ablated = _answers(model, prompts, hooks, batch_size, "ablated")
    return clean.assign(
        log_odds_ablated=ablated["log_odds_ablated"].to_numpy(),
        correct_ablated=ablated["correct_ablated"].to_numpy(),
    )


def _answers(
    model: HookedModel,
    prompts: Sequence[Prompt],
    hooks: Callable[[PromptBatch, int], list[tuple[str, HookFunction]]],
    batch_size: int,
    suffix: str,
) -> pd.DataFrame:
    records = []
    start = 0
    for batch in batches(prompts, batch_size, model.device):
        readout, _ = run(model, batch, hooks(batch, start))
        log_odds, correct = readout.log_odds, readout.correct
        for row, prompt in enumerate(batch.prompts):
            records.append(
                {
                    "item_id": prompt.item.id,
                    f"log_odds_{suffix}": float(log_odds[row]),
                    f"correct_{suffix}": float(correct[row]),
                    "answer_tokens": prompt.answer_tokens,
                }
            )
        start += len(batch.prompts)
    return pd.DataFrame.from_records(records)


def ranked_search(
    model: HookedModel,
    prompts: Sequence[Prompt],
    ranking: Sequence[Component],
    ks: Sequence[int],
    draws: int = 5,
    method: Method = "mean",
    seed: int = 0,
    batch_size: int = 8,
    reference: Reference | None = None,
    clean: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Ablate the first ``k`` components of ``ranking`` together, and ``draws`` random sets of ``k``.

    The random sets are drawn from the same pool as the ranking (all heads, usually), with
    seeds ``seed, seed + 1, ...``; the top-k set is the first ``k`` of ``ranking``.
    ``reference`` (covering every ranked component's hook points) and ``clean``
    (:func:`clean_answers`) are collected here when not given.

    Returns:
        The rows of :func:`ablate` for every set, with ``selection`` (``top`` or ``random``),
        ``k``, ``draw`` (0 for the top set) and ``components`` (labels joined by spaces).
    """
    pool = list(ranking)
    fitting = sorted({k for k in ks if 0 < k <= len(pool)})
    if not fitting:
        raise AblationError(f"no k of {list(ks)} fits the {len(pool)} ranked components; use 1..{len(pool)}.")
    if method != "zero" and reference is None:
        names = sorted({name for c in pool for name in c.hook_names(model)})
        reference = Reference.collect(model, prompts, names, batch_size)
    sets: list[tuple[str, int, int, list[Component]]] = []
    for k in fitting:
        sets.append(("top", k, 0, pool[:k]))
        for draw in range(draws if k < len(pool) else 0):  # k of k: the top set is the only one
            sets.append(("random", k, draw, random.Random(seed + draw * 1009 + k).sample(pool, k)))
    clean = clean_answers(model, prompts, batch_size) if clean is None else clean
    tables = []
    for selection, k, draw, chosen in sets:
        table = ablate(model, prompts, chosen, method, reference, seed + draw, batch_size, clean)
        labels = " ".join(c.label for c in sorted(chosen))
        tables.append(table.assign(selection=selection, k=k, draw=draw, components=labels, method=method))
    return pd.concat(tables, ignore_index=True)
