"""The forward passes that read every option of a batch of items with one prompt pass per item.

Each item's prompt runs once, in a batch of prompts (right-padded). The model keeps the
prompt's key/value cache; the first token of every option is read at the prompt's last
position, and the later tokens of a multi-token option are teacher-forced as a short
continuation of that cache (``option[:-1]``, read at each of its positions). Options that start
alike share continuations (``a b c`` is read on the continuation ``a b`` that ``a b d`` needs
anyway), and the lens reads each distinct (row, position) vector once, gathering every token
read there from one log-softmax.

Where the reader packs (:attr:`probes.model.readers.ContinuingReader.packs`), all continuations of an
item run in one row on its cache, each token seeing the prompt and its own continuation only
(``offsets`` restart at 0 for each): one copy of the prompt's cache per item, however many
options, and one continuation pass per prompt batch. Otherwise each continuation is a row of
its own, on its own copy of the item's cache, in passes of up to ``batch_size`` rows.

Prompts that share a long start (one-shot demonstrations, a task's shared instructions) can be
batched together: the batch notes how many tokens they share, and a reader that can continue a
continuation runs those tokens once and each prompt's rest on their cache.

This module only plans the passes (which tokens, which rows continue which prompt, what
to read where); :func:`probes.lenses.reading.read_options` runs them through the model's
:class:`~probes.model.readers.ResidualReader` and the lens.
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
    cache the row continues, and ``offsets[row][t]`` how far token ``t`` stands after the end of
    that prompt (restarting at 0 where a packed row starts its next continuation); a prompt pass
    has neither.
    """

    tokens: list[list[int]] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    prompt_rows: list[int] = field(default_factory=list)
    offsets: list[list[int]] = field(default_factory=list)

    @property
    def packed(self) -> bool:
        """Whether a row holds more than one continuation."""
        return any(offset != list(range(len(offset))) for offset in self.offsets)


@dataclass
class PromptBatch:
    """A prompt pass and the continuation passes that run on its cache.

    ``shared`` > 0: every prompt of the batch starts with the same ``shared`` tokens; a reader
    that can continue a continuation runs them once and the prompts' rest on their cache
    (positions of ``prompts.reads`` count in the whole prompt either way).
    """

    prompts: Pass
    continuations: list[Pass]
    shared: int = 0


#: Prompts of a batch that share at least this many leading tokens run them once (``plan``).
MIN_SHARED = 16


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return min(len(a), len(b))


def _groups(prompt_ids: Sequence[Sequence[int]], batch_size: int, min_shared: int) -> list[list[int]]:
    """Items in batches: runs of prompts that share ``min_shared`` leading tokens together (in
    token order, so neighbours share the most), the rest longest first as before."""
    if min_shared <= 0:
        order = sorted(range(len(prompt_ids)), key=lambda index: -len(prompt_ids[index]))
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    by_tokens = sorted(range(len(prompt_ids)), key=lambda index: list(prompt_ids[index]))
    runs: list[list[int]] = []
    for index in by_tokens:
        if runs and common_length(prompt_ids[runs[-1][0]], prompt_ids[index]) >= min_shared:
            runs[-1].append(index)
        else:
            runs.append([index])
    groups: list[list[int]] = []
    alone: list[int] = []
    for run in runs:
        for start in range(0, len(run), batch_size):
            chunk = run[start : start + batch_size]
            if len(chunk) > 1:
                groups.append(chunk)
            else:
                alone.extend(chunk)
    alone.sort(key=lambda index: -len(prompt_ids[index]))
    groups += [alone[start : start + batch_size] for start in range(0, len(alone), batch_size)]
    return sorted(groups, key=lambda group: -max(len(prompt_ids[index]) for index in group))


def _shared_length(prompts: Sequence[Sequence[int]], min_shared: int) -> int:
    """Leading tokens every prompt shares, less one so each keeps a token of its own (0 if < min)."""
    if len(prompts) < 2 or min_shared <= 0:
        return 0
    shared = min(common_length(prompts[0], prompt) for prompt in prompts[1:])
    shared = min(shared, *(len(prompt) - 1 for prompt in prompts))
    return shared if shared >= min_shared else 0


