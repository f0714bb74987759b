"""Figures along depth: where in the network, and at which size, the true answer wins or loses.

Depth is relative (layer / number of blocks: 0 is the embeddings, 1 the output), so models of
different depth share one axis. Each function is pure: results table in, plotly Figure out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from probes.analysis.decision import PRIZE
from probes.analysis.scoring import SCORE_NAMES
from probes.report.style import LOG_ODDS_SCALE, finish, menu, model_colours, model_labels
from probes.report.tables import (
    ReportError,
    decision_table,
    divergence_table,
    layer_summary,
    model_order,
    task_order,
    variant_order,
)

#: Rows of :func:`layer_trajectories`: column of :func:`layer_summary` -> axis title.
TRAJECTORY_MEASURES: dict[str, str] = {
    "mean_log_odds": "log-odds true − distractor",
    "mean_p_true": "p(true)",
    "mean_p_distractor": "p(distractor)",
}


def depth_heatmap(results: pd.DataFrame) -> go.Figure:
    """Mean log-odds true − distractor over relative depth (y) and model size (x).

    One panel per task (rows) and variant (columns), one column of cells per model (smallest
    left) with a cell per layer read, centred on its depth (no interpolation between layers,
    so models of different depth keep their own grid); a diverging scale centred on 0,
    shared by all panels: blue where
    the true answer wins, red where the distractor does. The U of U-shaped scaling shows
    as a red band at middle sizes, and depth says where it forms.
    """
    summary = layer_summary(results)
    tasks, variants = task_order(results), variant_order(results)
    models, labels = model_order(results), model_labels(results)
    fig = make_subplots(
        rows=len(tasks),
        cols=len(variants),
        shared_yaxes=True,
        row_titles=tasks,
        column_titles=variants,
        horizontal_spacing=0.03,
        vertical_spacing=0.12,
    )
    for row, task in enumerate(tasks, start=1):
        for col, variant in enumerate(variants, start=1):
            panel = summary[(summary["task"] == task) & (summary["variant"] == variant)]
            add_depth_columns(
                fig,
                panel,
                models,
                "mean_log_odds",
                row,
                col,
                lambda model, cells: {
                    "name": model,
                    "text": [
                        [f"layer {layer} of {blocks} (depth {depth:.2f})"]
                        for layer, blocks, depth in zip(
                            cells["layer"], cells["n_layers"], cells["relative_depth"]
                        )
                    ],
                    "hovertemplate": f"{labels[model]}<br>%{{text}}<br>log-odds %{{z:+.2f}}<extra></extra>",
                },
            )
    depth_axes(fig, models, labels)
    limit = float(np.nanmax(np.abs(summary["mean_log_odds"]))) if len(summary) else 1.0
    log_odds_colours(fig, limit)
    return finish(
        fig,
        f"Mean log-odds true − distractor by depth and size ({SCORE_NAMES[summary['score'].iloc[0]]} score)"
        if len(summary)
        else "Mean log-odds true − distractor by depth and size",
        height=140 + 320 * len(tasks),
        width=max(700, 300 * len(variants) + 160),
    )


def depth_axes(fig: go.Figure, models: list[str], labels: dict[str, str]) -> None:
    """Axes of a relative depth × size heat map: a column per model (smallest first), depth 0-1."""
    fig.update_xaxes(
        tickmode="array",
        tickvals=list(range(len(models))),
        ticktext=[labels[m] for m in models],
        range=[-0.5, len(models) - 0.5],
        tickangle=-30,
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(range=[-0.1, 1.1], zeroline=False)
    fig.update_yaxes(title_text="relative depth", col=1)


def add_depth_columns(
    fig: go.Figure,
    panel: pd.DataFrame,
    models: list[str],
    value: str,
    row: int,
    col: int,
    describe: Callable[[str, pd.DataFrame], dict[str, Any]],
) -> None:
    """Add one column per model of ``panel`` to the relative-depth x size heat map at (row, col).

    Model ``models[i]``'s column stands at x = i, one cell per layer centred on its relative depth
    (:func:`cell_edges`), coloured by ``panel[value]`` on the figure's shared colour axis;
    ``describe(model, cells)`` gives the trace's name, text and hover template.
    """
    for position, model in enumerate(models):
        cells = panel[panel["model"] == model]
        if cells.empty:
            continue
        column = go.Heatmap(
            x=[position - 0.42, position + 0.42],
            y=cell_edges(cells["relative_depth"].tolist()),
            z=[[float(v)] for v in cells[value]],
            coloraxis="coloraxis",
            ygap=1,
            **describe(model, cells),
        )
        fig.add_trace(column, row=row, col=col)


def log_odds_colours(fig: go.Figure, limit: float) -> None:
    """The shared colour axis of a log-odds heat map: diverging around 0, from -limit to +limit."""
    fig.update_layout(
        coloraxis={
            "colorscale": LOG_ODDS_SCALE,
            "cmid": 0.0,
            "cmin": -limit,
            "cmax": limit,
            "colorbar": {"title": {"text": "log-odds<br>true − distractor"}},
        }
    )


def cell_edges(centres: list[float]) -> list[float]:
    """Edges of heat-map cells around sorted centres: midpoints, and half a gap beyond each end."""
    values = np.asarray(centres, dtype=float)
    if values.size == 1:
        return [float(values[0]) - 0.05, float(values[0]) + 0.05]
    middle = (values[1:] + values[:-1]) / 2
    first, last = 2 * values[0] - middle[0], 2 * values[-1] - middle[-1]
    return [float(first), *map(float, middle), float(last)]


def layer_trajectories(
    results: pd.DataFrame, task: str | None = None, variant: str | None = None
) -> go.Figure:
    """Log-odds, p(true) and p(distractor) (rows) against relative depth, one line per model.

    A star marks each model's decision layer on its log-odds line (:mod:`probes.analysis.decision`: the
    median over items of the first block from which the true answer wins through the last,
    drawn only where the model is above chance; the hover gives its 95% interval and share of
    items), and on the ``prize`` panels a diamond marks the divergence layer, the first block
    where the prize prompt pulls the prize's answer pair toward its distractor, against the
    no_distractor prompt on the same pair (:mod:`probes.analysis.decision`). Without ``task`` and
    ``variant``, the figure holds every (task, variant) and a menu picks which one shows.

    Raises:
        ReportError: ``task`` or ``variant`` is not in the results.
    """
    panels = _panels(results, task, variant)
    summary = layer_summary(results)
    decision = decision_table(results, n_resamples=200)
    divergence = divergence_table(results)
    models, colours, labels = model_order(results), model_colours(model_order(results)), model_labels(results)
    fig = make_subplots(rows=len(TRAJECTORY_MEASURES), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    spans = []
    for index, (panel_task, panel_variant) in enumerate(panels):
        start = len(fig.data)
        rows = summary[(summary["task"] == panel_task) & (summary["variant"] == panel_variant)]
        for model in models:
            line = rows[rows["model"] == model]
            if line.empty:
                continue
            for row, measure in enumerate(TRAJECTORY_MEASURES, start=1):
                fig.add_trace(
                    go.Scatter(
                        x=line["relative_depth"].tolist(),
                        y=line[measure].tolist(),
                        customdata=line["layer"].tolist(),
                        mode="lines+markers",
                        name=labels[model],
                        legendgroup=model,
                        showlegend=row == 1,
                        visible=index == 0,
                        line={"color": colours[model]},
                        marker={"color": colours[model], "size": 5},
                        hovertemplate=f"{model}<br>layer %{{customdata}} (depth %{{x:.2f}})"
                        f"<br>{TRAJECTORY_MEASURES[measure]} %{{y:.3f}}<extra></extra>",
                    ),
                    row=row,
                    col=1,
                )
            markers = [
                _decision_marker(decision, line, model, panel_task, panel_variant, colours[model]),
                _divergence_marker(divergence, line, model, panel_task, panel_variant, colours[model]),
            ]
            for marker in markers:
                if marker is not None:
                    marker.visible = index == 0
                    fig.add_trace(marker, row=1, col=1)
        spans.append((start, len(fig.data)))
    fig.add_hline(y=0, line={"color": "grey", "width": 1}, row=1, col=1)
    for row, title in enumerate(TRAJECTORY_MEASURES.values(), start=1):
        if row == 1 and len(summary):
            title = f"{title} ({SCORE_NAMES[summary['score'].iloc[0]]})"
        fig.update_yaxes(title_text=title, row=row, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], row=2)
    fig.update_yaxes(range=[-0.03, 1.03], row=3)
    fig.update_xaxes(range=[-0.02, 1.02])
    fig.update_xaxes(title_text="relative depth (layer / blocks)", row=len(TRAJECTORY_MEASURES), col=1)
    title = _trajectory_title(*panels[0])
    if len(panels) > 1:
        fig.update_layout(updatemenus=[_panel_menu(panels, spans, len(fig.data))])
    return finish(fig, title, height=820, width=900)


def _panels(results: pd.DataFrame, task: str | None, variant: str | None) -> list[tuple[str, str]]:
    """The (task, variant) pairs a trajectory figure holds."""
    tasks, variants = task_order(results), variant_order(results)
    for name, value, known in (("task", task, tasks), ("variant", variant, variants)):
        if value is not None and value not in known:
            raise ReportError(f"{name} {value!r} is not in the results; they hold {known}.")
    present = set(zip(results["task"], results["variant"]))
    return [
        (t, v)
        for t in tasks
        for v in variants
        if (t, v) in present and task in (None, t) and variant in (None, v)
    ]


def _decision_marker(
    decision: pd.DataFrame, line: pd.DataFrame, model: str, task: str, variant: str, colour: str
) -> go.Scatter | None:
    """A star on a model's log-odds line at its median decision layer (None if it has none)."""
    at = (decision["model"] == model) & (decision["task"] == task) & (decision["variant"] == variant)
    rows = decision[at]
    if rows.empty or not pd.notna(rows["decision_layer"].iloc[0]):
        return None
    row = rows.iloc[0]
    detail = (
        f"[95% CI {row['decision_layer_low']:g}, {row['decision_layer_high']:g}]: median over the "
        f"{row['share_with_decision_layer']:.0%} of items that have one"
    )
    return _layer_marker(row, "decision", line, model, colour, ("star", 14), detail)


