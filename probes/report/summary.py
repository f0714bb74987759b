"""The report's Markdown summary: the key numbers, short enough to paste into a write-up.

A pure function of the results table: per task and variant, last-layer accuracy and mean
log-odds at each size with the shape of the curve named where a test says so
(:mod:`probes.analysis.shape`: U-shaped, inverted U, positive, inverse ... or not determined),
where in depth the true answer is decided (decision layer) and where the distractor starts to act
(divergence layer), each with a 95% interval, and how many items flip between sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from probes.analysis.scoring import SCORE_NAMES, length_warnings, per_layer_score
from probes.analysis.shape import ALPHA, ScalingShape, p_text
from probes.report.style import human_size, verdict_marks
from probes.report.tables import (
    decision_table,
    divergence_table,
    item_flips,
    model_order,
    model_sizes,
    scaling_shapes,
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


def summary_markdown(results: pd.DataFrame, title: str = "probes report") -> str:
    """The Markdown summary of a results table (see the module docstring for what it holds).

    The means' intervals use 1000 resamples; the decision layer's interval and the divergence
    layer's test resample nothing (order statistics; sign flips, :mod:`probes.analysis.decision`).
    """
    models = model_order(results)
    sizes = model_sizes(results)
    points = scaling_table(results)  # 1000 resamples of each mean log-odds
    decision = decision_table(results)
    divergence = divergence_table(results)
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
    shapes = scaling_shapes(results, order=models) if column == "accuracy" else {}
    rows = []
    for task in task_order(results):
        for variant in variant_order(results):
            group = points[(points["task"] == task) & (points["variant"] == variant)].set_index("model")
            if group.empty:
                continue
            shape = _shape_cell(shapes[(task, variant)]) if column == "accuracy" else ""
            cells = [form.format(group.loc[m, column]) if m in group.index else "–" for m in models]
            extra = [f"{float(group['chance'].iloc[0]):.2f}", shape] if column == "accuracy" else []
            rows.append([task, variant, int(group["n_items"].iloc[0]), *extra, *cells])
    shape_header = f"shape (tested at {ALPHA:g})"
    header = [
        "task",
        "variant",
        "items",
        *(["chance", shape_header] if column == "accuracy" else []),
        *models,
    ]
    return f"## {title}, by size (smallest first)\n\n" + markdown_table(header, rows)


def _shape_cell(shape: ScalingShape) -> str:
    """``"U-shaped (p < 0.001)"``; ``"not determined"`` bare (its p-value is the closest candidate's)."""
    return shape.label if shape.label == "not determined" else f"{shape.label} ({p_text(shape.p_value)})"


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
            if not row["testable"]:
                cells.append(f"not determined ({row['n_pairs']} pairs)")
                continue
            cell = _effect_cell(row, "divergence")
            if cell == "none" and pd.notna(row["separation_layer"]):
                cell += "; separates " + _effect_cell(row, "separation")
            cells.append(cell)
        rows.append([task, int(group["n_pairs"].max()), *cells])
    return (
        "## Divergence layer: first block where the prize prompt pulls the prize's answer pair toward its "
        "distractor, against the no_distractor prompt on the same pair (paired over items); separation "
        "layer: first block where the two prompts move the pair apart either way; the effect there in "
        "nats [simultaneous 95% CI, family-wise over blocks: sign-flip max-t]; "
        f"{_score_name(results)} score (docs/conclusions.md)\n\n"
        + markdown_table(["task", "pairs", *models], rows)
    )


def _effect_cell(row: pd.Series, kind: str) -> str:
    """``"3 of 4 (−1.20 [−1.50, −0.90])"``, or ``"none"``."""
    if not pd.notna(row[f"{kind}_layer"]):
        return "none"
    effect, low, high = (row[f"{kind}_effect{end}"] for end in ("", "_low", "_high"))
    return f"{row[f'{kind}_layer']:g} of {row['n_layers']} ({effect:+.2f} [{low:+.2f}, {high:+.2f}])"


def _score_name(results: pd.DataFrame) -> str:
    return SCORE_NAMES[per_layer_score(results)]


def _flips_section(results: pd.DataFrame) -> str:
    flips = item_flips(results)
    flipping = flips[flips["flips"] > 0]
    comparable = int((flips["compared"] >= 2).sum())
    counted = (
        f"{len(flipping)} of the {comparable} with a verdict at two sizes or more"
        if comparable
        else "not determined"
    )
    lines = [
        f"## Items that flip between sizes: {counted}",
        "A verdict counts only where it is not a tie and the size's accuracy differs from chance "
        f"(Wilson 95% interval); {len(flips) - comparable} of {len(flips)} items have fewer than two. "
        "Verdicts in parentheses are not counted.",
    ]
    if len(flipping):
        rows = [
            [
                row.task,
                row.variant,
                row.item_id,
                repr(row.true_answer),
                repr(row.distractor_answer),
                verdict_marks(row.verdicts, row.counted),
            ]
            for row in flipping.head(LISTED_FLIPS).itertuples()
        ]
        header = ["task", "variant", "item", "true", "distractor", "verdicts (small → large)"]
        lines.append(markdown_table(header, rows))
    return "\n\n".join(lines)
