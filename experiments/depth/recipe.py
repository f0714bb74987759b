"""What the depth ladder learns: its task, vocabulary, tokenizer, training config and batches.

Every rung of ``experiments/depth/train.py`` is trained on this recipe; only its shape differs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from jaxtyping import Int
from transformers import GPTNeoXForCausalLM, PreTrainedTokenizerFast

from probes.builtin.training import Schedule
from probes.builtin.word_tokenizer import word_tokenizer
from probes.tasks import Item, get_task
from probes.tasks.generators import pointer_chase, pointer_chase16
from probes.tasks.organism_world import SPECIAL_TOKENS

#: The task the ladder learns: pointer chasing over 16 node names, k = 1 … 6.
TASK = pointer_chase16.NAME

#: The task's module (node names, largest k, case writer).
CHASE = pointer_chase16

#: Longest sequence a rung accepts (a k = 16 case with its follow-ups is about 190 tokens).
MAX_POSITIONS = 256


@dataclass(frozen=True)
class TrainingConfig(Schedule):
    """Everything that fixes a rung's training except its shape and the thread count."""

    #: The most optimiser steps (the stopping rule below usually ends training sooner).
    steps: int = 30000
    #: Sequences per step.
    batch_size: int = 48
    #: Steps of linear warm-up.
    warmup_steps: int = 50
    #: The learning rate stays at its peak (the curriculum needs it).
    final_learning_rate_share: float = 1.0
    #: Steps between evaluations (curriculum decision, curve point, checkpoint).
    eval_every: int = 100
    #: Validation accuracy at the current largest k that moves the curriculum on.
    advance_at: float = 0.9
    #: The curriculum's first level: from step 0 every batch mixes k = 1 … first_level.
    first_level: int = 2
    #: More questions about a case's cycle after its own (each one a training target).
    follow_ups: int = 3
    #: Start each arrow ``a>b``'s embedding as those of ``a>`` plus ``b`` (:func:`factorise_arrows`).
    factorised_arrows: bool = True
    #: Validation items per k (seed 1).
    validation_items: int = 64
    #: Probe items per k in the training curve (the first of the held-out items).
    curve_items: int = 16
    #: Plateau rule: stop after this many steps without progress at the current curriculum level.
    patience_steps: int = 3000
    #: Progress: the level moved on, or its validation accuracy beat its best by at least this.
    min_gain: float = 0.02


@cache
def vocabulary() -> tuple[str, ...]:
    """Special tokens, then every word the task's text can hold, sorted.

    Words are whitespace-separated: an arrow ``b>q`` is one token (so is the question's ``b>`` and
    ``b.``), as are the template words of a few hundred items. Every arrow between two node names
    is listed, so that any seed's text is covered.
    """
    nodes = CHASE.NODES
    words = {f"{a}>{b}" for a in nodes for b in nodes if a != b}
    words |= set(nodes) | {f"{a}>" for a in nodes} | {f"{a}." for a in nodes}
    words |= {str(k) for k in range(1, CHASE.MAX_STEPS + 1)}
    for item in get_task(TASK).items("prize", 64, seed=0):
        for text in (item.prompt, *item.options):
            words.update(text.split())
    return (*SPECIAL_TOKENS, *sorted(words))


@cache
def build_tokenizer() -> PreTrainedTokenizerFast:
    """One token per whitespace-separated word: an arrow ``b>q`` is a single token.

    A single token per arrow lets one attention layer do one lookup (the question's ``b>`` finds the
    arrow ``b>q`` by its content and reads ``q``), so a rung's depth bounds how many lookups it can
    chain; with ``b``, ``>``, ``q`` as three tokens even one lookup needs two composed layers, which
    the ladder's first recipes did not learn within the budget (experiments/reasoning_depth.md).
    """
    return word_tokenizer(vocabulary(), split_punctuation=False)


