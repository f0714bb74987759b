"""The forward passes that read every option of a batch of items with one prompt pass per item.

Each item's prompt runs once, in a batch of prompts (right-padded). The model keeps the
prompt's key/value cache; the first token of every option is read at the prompt's last
position, and the later tokens of a multi-token option are teacher-forced as a short
continuation of that cache (``option[:-1]``, read at each of its positions). The
continuations of all options of all items of a prompt batch run together, in batches of
continuation rows, each row on a copy of its item's cache.

This module only plans the passes (which tokens, which rows continue which prompt, what
to read where); :func:`probes.lens.read_options` runs them through the model's
:class:`~probes.backend.ResidualReader` and the lens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Read:
    """One answer token to read: of which item, option and token, at which row and position."""

    row: int
    position: int
    item: int
    option: int
    token: int
    target: int


@dataclass
class Pass:
    """One forward pass: right-padded rows of tokens and the reads it serves.

    For a continuation pass, ``prompt_rows[row]`` is the row of the prompt pass whose
    cache the row continues; a prompt pass has none.
    """

    tokens: list[list[int]] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    prompt_rows: list[int] = field(default_factory=list)


@dataclass
class PromptBatch:
    """A prompt pass and the continuation passes that run on its cache."""

    prompts: Pass
    continuations: list[Pass]


def plan(
    prompt_ids: Sequence[Sequence[int]], option_ids: Sequence[Sequence[Sequence[int]]], batch_size: int
) -> list[PromptBatch]:
    """Prompt batches of ``batch_size`` items (longest prompts first) and their continuations.

    ``prompt_ids[item]`` are an item's prompt tokens and ``option_ids[item][option]`` its
    options' tokens; every option is read token by token, every token exactly once.
    """
    order = sorted(range(len(prompt_ids)), key=lambda index: -len(prompt_ids[index]))
    batches = []
    for start in range(0, len(order), batch_size):
        prompts = Pass()
        continuations: list[Pass] = []
        for row, item in enumerate(order[start : start + batch_size]):
            prompt = list(prompt_ids[item])
            prompts.tokens.append(prompt)
            for option, ids in enumerate(option_ids[item]):
                prompts.reads.append(Read(row, len(prompt) - 1, item, option, 0, ids[0]))
                if len(ids) == 1:
                    continue
                if not continuations or len(continuations[-1].tokens) == batch_size:
                    continuations.append(Pass())
                current = continuations[-1]
                continuation_row = len(current.tokens)
                current.tokens.append(list(ids[:-1]))
                current.prompt_rows.append(row)
                current.reads.extend(
                    Read(continuation_row, j - 1, item, option, j, ids[j]) for j in range(1, len(ids))
                )
        batches.append(PromptBatch(prompts, continuations))
    return batches
