"""Figures against model size: each is a pure function from the results table to a plotly Figure.

Every figure here has one column per task and one line (or bar) per variant, so inverse and
U-shaped scaling read the same way in each; the size axis is switchable in the figure between
parameters, non-embedding parameters, training FLOPs and perplexity (where known).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from probes.report.style import (
    error_bars,
    finish,
    model_labels,
    size_values,
    use_size_axis,
    variant_styles,
)
from probes.report.tables import (
    check_axis,
    decision_table,
    model_order,
    model_sizes,
    scaling_table,
    task_order,
    variant_order,
)

#: Measures a scaling figure can show: column of :func:`scaling_table` -> axis title.
MEASURES: dict[str, str] = {
    "accuracy": "last-layer accuracy",
    "mean_log_odds": "mean log-odds true − distractor",
    "mean_cross_entropy": "true-answer cross-entropy (nats)",
}


def scaling_curve(results: pd.DataFrame, x: str = "parameters", n_resamples: int = 1000) -> go.Figure:
    """Last-layer accuracy per task (columns) and variant (lines) against model size.

    Error bars are Wilson 95% intervals over items; the dotted line is chance (uniform
    guessing among each item's options). ``x`` is one of
    :data:`probes.report.tables.SIZE_AXES`; the figure's menu switches to the others.
    """
    return scaling_measures(results, x=x, measures=("accuracy",), n_resamples=n_resamples)


def scaling_measures(
    results: pd.DataFrame,
    x: str = "parameters",
    measures: Sequence[str] = tuple(MEASURES),
    n_resamples: int = 1000,
) -> go.Figure:
    """Accuracy beside the continuous measures (rows) per task (columns), against model size.

    A jump in thresholded accuracy that the mean log-odds and the true answer's
    cross-entropy also make is a real change of the model; one they do not make is an
    artefact of the threshold (Schaeffer et al. 2023). Intervals: Wilson for accuracy,
    bootstrap 95% of the mean for the others.
    """
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measures {unknown}; use some of {list(MEASURES)}.")
    check_axis(results, x)
    table = scaling_table(results, n_resamples=n_resamples)
    tasks, variants = task_order(results), variant_order(results)
    models, styles = model_order(results), variant_styles(variant_order(results))
    sizes = model_sizes(results)
    fig = make_subplots(
        rows=len(measures),
        cols=len(tasks),
        shared_xaxes=True,
        column_titles=tasks,
        vertical_spacing=0.08,
        horizontal_spacing=0.06,
    )
    for row, measure in enumerate(measures, start=1):
        for col, task in enumerate(tasks, start=1):
            for variant in variants:
                points = _points(table, task, variant, models)
                if points.empty:
                    continue
                fig.add_trace(
                    _size_trace(sizes, points, measure, variant, styles[variant], x, row == col == 1),
                    row=row,
                    col=col,
                )
            if measure == "accuracy":
                for chance in sorted(table.loc[table["task"] == task, "chance"].dropna().unique()):
                    fig.add_hline(y=float(chance), line={"dash": "dot", "color": "grey"}, row=row, col=col)
            if measure == "mean_log_odds":
                fig.add_hline(y=0, line={"color": "grey", "width": 1}, row=row, col=col)
        fig.update_yaxes(title_text=MEASURES[measure], row=row, col=1)
        if measure == "accuracy":
            fig.update_yaxes(range=[-0.03, 1.03], row=row)
    title = (
        "Accuracy at the last layer against size"
        if list(measures) == ["accuracy"]
        else ("Accuracy beside continuous measures against size")
    )
    finish(fig, title, height=140 + 300 * len(measures), width=max(700, 420 * len(tasks)))
    use_size_axis(fig, results, x)
    return fig


def _points(table: pd.DataFrame, task: str, variant: str, models: list[str]) -> pd.DataFrame:
    """The scaling points of one task and variant, smallest model first."""
    points = table[(table["task"] == task) & (table["variant"] == variant)].set_index("model")
    return points.loc[[m for m in models if m in points.index]].reset_index()


def _size_trace(
    sizes: pd.DataFrame,
    points: pd.DataFrame,
    measure: str,
    variant: str,
    style: dict[str, dict[str, Any]],
    x: str,
    legend: bool,
) -> go.Scatter:
    models = list(points["model"])
    return go.Scatter(
        x=size_values(sizes, x, models),
        y=points[measure].tolist(),
        error_y=_interval(points, measure),
        customdata=models,
        mode="lines+markers",
        name=variant,
        legendgroup=variant,
        showlegend=legend,
        line=style["line"],
        marker=style["marker"],
        hovertemplate=f"%{{customdata}}<br>{variant}: %{{y:.3f}}<extra></extra>",
    )


def _interval(points: pd.DataFrame, measure: str) -> dict:
    """Error bars of a measure from its ``_low`` and ``_high`` columns."""
    return error_bars(points[measure], points[f"{measure}_low"], points[f"{measure}_high"])


def decision_layer_scaling(results: pd.DataFrame, x: str = "parameters") -> go.Figure:
    """The decision layer (rows: absolute, relative depth) per task and variant against size.

    Points are the median over items of the first block from which the true answer wins
    through the last (:mod:`probes.analysis.decision`), bars its order-statistic 95% interval; only models
    above chance at their last layer have a point. The hover says what share of items have one.
    """
    check_axis(results, x)
    table = decision_table(results)
    tasks, variants = task_order(results), variant_order(results)
    models, styles, sizes = model_order(results), variant_styles(variants), model_sizes(results)
    fig = make_subplots(rows=2, cols=len(tasks), shared_xaxes=True, column_titles=tasks, vertical_spacing=0.1)
    rows = {"decision_layer": "decision layer", "decision_relative_depth": "decision relative depth"}
    for row, (column, title) in enumerate(rows.items(), start=1):
        for col, task in enumerate(tasks, start=1):
            for variant in variants:
                points = _points(table, task, variant, models)
                if points.empty:
                    continue
                median = points[column]
                fig.add_trace(
                    go.Scatter(
                        x=size_values(sizes, x, list(points["model"])),
                        y=median.tolist(),
                        error_y=error_bars(median, points[f"{column}_low"], points[f"{column}_high"]),
                        customdata=list(points["model"]),
                        text=[f"{share:.0%} of items" for share in points["share_with_decision_layer"]],
                        mode="lines+markers",
                        name=variant,
                        legendgroup=variant,
                        showlegend=row == col == 1,
                        line=styles[variant]["line"],
                        marker=styles[variant]["marker"],
                        hovertemplate=f"%{{customdata}}<br>{variant}: median %{{y:.2f}} "
                        "(%{text} have one)<extra></extra>",
                    ),
                    row=row,
                    col=col,
                )
        fig.update_yaxes(title_text=title, row=row, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], row=2)
    finish(fig, "Decision layer against size", height=740, width=max(700, 420 * len(tasks)))
    use_size_axis(fig, results, x)
    return fig


def variant_comparison(results: pd.DataFrame, n_resamples: int = 1000) -> go.Figure:
    """Last-layer accuracy and mean log-odds (rows) per task (columns): variants side by side.

    Bars are grouped by model (smallest left), one per variant (prize, one-shot, CoT,
    no-distractor), so the effect of a demonstration, of reasoning, or of removing the
    distractor reads at each size. Intervals as in :func:`scaling_measures`.
    """
    table = scaling_table(results, n_resamples=n_resamples)
    tasks, variants = task_order(results), variant_order(results)
    models, styles, labels = model_order(results), variant_styles(variants), model_labels(results)
    fig = make_subplots(rows=2, cols=len(tasks), shared_xaxes=True, column_titles=tasks, vertical_spacing=0.1)
    for row, measure in enumerate(("accuracy", "mean_log_odds"), start=1):
        for col, task in enumerate(tasks, start=1):
            for variant in variants:
                points = _points(table, task, variant, models)
                if points.empty:
                    continue
                fig.add_trace(
                    go.Bar(
                        x=[labels[m] for m in points["model"]],
                        y=points[measure].tolist(),
                        error_y=_interval(points, measure),
                        name=variant,
                        legendgroup=variant,
                        showlegend=row == col == 1,
                        marker=styles[variant]["bar"],
                        hovertemplate=f"%{{x}}<br>{variant}: %{{y:.3f}}<extra></extra>",
                    ),
                    row=row,
                    col=col,
                )
            if measure == "accuracy":
                for chance in sorted(table.loc[table["task"] == task, "chance"].dropna().unique()):
                    fig.add_hline(y=float(chance), line={"dash": "dot", "color": "grey"}, row=row, col=col)
        fig.update_yaxes(title_text=MEASURES[measure], row=row, col=1)
    fig.update_yaxes(range=[0, 1.03], row=1)
    fig.update_xaxes(categoryorder="array", categoryarray=[labels[m] for m in models])
    fig.update_layout(barmode="group")
    return finish(fig, "Variants compared at each size", height=740, width=max(700, 420 * len(tasks)))