def _divergence_marker(
    divergence: pd.DataFrame, line: pd.DataFrame, model: str, task: str, variant: str, colour: str
) -> go.Scatter | None:
    """A diamond on a model's prize log-odds line at its divergence layer (None if none)."""
    if variant != PRIZE or divergence.empty:
        return None
    rows = divergence[(divergence["model"] == model) & (divergence["task"] == task)]
    if rows.empty or not pd.notna(rows["divergence_layer"].iloc[0]):
        return None
    row = rows.iloc[0]
    detail = (
        f"the prize prompt pulls the answer pair toward the distractor, against the no_distractor prompt, "
        f"by {row['divergence_effect']:+.2f} nats [simultaneous 95% CI {row['divergence_effect_low']:+.2f}, "
        f"{row['divergence_effect_high']:+.2f}] over {row['n_pairs']} paired items"
    )
    return _layer_marker(row, "divergence", line, model, colour, ("diamond", 12), detail)


def _layer_marker(
    row: pd.Series,
    kind: str,
    line: pd.DataFrame,
    model: str,
    colour: str,
    symbol: tuple[str, int],
    detail: str,
) -> go.Scatter:
    """A marker on a model's log-odds line at its ``kind`` layer (``row[f"{kind}_layer"]``), with
    ``detail`` (its interval) on hover."""
    depth, layer = float(row[f"{kind}_relative_depth"]), float(row[f"{kind}_layer"])
    height = float(np.interp(depth, line["relative_depth"], line["mean_log_odds"]))
    return go.Scatter(
        x=[depth],
        y=[height],
        mode="markers",
        name=f"{model} {kind} layer",
        legendgroup=model,
        showlegend=False,
        marker={
            "symbol": symbol[0],
            "size": symbol[1],
            "color": colour,
            "line": {"color": "black", "width": 1},
        },
        hovertemplate=f"{model}<br>{kind} layer {layer:g} (depth {depth:.2f}) {detail}<extra></extra>",
    )


def _trajectory_title(task: str, variant: str) -> str:
    return f"Layer trajectories: {task} / {variant}"


def _panel_menu(panels: list[tuple[str, str]], spans: list[tuple[int, int]], n_traces: int) -> dict:
    """A dropdown that shows one (task, variant)'s traces at a time."""
    buttons = []
    for (task, variant), (start, stop) in zip(panels, spans):
        visible = [start <= i < stop for i in range(n_traces)]
        buttons.append(
            {
                "label": f"{task} / {variant}",
                "method": "update",
                "args": [{"visible": visible}, {"title.text": _trajectory_title(task, variant)}],
            }
        )
    return menu(buttons)
