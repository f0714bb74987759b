"""Answer scoring: how each answer token's per-layer log-prob becomes one true-vs-distractor score.

Two scores are stored on every row of the per-layer table (:func:`probes.analysis.metrics.layer_table`),
and every figure and summary says which one it shows:

- ``log_odds`` (**summed**): the sum of the true answer's token log-probs minus the
  distractor's, every token read at the same layer. At the last layer it is the Inverse
  Scaling Prize metric (McKenzie et al. 2023). At earlier layers it is confounded by answer
  length: where the lens cannot yet read an answer's later tokens, each costs about
  log(vocabulary) nats, so the longer answer loses whatever the model thinks (SmolLM2-135M,
  quote_repetition, layer 15 of 30: +21.9 when the distractor has more tokens, −40.7 when the
  true answer has).
- ``fair_log_odds`` (**length-fair**): the two answers compared where they part, both read at
  the layer after the same context (the prompt and the answers' shared first tokens, which
  cancel). Where they part at a token (the *decisive* token, the first at which their tokens
  differ) it is that token's log-odds. Where one answer's tokens are a prefix of the other's,
  they part at the *branch point*, the position after the shorter answer's last token: there
  the shorter answer stops and the longer one goes on with its next token ``c``, so the score
  is ``log(1 − p(c)) − log p(c)`` for the shorter answer (its negation for the longer). It
  charges no answer for tokens after the decision, so answers of any length are read alike: it
  equals ``log_odds`` wherever both answers are one token, and it is close to it at the last
  layer, where a started answer's later tokens cost little.
- ``fair_correct``: the per-layer credit of the same score over all options: the true answer
  wins a layer when its fair score against every other option is positive (greedy decoding
  among the options follows it at every point where one of them parts from it); a fair score
  of 0 against ``k − 1`` options and no loss is ``1/k`` right, as ``correct`` treats a tie.

**Which score where.** Every per-layer reading (accuracy per layer, the ``probes show``
tables, the depth figures, decision and divergence layers) uses the length-fair score and its
credit. The last layer's accuracy, the scaling curves and the closing shape keep the Inverse
Scaling Prize metric: ``correct`` (the summed option log-probs, the lm-evaluation-harness
choice) and ``log_odds``.

**Why "the shorter answer stops" is ``1 − p(c)``.** At the branch point the two answers make
different predictions about one event only: whether the next token is ``c``. Any other token
(an end of text, a full stop, a newline, another word) leaves the longer answer and is
consistent with the shorter one having ended, so ``1 − p(c)`` is the probability the shorter
answer receives at the same position as ``p(c)`` the longer one: a binary decision read from
one softmax, like the decisive token's. An end-of-answer token's probability instead would
depend on which token is taken to end an answer (there is none in a lens readout: the model
was not told the answer ends) and would ignore every other way of stopping. The score is
monotone in ``p(c)`` and antisymmetric (swap the answers: the score changes sign), and
extending the longer answer after ``c`` does not move it. Where the float32 readout gives
``log p(c) = 0`` (beyond its resolution), ``log(1 − p(c))`` is taken at
``p(c) = 1 − 2^-23`` (float32's machine epsilon), so the score stays finite (±15.9 nats).

Chosen by measurement (``experiments/answer_length.py``, ``experiments/answer_length.md``): on
SmolLM2-135M, quote_repetition, 60 prize items, the mean score at layer 15 of 30 differs
between items whose distractor is longer and items whose true answer is longer by 62.6 nats
summed, −18.6 as a mean per token (which over-corrects), +4.6 with the decisive token at the
layer and the later tokens at the last layer (which carries last-layer knowledge into every
layer), and −0.3 with the decisive token alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from jaxtyping import Float

if TYPE_CHECKING:
    import torch

#: Score columns of the per-layer table -> what they are, for figure axes and summaries.
SCORES: dict[str, str] = {
    "log_odds": "summed over answer tokens (the prize metric at the last layer)",
    "fair_log_odds": "length-fair (the answers compared where they part)",
}

#: Credit columns (1, 1/k on a k-way tie, 0) -> the score they credit.
CREDITS: dict[str, str] = {"correct": "log_odds", "fair_correct": "fair_log_odds"}


#: How a lens shard's numbers are scored, part of its fingerprint: a store made with another
#: scoring (before the float32 readout, the tie rule and the per-token scores) is not resumed.
SCORING = (
    "float32 readout; ties 1/k; log_odds and fair_log_odds (where the answers part, prefix pairs "
    "too); fair_correct"
)

#: ``log p(c)`` at most this (``p(c) = 1 − 2^-23``) where the branch point's ``log(1 − p(c))`` is read.
LARGEST_CONTINUATION_LOGPROB = float(np.log1p(-(2.0**-23)))

#: Short names of the scores, for titles.
SCORE_NAMES: dict[str, str] = {"log_odds": "summed", "fair_log_odds": "length-fair"}


def decisive_token(true_ids: Sequence[int], distractor_ids: Sequence[int]) -> int | None:
    """Index of the first token at which the two answers differ (None if one is a prefix)."""
    for index, (a, b) in enumerate(zip(true_ids, distractor_ids)):
        if a != b:
            return index
    return None


def log1mexp(logprob: torch.Tensor) -> torch.Tensor:
    """``log(1 − exp(logprob))`` for ``logprob ≤ 0``, accurate near 0 and far below it (Mächler 2012)."""
    import torch

    return torch.where(
        logprob > -np.log(2.0), torch.log(-torch.expm1(logprob)), torch.log1p(-torch.exp(logprob))
    )


def fair_log_odds(
    true_tokens: Float[torch.Tensor, "layer token"],
    distractor_tokens: Float[torch.Tensor, "layer token"],
    true_ids: Sequence[int],
    distractor_ids: Sequence[int],
) -> Float[torch.Tensor, " layer"]:
    """The length-fair score at every layer: the two answers compared where they part.

    The decisive token's log-odds where their tokens differ somewhere; where one answer is a
    prefix of the other, ``log(1 − p(c)) − log p(c)`` for the shorter one at the branch point,
    ``c`` the longer answer's next token (negated when the true answer is the longer one). Two
    answers with the same tokens score 0.

    Args:
        true_tokens: Each true-answer token's log-prob at each layer (read after the prompt and
            the answer's earlier tokens).
        distractor_tokens: The same for the distractor.
        true_ids: The true answer's token ids.
        distractor_ids: The distractor's token ids.
    """
    import torch

    true_tokens, distractor_tokens = true_tokens.double(), distractor_tokens.double()
    index = decisive_token(true_ids, distractor_ids)
    if index is not None:
        return true_tokens[:, index] - distractor_tokens[:, index]
    shorter = min(len(true_ids), len(distractor_ids))
    if len(true_ids) == len(distractor_ids):
        return torch.zeros(true_tokens.shape[0], dtype=torch.float64)
    longer_tokens, sign = (
        (distractor_tokens, 1.0) if len(true_ids) < len(distractor_ids) else (true_tokens, -1.0)
    )
    continuation = longer_tokens[:, shorter].clamp(max=LARGEST_CONTINUATION_LOGPROB)
    return sign * (log1mexp(continuation) - continuation)


def fair_credit(
    option_tokens: Sequence[Float[torch.Tensor, "layer token"]],
    option_ids: Sequence[Sequence[int]],
    true_index: int,
) -> Float[torch.Tensor, " layer"]:
    """Per layer, how right the length-fair score says the item is: 1 if the true answer's fair
    score against every other option is positive, ``1/k`` if it is 0 against ``k − 1`` of them
    and positive against the rest, 0 if it is negative against any (a NaN score loses).

    Args:
        option_tokens: Per option, each token's log-prob at each layer.
        option_ids: Per option, its token ids.
        true_index: Which option is the true answer.
    """
    import torch

    n_layers = option_tokens[true_index].shape[0]
    lost = torch.zeros(n_layers, dtype=torch.bool)
    tied = torch.ones(n_layers, dtype=torch.float64)
    for option, (tokens, ids) in enumerate(zip(option_tokens, option_ids)):
        if option == true_index:
            continue
        score = fair_log_odds(option_tokens[true_index], tokens, option_ids[true_index], ids)
        lost |= ~(score >= 0)
        tied += score == 0
    return torch.where(lost, 0.0, 1.0 / tied).double()


def sign_credit(scores: pd.Series) -> pd.Series:
    """A two-option item's credit from its score: 1 if positive, 1/2 if 0, 0 if negative or NaN."""
    return (scores > 0).astype(float) + 0.5 * (scores == 0)


