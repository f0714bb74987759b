"""Items as padded prompt batches read at the answer position, and one hooked forward pass over them.

The analyses of :mod:`probes.ablate` read the model's own output at the position
that predicts the answer (the prompt's last token), for the **first token** of
each option: the log-odds ``logit(true) - logit(distractor)`` there is what
attribution decomposes, ablation moves and patching restores. An answer of
several tokens is represented by its first token (rows say so in
``answer_tokens``); items whose true and distractor answers share a first token
cannot be told apart this way and are refused with the reason.

Batches are right-padded. With causal attention and right padding, every real
position sees only real tokens, so a batch gives the numbers of one prompt at a
time (tests check it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.errors import InvalidItemError, ProbesError
from probes.lenses.reading import encode_item, right_padded
from probes.model.backend import HookFunction
from probes.model.loading import HookedModel
from probes.tasks.items import Item

#: What the analyses read of a multi-token answer.
FIRST_TOKEN = "first"


@dataclass(frozen=True)
class Prompt:
    """One item as the analyses read it: prompt tokens and the first token of every option."""

    item: Item
    tokens: list[int]
    option_tokens: list[int]
    #: ``"single"`` when every option is one token, else :data:`FIRST_TOKEN`.
    answer_tokens: str

    @property
    def answer_position(self) -> int:
        """Index of the prompt's last token, whose output predicts the answer."""
        return len(self.tokens) - 1

    @property
    def true_token(self) -> int:
        """First token of the true answer."""
        return self.option_tokens[self.item.true_index]

    @property
    def distractor_token(self) -> int:
        """First token of the distractor answer."""
        return self.option_tokens[self.item.distractor_index]


def encode_prompt(item: Item, model: HookedModel) -> Prompt:
    """Tokenize ``item`` for the analyses (checks as the lens does, plus distinct first tokens).

    Raises:
        InvalidItemError: the item cannot be scored, or its true and distractor answers
            share their first token.
    """
    encoded = encode_item(item, model.tokenizer, model.n_ctx)
    firsts = [ids[0] for ids in encoded.option_ids]
    if firsts[item.true_index] == firsts[item.distractor_index]:
        raise InvalidItemError(
            f"item {item.id!r}: true answer {item.true_answer!r} and distractor "
            f"{item.distractor_answer!r} start with the same token, and attribution, ablation and "
            "patching read first tokens only; reword one answer so their first tokens differ."
        )
    single = all(len(ids) == 1 for ids in encoded.option_ids)
    return Prompt(item, encoded.prompt_ids, firsts, "single" if single else FIRST_TOKEN)


def encode_prompts(items: Sequence[Item], model: HookedModel) -> list[Prompt]:
    """Every item encoded with :func:`encode_prompt`."""
    return [encode_prompt(item, model) for item in items]


@dataclass(frozen=True)
class PromptBatch:
    """Right-padded tokens of a few prompts, with their answer positions and answer tokens."""

    prompts: list[Prompt]
    input_ids: Int[torch.Tensor, "batch pos"]
    attention_mask: Int[torch.Tensor, "batch pos"]
    answer_positions: Int[torch.Tensor, " batch"]

    @property
    def lengths(self) -> list[int]:
        """Real (unpadded) length of each row."""
        return [len(p.tokens) for p in self.prompts]

    @classmethod
    def of(cls, prompts: Sequence[Prompt], device: torch.device | str = "cpu") -> PromptBatch:
        """Pad ``prompts`` on the right into one batch on ``device``."""
        input_ids, attention_mask = right_padded([p.tokens for p in prompts])
        positions = torch.tensor([p.answer_position for p in prompts])
        return cls(list(prompts), input_ids.to(device), attention_mask.to(device), positions.to(device))


def batches(prompts: Sequence[Prompt], batch_size: int, device: torch.device | str) -> Iterator[PromptBatch]:
    """``prompts`` in order, ``batch_size`` at a time."""
    if batch_size < 1:
        raise ProbesError(f"batch size {batch_size} must be at least 1.")
    for start in range(0, len(prompts), batch_size):
        yield PromptBatch.of(prompts[start : start + batch_size], device)


@dataclass(frozen=True)
class AnswerReadout:
    """The model's output at each row's answer position: logits of every option's first token."""

    #: ``option_logits[row][option]``; rows may have different option counts.
    option_logits: list[Float[torch.Tensor, " option"]]
    prompts: list[Prompt]

    @cached_property
    def log_odds(self) -> Float[torch.Tensor, " batch"]:
        """``logit(true) - logit(distractor)`` at the answer position (= log-prob difference)."""
        return torch.stack(
            [
                logits[p.item.true_index] - logits[p.item.distractor_index]
                for logits, p in zip(self.option_logits, self.prompts)
            ]
        )

    @cached_property
    def correct(self) -> torch.Tensor:
        """The true answer's credit per row: 1 if its first token alone has the highest logit
        among the options, 1/k if it ties with k − 1 others, 0 otherwise (a tie is half right,
        as in :func:`probes.analysis.metrics.option_credit`)."""
        from probes.analysis.metrics import option_credit

        return torch.stack(
            [
                option_credit(logits.unsqueeze(0), p.item.true_index)[0]
                for logits, p in zip(self.option_logits, self.prompts)
            ]
        )


def read_answers(logits: Float[torch.Tensor, "batch pos vocab"], batch: PromptBatch) -> AnswerReadout:
    """The option logits at each row's answer position."""
    rows = logits[torch.arange(len(batch.prompts), device=logits.device), batch.answer_positions]
    option_logits = [
        rows[row, torch.tensor(p.option_tokens, device=rows.device)].float().cpu()
        for row, p in enumerate(batch.prompts)
    ]
    return AnswerReadout(option_logits, batch.prompts)


def run(
    model: HookedModel,
    batch: PromptBatch,
    hooks: Sequence[tuple[str, HookFunction]] = (),
    cache_names: Sequence[str] = (),
    answer_only: bool = False,
) -> tuple[AnswerReadout, dict[str, torch.Tensor]]:
    """One forward pass of ``batch`` with hooks; the answer readout and a cache.

    Args:
        model: The hooked model.
        batch: Prompts to run.
        hooks: ``(hook point, function)`` pairs that may change activations.
        cache_names: Hook points whose activations to return (on the model's device),
            recorded after ``hooks`` ran.
        answer_only: Keep each cached activation at each row's answer position only
            (``batch ...``) instead of the whole sequence (``batch pos ...``).
    """
    cache: dict[str, torch.Tensor] = {}
    rows = torch.arange(len(batch.prompts), device=batch.answer_positions.device)

    def keeper(name: str) -> HookFunction:
        def keep(activation: torch.Tensor, hook: Any) -> None:
            # Under the name asked for, not the alias's target; a copy, not a view of the whole.
            kept = activation[rows, batch.answer_positions] if answer_only else activation
            cache[name] = kept.detach()

        return keep

    unknown = sorted(({name for name, _ in hooks} | set(cache_names)) - model.hook_points())
    if unknown:
        raise ProbesError(
            f"{model.name} has no hook points {unknown}, which these analyses need; its architecture "
            "is not supported by probes.ablate yet (model.hook_points() lists the ones it has)."
        )
    forward_hooks = [*hooks, *((name, keeper(name)) for name in cache_names)]
    with torch.inference_mode():
        logits = model.run_with_hooks(batch.input_ids, batch.attention_mask, forward_hooks)
    return read_answers(logits, batch), cache
