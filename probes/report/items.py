"""The item browser: one row per item, the items whose verdict flips between sizes first.

Aggregates hide which items make a curve U-shaped; this table shows them: per item its
answers, its last-layer verdict at each size (smallest first) and, per model, its log-odds
at every layer read. A pure function of the results table, like every figure.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from probes.report.style import TEMPLATE, model_labels, verdict_marks
from probes.report.tables import item_flips, model_order

#: Cell colours of a right and a wrong last-layer verdict, and of a model that lacks the item.
RIGHT, WRONG, TIED, ABSENT = "#d9f0d3", "#f4cccc", "#fff2cc", "#ffffff"
#: Longest prompt shown in a cell (longer ones are cut, with an ellipsis).
PROMPT_CHARACTERS = 240
#: Longest rationale shown in a model's cell of a chain-of-thought item.
RATIONALE_CHARACTERS = 160


def item_browser(results: pd.DataFrame, max_rows: int = 500) -> go.Figure:
    """A table of items: answers, verdict per size, flips, and per-layer log-odds per model.

    Per model, a cell reads ``+1.20 | −0.50 −0.10 +0.40 +1.20``: the last-layer log-odds
    (true − distractor), then the log-odds at every layer read, embeddings first; it is
    green where the model is right at its last layer, red where wrong. The prompt column
    shows when the results carry a ``prompt`` column; for chain-of-thought items it is the
    task's prompt, and each model's cell adds the rationale that model wrote after it (its
    own prompt is the two together), since every model scores its own. At most ``max_rows`` items are shown,
    the ones that flip first. A verdict in parentheses is not compared for flips (a tie, or a
    size at chance: :func:`probes.report.tables.item_flips`).
    """
    flips = item_flips(results).head(max_rows)
    models, labels = model_order(results), model_labels(results)
    columns: dict[str, list[str]] = {
        "task": flips["task"].tolist(),
        "variant": flips["variant"].tolist(),
        "item": flips["item_id"].astype(str).tolist(),
    }
    if "prompt" in flips.columns:
        columns["prompt"] = [_cut(str(p)) for p in flips["prompt"]]
    columns["true answer"] = [repr(a) for a in flips["true_answer"]]
    columns["distractor answer"] = [repr(a) for a in flips["distractor_answer"]]
    columns["flips"] = flips["flips"].astype(str).tolist()
    columns["verdicts (small → large)"] = [
        verdict_marks(verdicts, counted) for verdicts, counted in zip(flips["verdicts"], flips["counted"])
    ]
    fills = [[ABSENT] * len(flips) for _ in columns]
    for model in models:
        texts, colours = [], []
        rationales = flips["rationale_by_model"] if "rationale_by_model" in flips else [None] * len(flips)
        for by_model, item_models, verdicts, rationale in zip(
            flips["log_odds_by_model"], flips["models"], flips["verdicts"], rationales
        ):
            if model not in by_model:
                texts.append("")
                colours.append(ABSENT)
                continue
            values = by_model[model]
            text = f"{values[-1]:+.2f} | " + " ".join(f"{v:+.1f}" for v in values)
            if isinstance(rationale, dict) and model in rationale:  # a cot item: this model's own
                text += f"<br>rationale: {html.escape(_cut(repr(rationale[model]), RATIONALE_CHARACTERS))}"
            texts.append(text)
            verdict = verdicts[item_models.index(model)]
            colours.append(RIGHT if verdict == 1 else WRONG if verdict == 0 else TIED)
        columns[labels[model]] = texts
        fills.append(colours)
    table = go.Table(
        header={"values": [f"<b>{name}</b>" for name in columns], "align": "left", "fill": {"color": "#eee"}},
        cells={"values": list(columns.values()), "align": "left", "fill": {"color": fills}, "height": 24},
        columnwidth=[_width(name, models, labels) for name in columns],
    )
    fig = go.Figure(table)
    shown = f"{len(flips)} items" + (f" (of {len(item_flips(results))})" if len(flips) == max_rows else "")
    fig.update_layout(
        template=TEMPLATE,
        title={
            "text": f"Items, those that flip between sizes first: {shown}<br><sup>a model's cell: last-layer "
            "log-odds true − distractor | log-odds at every layer read, embeddings first; green right, "
            "red wrong</sup>",
            "x": 0.0,
            "xanchor": "left",
        },
        height=min(2000, 160 + 26 * max(len(flips), 4)),
        width=max(1000, 240 * len(models) + 700),
        margin={"t": 80, "l": 20, "r": 20, "b": 20},
    )
    return fig


def _cut(text: str, characters: int = PROMPT_CHARACTERS) -> str:
    return text if len(text) <= characters else text[: characters - 1] + "…"


def _width(name: str, models: list[str], labels: dict[str, str]) -> int:
    """Relative column widths: prompts and per-layer cells wide, keys narrow."""
    if name == "prompt":
        return 320
    if name in {labels[m] for m in models}:
        return 240
    return {"task": 110, "variant": 90, "item": 70, "flips": 45}.get(name, 110)


#: How a model's cell of the item table reads (the report states it above the table).
CELL_ENCODING = (
    "Each model's cell: its last-layer log-odds of the true answer over the distractor (nats; "
    "+ favours the true answer), then after “|” the log-odds at every layer read, from the "
    "embeddings (layer 0) to the last block. Green: right at the last layer; red: wrong; "
    "yellow: a tie (half right); blank: the model did not read the item."
)


def item_table_html(results: pd.DataFrame, max_rows: int = 500) -> str:
    """The item browser as an HTML table (for the report; text stays text, selectable and wrapped).

    The same rows as :func:`item_browser`: items whose verdict flips between sizes first, the
    prompt (when the results carry it), the answers, the verdicts per size and per model the
    cell :data:`CELL_ENCODING` describes, which the table states above itself. The table
    scrolls sideways inside its box rather than cutting columns.
    """
    flips = item_flips(results).head(max_rows)
    models, labels = model_order(results), model_labels(results)
    fixed = ["task", "variant", "item"] + (["prompt"] if "prompt" in flips.columns else [])
    fixed += ["true answer", "distractor answer", "flips", "verdicts (small → large)"]
    head = "".join(f"<th>{html.escape(name)}</th>" for name in [*fixed, *(labels[m] for m in models)])
    rows = []
    rationales = flips["rationale_by_model"] if "rationale_by_model" in flips else [None] * len(flips)
    for (_, item), rationale in zip(flips.iterrows(), rationales):
        cells = [item["task"], item["variant"], str(item["item_id"])]
        if "prompt" in flips.columns:
            cells.append(_cut(str(item["prompt"])))
        cells += [repr(item["true_answer"]), repr(item["distractor_answer"]), str(item["flips"])]
        cells.append(verdict_marks(item["verdicts"]))
        row = "".join(
            f'<td class="prompt">{html.escape(c)}</td>' if name == "prompt" else f"<td>{html.escape(c)}</td>"
            for name, c in zip(fixed, cells)
        )
        for model in models:
            if model not in item["log_odds_by_model"]:
                row += "<td></td>"
                continue
            values = item["log_odds_by_model"][model]
            verdict = item["verdicts"][item["models"].index(model)]
            fill = RIGHT if verdict == 1 else WRONG if verdict == 0 else TIED
            text = f"<b>{values[-1]:+.2f}</b> | " + " ".join(f"{v:+.1f}" for v in values)
            if isinstance(rationale, dict) and model in rationale:
                text += f"<br>rationale: {html.escape(_cut(repr(rationale[model]), RATIONALE_CHARACTERS))}"
            row += f'<td class="odds" style="background:{fill}">{text}</td>'
        rows.append(f"<tr>{row}</tr>")
    total = len(item_flips(results))
    shown = f"{len(flips)} items" + (f" of {total} (the first {max_rows})" if total > len(flips) else "")
    return (
        f'<p class="encoding">{html.escape(CELL_ENCODING)} {html.escape(shown)}.</p>'
        f'<div class="items"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