def _continuation_rows(options: Sequence[Sequence[int]]) -> tuple[list[list[int]], list[int]]:
    """An item's continuation rows and, for each option, the row that reads it (-1: one token).

    An option's inputs are its tokens but the last; one row serves every option whose inputs
    start the row's (options ``a b c`` and ``a b`` share the row ``a b``; ``a d`` needs its own).

    An option's token ``j`` (``j >= 1``) is read after ``prompt + option[:j]``: any row that
    starts with ``option[:j]`` gives the same vector, so options that share leading tokens share
    their rows' positions.
    """
    inputs = [list(ids[:-1]) for ids in options]
    rows: list[list[int]] = []
    owner = []
    for tokens in inputs:
        if not tokens:
            owner.append(-1)
            continue
        longer = [other for other in inputs if len(other) > len(tokens) and other[: len(tokens)] == tokens]
        row = max(longer, key=len) if longer else tokens
        if row not in rows:
            rows.append(row)
        owner.append(rows.index(row))
    return rows, owner


def _pass_rows(rows: list[list[int]], pack: bool) -> list[tuple[list[int], list[int], list[int]]]:
    """An item's continuation rows as forward-pass rows: ``(tokens, offsets, starts)``, where
    ``starts[k]`` is where continuation ``k`` begins in its row (``-1``: in another row).
    Packed: one row of every continuation; else one row each."""
    if not rows:
        return []
    if not pack:
        return [
            (row, list(range(len(row))), [0 if other == index else -1 for other in range(len(rows))])
            for index, row in enumerate(rows)
        ]
    starts = [sum(len(row) for row in rows[:index]) for index in range(len(rows))]
    return [([t for row in rows for t in row], [o for row in rows for o in range(len(row))], starts)]


def plan(
    prompt_ids: Sequence[Sequence[int]],
    option_ids: Sequence[Sequence[Sequence[int]]],
    batch_size: int,
    min_shared: int = 0,
    pack: bool = False,
) -> list[PromptBatch]:
    """Prompt batches of ``batch_size`` items (longest prompts first) and their continuations.

    ``prompt_ids[item]`` are an item's prompt tokens and ``option_ids[item][option]`` its
    options' tokens; every option is read token by token, every token exactly once. Options
    that share leading tokens share continuations. With ``pack``, all continuations of an item
    share one row (a reader that packs); else each has a row. With ``min_shared`` > 0, prompts
    that share at least that many leading tokens are batched together and the batch notes how
    many they share (:attr:`PromptBatch.shared`).
    """
    batches = []
    for group in _groups(prompt_ids, batch_size, min_shared):
        prompts = Pass()
        continuations: list[Pass] = []
        for row, item in enumerate(group):
            prompt = list(prompt_ids[item])
            prompts.tokens.append(prompt)
            rows, owner = _continuation_rows(option_ids[item])
            placed: list[tuple[Pass, int, int]] = [(prompts, -1, -1)] * len(rows)  # pass, row, start
            for tokens, offsets, starts in _pass_rows(rows, pack):
                if not continuations or len(continuations[-1].tokens) == batch_size:
                    continuations.append(Pass())
                current = continuations[-1]
                for index, begin in enumerate(starts):
                    if begin >= 0:
                        placed[index] = (current, len(current.tokens), begin)
                current.tokens.append(tokens)
                current.offsets.append(offsets)
                current.prompt_rows.append(row)
            for option, ids in enumerate(option_ids[item]):
                prompts.reads.append(Read(row, len(prompt) - 1, item, option, 0, ids[0]))
                if owner[option] < 0:
                    continue
                current, continuation_row, begin = placed[owner[option]]
                current.reads.extend(
                    Read(continuation_row, begin + j - 1, item, option, j, ids[j]) for j in range(1, len(ids))
                )
        batches.append(PromptBatch(prompts, continuations, _shared_length(prompts.tokens, min_shared)))
    return batches