def per_layer_score(table: pd.DataFrame) -> str:
    """The score column to read across layers: the length-fair one where the table has it
    (stores written before it existed have only the summed ``log_odds``)."""
    if "fair_log_odds" in table.columns and table["fair_log_odds"].notna().any():
        return "fair_log_odds"
    return "log_odds"


def per_layer_credit(table: pd.DataFrame) -> str:
    """The credit column of per-layer accuracy: ``fair_correct`` where the table has it, else
    ``correct`` (the summed score's credit: stores scored before ``fair_correct`` existed; see
    :func:`scoring_warnings`)."""
    if "fair_correct" in table.columns and table["fair_correct"].notna().any():
        return "fair_correct"
    return "correct"


def scoring_warnings(table: pd.DataFrame) -> list[str]:
    """One line when the table was scored before per-layer accuracy and prefix pairs had the
    length-fair score: which of its numbers still follow the summed score, and how to rescore."""
    if per_layer_credit(table) == "fair_correct" or "true_tokens" not in table.columns:
        return []
    return [
        "these results were scored before per-layer accuracy used the length-fair score: their "
        "per-layer accuracy is the summed score's, and answers that are prefixes of each other keep "
        "summed fair log-odds; run them again into a new --out (or with --overwrite) to rescore."
    ]


def length_warnings(table: pd.DataFrame) -> list[str]:
    """One line per (task, variant) whose true answer and distractor differ in token count for
    some item: their middle-layer summed log-odds are confounded by answer length."""
    if not {"true_tokens", "distractor_tokens"} <= set(table.columns):
        return []
    items = table.drop_duplicates(["model", "task", "variant", "item_id"])
    lines = []
    for (task, variant), group in items.groupby(["task", "variant"], sort=False):
        differ = group["true_tokens"] != group["distractor_tokens"]
        if differ.any():
            lines.append(
                f"{task} / {variant}: in {int(differ.sum())} of {len(group)} (model, item) pairs the true "
                "answer and the distractor differ in token count; the summed log-odds at middle "
                "layers charge the longer one for tokens the lens cannot read yet, so per-layer "
                "figures and layers use the length-fair score (probes.analysis.scoring)."
            )
    return lines