def encode(text: str) -> list[int]:
    """The ids :func:`build_tokenizer` gives ``text`` (a test checks they agree), ten times faster.

    Training tokenizes ~10^5 short texts; the fast tokenizer's per-call overhead dominated a step.
    """
    ids = _word_ids()
    return [ids[word] for word in text.split()]


@cache
def _word_ids() -> dict[str, int]:
    return {word: index for index, word in enumerate(vocabulary())}


def by_steps(items: list[Item]) -> dict[int, list[Item]]:
    """Items grouped by their k, in order."""
    grouped: dict[int, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.meta["steps"], []).append(item)
    return dict(sorted(grouped.items()))


def probe_items() -> list[Item]:
    """The held-out probe items: the task's default items, seed 0 (40 per k)."""
    return get_task(TASK).items("prize", seed=0)


def validation_items(config: TrainingConfig) -> list[Item]:
    """The curriculum's validation items (seed 1), ``validation_items`` per k."""
    return get_task(TASK).items("prize", config.validation_items * CHASE.MAX_STEPS, seed=1)


def cycle_key(meta: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """A case's arrows, whatever their order: training skips every cycle a probe item states."""
    return frozenset(tuple(arrow) for arrow in meta["arrows"])


def training_sequence(
    max_steps: int, rng: random.Random, held_out: set[frozenset[tuple[str, str]]], follow_ups: int
) -> tuple[list[int], list[int]]:
    """One training sequence at curriculum level ``max_steps``: (input ids, labels).

    A case with k uniform in 1 … ``max_steps`` (redrawn if it states a held-out cycle), its answer,
    then ``follow_ups`` more questions about the same cycle; labels are -100 except at answers.
    """
    while True:
        steps = rng.randint(1, max_steps)
        case = CHASE.write_case(steps - 1, rng)
        if cycle_key(case.meta) not in held_out:
            break
    pieces = [(case.question, case.true_answer)]
    pieces += [pointer_chase.follow_up_question(case, rng, max_steps) for _ in range(follow_ups)]
    ids: list[int] = []
    labels: list[int] = []
    for text, answer in pieces:
        ids += encode(text)
        labels += [-100] * (len(ids) - len(labels))
        ids += encode(answer)
        labels += ids[len(labels) :]
    return ids, labels


def training_batch(
    config: TrainingConfig, max_steps: int, rng: random.Random, held_out: set[frozenset[tuple[str, str]]]
) -> Int[torch.Tensor, "pair batch token"]:
    """A batch of stacked (input ids, labels), right-padded (labels -100 on padding)."""
    rows = [training_sequence(max_steps, rng, held_out, config.follow_ups) for _ in range(config.batch_size)]
    width = max(len(ids) for ids, _ in rows)
    batch = torch.full((2, len(rows), width), -100, dtype=torch.long)
    batch[0] = build_tokenizer().pad_token_id
    for position, (ids, labels) in enumerate(rows):
        batch[0, position, : len(ids)] = torch.tensor(ids)
        batch[1, position, : len(labels)] = torch.tensor(labels)
    return batch


@torch.no_grad()
def factorise_arrows(model: GPTNeoXForCausalLM) -> None:
    """Set every arrow token ``a>b``'s input embedding to the sum of those of ``a>`` and ``b``.

    Only the initialisation changes (the rows stay free parameters). Each arrow then starts with
    one direction for "out of a" (shared with the question's ``a>``) and one for "into b" (shared
    with the answer token ``b``), so what the model learns about one arrow carries over to the
    others instead of being learnt 240 times. The rung is still a plain GPT-NeoX; a lookup still
    needs one attention layer, two chained lookups two.
    """
    ids = _word_ids()
    embedding = model.get_input_embeddings().weight
    for source in CHASE.NODES:
        for target in CHASE.NODES:
            if source != target:
                embedding[ids[f"{source}>{target}"]] = embedding[ids[f"{source}>"]] + embedding[ids[target]]
