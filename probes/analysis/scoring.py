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
- ``fair_log_odds`` (**length-fair**): the log-odds of the *decisive* token, the first at
  which the two answers' tokens differ, both read at the layer after the same context (the
  prompt and the answers' shared first tokens, which cancel). It charges no answer for tokens
  that come after the decision, so answers of any length are read alike. It equals
  ``log_odds`` wherever both answers are one token, and is close to it at the last layer, where
  a started answer's later tokens cost little. When one answer's tokens are a prefix of the
  other's there is no decisive token and the score is the summed one.

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

import pandas as pd
from jaxtyping import Float

if TYPE_CHECKING:
    import torch

#: Score columns of the per-layer table -> what they are, for figure axes and summaries.
SCORES: dict[str, str] = {
    "log_odds": "summed over answer tokens (the prize metric at the last layer)",
    "fair_log_odds": "length-fair (the first token at which the answers differ)",
}


#: How a lens shard's numbers are scored, part of its fingerprint: a store made with another
#: scoring (before the float32 readout, the tie rule and the per-token scores) is not resumed.
SCORING = "float32 readout; ties 1/k; log_odds and fair_log_odds (first differing token)"

#: Short names of the scores, for titles.
SCORE_NAMES: dict[str, str] = {"log_odds": "summed", "fair_log_odds": "length-fair"}


def decisive_token(true_ids: Sequence[int], distractor_ids: Sequence[int]) -> int | None:
    """Index of the first token at which the two answers differ (None if one is a prefix)."""
    for index, (a, b) in enumerate(zip(true_ids, distractor_ids)):
        if a != b:
            return index
    return None


def fair_log_odds(
    true_tokens: Float[torch.Tensor, "layer token"],
    distractor_tokens: Float[torch.Tensor, "layer token"],
    true_ids: Sequence[int],
    distractor_ids: Sequence[int],
) -> Float[torch.Tensor, " layer"]:
    """The length-fair score at every layer: the decisive token's log-odds (the summed log-odds
    when one answer is a prefix of the other)."""
    true_tokens, distractor_tokens = true_tokens.double(), distractor_tokens.double()
    index = decisive_token(true_ids, distractor_ids)
    if index is None:
        return true_tokens.sum(dim=-1) - distractor_tokens.sum(dim=-1)
    return true_tokens[:, index] - distractor_tokens[:, index]


def per_layer_score(table: pd.DataFrame) -> str:
    """The score column to read across layers: the length-fair one where the table has it
    (stores written before it existed have only the summed ``log_odds``)."""
    if "fair_log_odds" in table.columns and table["fair_log_odds"].notna().any():
        return "fair_log_odds"
    return "log_odds"


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
