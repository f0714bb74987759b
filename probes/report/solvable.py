"""Figures of the uncapped depth measures: accuracy by k, solvable k by depth, step decodability.

Each function is pure: a table of :mod:`probes.analysis.solvable` or
:mod:`probes.analysis.step_probe` in, a plotly Figure out. Models are ordered shallow to deep
and keep one colour in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from probes.cli.display import plural
from probes.report.style import finish, model_colours
from probes.report.tables import ReportError

#: Line style of each fitted relation.
RELATION_DASH = {"constant": "dot", "logarithmic": "dash", "linear": "dashdot"}


def _check(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if table.empty or missing:
        raise ReportError(
            f"the {what} table is empty or lacks {missing}; compute it with probes.analysis.solvable first."
        )


def _legend_height(n_models: int, height: int) -> int:
    """``height``, or taller when the legend (one entry per model) would not fit beside the plot."""
    return max(height, 200 + 30 * n_models)


def _by_depth(table: pd.DataFrame) -> list[str]:
    depths = table.groupby("model")["n_layers"].first()
    return sorted(depths.index, key=lambda model: (int(depths[model]), model))


def accuracy_by_k(
    accuracy: pd.DataFrame, threshold: float | Sequence[float], chance: float | None = None
) -> go.Figure:
    """Last-layer accuracy (y, with Wilson intervals) against k (x), one line per model, with a
    dotted line at each threshold of solvable k.

    Raises:
        ReportError: the table is not a :func:`probes.analysis.solvable.accuracy_table`.
    """
    _check(accuracy, ["model", "n_layers", "steps", "accuracy", "accuracy_low", "accuracy_high"], "accuracy")
    models = _by_depth(accuracy)
    colours = model_colours(models)
    fig = go.Figure()
    for model in models:
        rows = accuracy[accuracy["model"] == model].sort_values("steps")
        fig.add_trace(
            go.Scatter(
                x=rows["steps"],
                y=rows["accuracy"],
                mode="lines+markers",
                name=f"{model} ({plural(int(rows['n_layers'].iloc[0]), 'layer')})",
                line={"color": colours[model]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["accuracy_high"] - rows["accuracy"],
                    "arrayminus": rows["accuracy"] - rows["accuracy_low"],
                    "thickness": 1,
                },
                hovertemplate=f"{model}<br>k = %{{x}}<br>accuracy %{{y:.2f}}<extra></extra>",
            )
        )
    for level in [threshold] if isinstance(threshold, (int, float)) else threshold:
        fig.add_hline(y=level, line={"dash": "dot", "color": "grey"}, annotation_text=f"solved at {level:g}")
    if chance is not None:
        fig.add_hline(y=chance, line={"dash": "dash", "color": "lightgrey"}, annotation_text="chance")
    fig.update_xaxes(title_text="steps k", dtick=1)
    fig.update_yaxes(title_text="last-layer accuracy (95% Wilson CI)", range=[-0.03, 1.03])
    return finish(
        fig, "Accuracy vs number of sequential steps", height=_legend_height(len(models), 460), width=820
    )


def solvable_by_depth(solvable: pd.DataFrame, fits: pd.DataFrame, curve: pd.DataFrame) -> go.Figure:
    """Solvable k (y, bootstrap CI) against layers (x), with the fitted relations and their weights,
    one panel per threshold (the tables' ``threshold`` column; fits and curve without one belong
    to the single threshold of ``solvable``).

    Censored models (they solve the largest k tested) are drawn as open triangles pointing up:
    their solvable k is a lower bound. Each fitted line's name gives its Akaike weight.

    Raises:
        ReportError: the tables are not :func:`probes.analysis.solvable.solvable_steps` and fits.
    """
    _check(
        solvable,
        ["model", "n_layers", "solvable_k", "solvable_k_low", "solvable_k_high", "censored", "threshold"],
        "solvable",
    )
    thresholds = sorted(solvable["threshold"].unique())
    if len(thresholds) > 1 and "threshold" not in fits.columns:
        raise ReportError("solvable k at several thresholds needs fits with a threshold column.")
    fig = make_subplots(
        rows=1,
        cols=len(thresholds),
        shared_yaxes=True,
        subplot_titles=[f"accuracy ≥ {threshold:g}" for threshold in thresholds],
    )
    for col, threshold in enumerate(thresholds, start=1):
        points = solvable[solvable["threshold"] == threshold]
        mine = fits if "threshold" not in fits.columns else fits[fits["threshold"] == threshold]
        line_of = curve if "threshold" not in curve.columns else curve[curve["threshold"] == threshold]
        for censored, symbol, label in (
            (False, "circle", "solvable k"),
            (True, "triangle-up-open", "≥ (censored)"),
        ):
            rows = points[points["censored"] == censored]
            if rows.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["n_layers"],
                    y=rows["solvable_k"],
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    marker={"symbol": symbol, "size": 10, "color": "black"},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": rows["solvable_k_high"] - rows["solvable_k"],
                        "arrayminus": rows["solvable_k"] - rows["solvable_k_low"],
                    },
                    text=rows["model"],
                    hovertemplate="%{text}: %{x} layers<br>solvable k %{y}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        for index, fit in enumerate(mine.itertuples(index=False)):
            line = line_of[line_of["relation"] == fit.relation].sort_values("n_layers")
            weight = "" if math.isnan(fit.akaike_weight) else f", w {fit.akaike_weight:.2f}"
            fig.add_trace(
                go.Scatter(
                    x=line["n_layers"],
                    y=line["solvable_k"],
                    mode="lines",
                    name=f"{fit.relation} at {threshold:g}{weight}",
                    line={"dash": RELATION_DASH.get(fit.relation, "solid"), "color": qualitative.D3[index]},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="layers", dtick=1)
    fig.update_yaxes(
        title_text="largest k with accuracy ≥ threshold for every k' ≤ k", col=1, rangemode="tozero"
    )
    return finish(
        fig,
        "Solvable steps vs depth at each threshold, with fitted relations (w: Akaike weight)",
        height=480,
        width=max(760, 420 * len(thresholds)),
    )


def step_decodability(first: pd.DataFrame, steps: int) -> go.Figure:
    """First decodable layer (y) of each step j's value (x) at one k, per model, one panel per readout.

    A point missing means the value never reaches the threshold at any layer. If a model computes
    the steps one after another in depth, its line rises with j.

    Raises:
        ReportError: no rows for that k, or not a
            :func:`probes.analysis.step_probe.first_decodable_layers` (or ``_intervals``) table.
    """
    _check(first, ["model", "steps", "step", "first_layer", "readout", "n_layers"], "step decodability")
    rows = first[first["steps"] == steps]
    if rows.empty:
        raise ReportError(f"no step decodability for k = {steps}; pick a k that was probed.")
    readouts = sorted(rows["readout"].unique())
    models = _by_depth(rows)
    colours = model_colours(models)
    fig = make_subplots(rows=1, cols=len(readouts), shared_yaxes=True, subplot_titles=readouts)
    for col, readout in enumerate(readouts, start=1):
        for model in models:
            line = rows[(rows["model"] == model) & (rows["readout"] == readout)].sort_values("step")
            fig.add_trace(
                go.Scatter(
                    x=line["step"],
                    y=line["first_layer"],
                    mode="lines+markers",
                    name=f"{model} ({plural(int(line['n_layers'].iloc[0]), 'layer')})"
                    if len(line)
                    else model,
                    legendgroup=model,
                    showlegend=col == 1,
                    line={"color": colours[model]},
                    customdata=line[["peak_score"]],
                    error_y=_interval_bars(line),
                    hovertemplate=f"{model}<br>step %{{x}}: first layer %{{y}}<br>peak score "
                    "%{customdata[0]:.2f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    threshold = float(rows["threshold"].iloc[0])
    fig.update_xaxes(title_text="step j (0 = start, k = answer)", dtick=1)
    fig.update_yaxes(title_text=f"first layer with score ≥ {threshold:g}", col=1, rangemode="tozero")
    return finish(
        fig,
        f"Where each step's value becomes decodable (k = {steps})",
        height=_legend_height(len(models), 460),
        width=max(760, 420 * len(readouts)),
    )


def _interval_bars(line: pd.DataFrame) -> dict[str, object] | None:
    """Error bars of first decodable layers from a table with bootstrap ends (``inf``: never,
    drawn up to one layer past the last), or None when the table has no intervals."""
    if not {"first_layer_low", "first_layer_high"} <= set(line.columns):
        return None
    ceiling = line["n_layers"] + 1
    high = line["first_layer_high"].where(line["first_layer_high"] <= line["n_layers"], ceiling)
    return {
        "type": "data",
        "symmetric": False,
        "array": (high - line["first_layer"]).fillna(0),
        "arrayminus": (line["first_layer"] - line["first_layer_low"]).fillna(0),
        "thickness": 1,
    }
