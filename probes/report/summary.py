"""The report's Markdown summary: the key numbers, short enough to paste into a write-up.

A pure function of the results table: per task and variant, last-layer accuracy and mean
log-odds at each size with the shape of the curve named (U-shaped, inverse, positive, flat),
where in depth the true answer is decided (decision layer) and where the distractor starts to act
(divergence layer), each with a 95% interval, and how many items flip between sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from probes.analysis.scoring import SCORE_NAMES, length_warnings, per_layer_score
from probes.report.style import human_size, verdict_marks
from probes.report.tables import (
    decision_table,
    divergence_table,
    item_flips,
    model_order,
    model_sizes,
    scaling_shape,
    scaling_table,
    task_order,
    variant_order,
)

#: Items listed under "items that flip".
LISTED_FLIPS = 5


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(results: pd.DataFrame, title: str = "probes report", n_resamples: int = 200) -> str:
    """The Markdown summary of a results table (see the module docstring for what it holds)."""
    models = model_order(results)
    sizes = model_sizes(results)
    points = scaling_table(results, n_resamples=n_resamples)
    decision = decision_table(results, n_resamples=n_resamples)
    divergence = divergence_table(results, n_resamples=n_resamples)
    sections = [f"# {title}", _models_section(models, sizes)]
    for column, name, form in (
        ("accuracy", "Last-layer accuracy (a tie is half right)", "{:.2f}"),
        ("mean_log_odds", "Mean log-odds true − distractor at the last layer", "{:+.2f}"),
    ):
        sections.append(_by_size_section(results, points, models, column, name, form))
    sections.append(_decision_section(results, decision, models))
    if not divergence.empty:
        sections.append(_divergence_section(results, divergence, models))
    sections.append(_flips_section(results))
    warnings = length_warnings(results)
    if warnings:
        sections.append("## Warnings\n\n" + "\n".join(f"- {line}" for line in warnings))
    return "\n\n".join(sections) + "\n"


def _models_section(models: list[str], sizes: pd.DataFrame) -> str:
    columns = {
        "parameters": "parameters",
        "non_embedding_parameters": "non-embedding",
        "training_flops": "training FLOPs",
        "perplexity": "perplexity",
        "n_layers": "blocks",
    }
    shown = [c for c in columns if c in sizes.columns and sizes[c].notna().any()]
    rows = []
    for model in models:
        values = [sizes.loc[model, c] for c in shown]
        rows.append([model, *(_number(c, v) for c, v in zip(shown, values))])
    return "## Models, smallest first\n\n" + markdown_table(["model", *(columns[c] for c in shown)], rows)


def _number(column: str, value: object) -> str:
    if not pd.notna(value):
        return "–"
    if column == "n_layers":
        return str(int(value))
    return human_size(column, float(value))  # as the listings print it


def _by_size_section(
    results: pd.DataFrame, points: pd.DataFrame, models: list[str], column: str, title: str, form: str
) -> str:
    rows = []
    for task in task_order(results):
        for variant in variant_order(results):
            group = points[(points["task"] == task) & (points["variant"] == variant)].set_index("model")
            if group.empty:
                continue
            present = [m for m in models if m in group.index]
            values = [float(group.loc[m, column]) for m in present]
            shape = scaling_shape(values) if column == "accuracy" else ""
            cells = [form.format(group.loc[m, column]) if m in group.index else "–" for m in models]
            extra = [f"{float(group['chance'].iloc[0]):.2f}", shape] if column == "accuracy" else []
            rows.append([task, variant, int(group["n_items"].iloc[0]), *extra, *cells])
    header = ["task", "variant", "items", *(["chance", "shape"] if column == "accuracy" else []), *models]
    return f"## {title}, by size (smallest first)\n\n" + markdown_table(header, rows)


def _decision_section(results: pd.DataFrame, decision: pd.DataFrame, models: list[str]) -> str:
    rows = []
    for task in task_order(results):
        for variant in variant_order(results):
            group = decision[(decision["task"] == task) & (decision["variant"] == variant)].set_index("model")
            if group.empty:
                continue
            cells = []
            for model in models:
                if model not in group.index:
                    cells.append("–")
                    continue
                row = group.loc[model]
                share = f"{row['share_with_decision_layer']:.0%}"
                if not row["above_chance"]:
                    cells.append(f"not above chance ({share})")
                elif pd.notna(row["decision_layer"]):
                    low, high = row["decision_layer_low"], row["decision_layer_high"]
                    cells.append(
                        f"{row['decision_layer']:g} [{low:g}, {high:g}] of {row['n_layers']} ({share})"
                    )
                else:
                    cells.append(f"– ({share})")
            rows.append([task, variant, *cells])
    return (
        "## Decision layer: median over items of the first block from which the true answer wins "
        "through the last [95% CI] of the model's blocks (share of items that have one); only where "
        f"last-layer accuracy is above chance; {_score_name(results)} score\n\n"
        + markdown_table(["task", "variant", *models], rows)
    )


def _divergence_section(results: pd.DataFrame, divergence: pd.DataFrame, models: list[str]) -> str:
    rows = []
    for task in task_order(results):
        group = divergence[divergence["task"] == task].set_index("model")
        if group.empty:
            continue
        cells = []
        for model in models:
            if model not in group.index:
                cells.append("–")
                continue
            row = group.loc[model]
            if pd.notna(row["divergence_layer"]):
                low, high = row["divergence_layer_low"], row["divergence_layer_high"]
                cells.append(f"{row['divergence_layer']:g} [{low:g}, {high:g}] of {row['n_layers']}")
            else:
                cells.append("none")
        rows.append([task, int(group["n_pairs"].max()), *cells])
    return (
        "## Divergence layer: first block where the prize variant's log-odds fall significantly "
        f"below its no_distractor twin's, paired over items [95% CI]; {_score_name(results)} score\n\n"
        + markdown_table(["task", "pairs", *models], rows)
    )


def _score_name(results: pd.DataFrame) -> str:
    return SCORE_NAMES[per_layer_score(results)]


def _flips_section(results: pd.DataFrame) -> str:
    flips = item_flips(results)
    flipping = flips[flips["flips"] > 0]
    lines = [f"## Items that flip between sizes: {len(flipping)} of {len(flips)}"]
    if len(flipping):
        rows = [
            [
                row.task,
                row.variant,
                row.item_id,
                repr(row.true_answer),
                repr(row.distractor_answer),
                verdict_marks(row.verdicts),
            ]
            for row in flipping.head(LISTED_FLIPS).itertuples()
        ]
        header = ["task", "variant", "item", "true", "distractor", "verdicts (small → large)"]
        lines.append(markdown_table(header, rows))
    return "\n\n".join(lines)
