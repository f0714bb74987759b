"""Figures of the reasoning-depth study: where a k-step answer becomes readable, and how many steps fit.

Each function is pure: a table of :mod:`probes.analysis.reasoning` in, a plotly Figure out. Models are
ordered shallow to deep (by ``n_layers``) and keep one colour in every figure.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from probes.cli.display import plural
from probes.report.style import finish, model_colours
from probes.report.tables import ReportError


def _models_by_depth(table: pd.DataFrame) -> list[str]:
    """The table's models, shallow to deep (then by name)."""
    depths = table.groupby("model")["n_layers"].first()
    return sorted(depths.index, key=lambda model: (int(depths[model]), model))


def _check(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in table.columns]
    if table.empty or missing:
        raise ReportError(
            f"the {what} table is empty or lacks {missing}; compute it with probes.analysis.reasoning first."
        )


def first_decodable_depth(summary: pd.DataFrame, measure: str = "median") -> go.Figure:
    """Relative depth of the first decodable layer (y) against the step count k (x), per model.

    One panel per task, one line per model (shallow dark, deep light). A point is the ``measure``
    (``"median"`` or ``"mean"``) over the items whose answer is right at the last layer; hover shows
    the accuracy and that share. Points with no decodable item are left out. If depth must grow
    with the number of steps, the lines rise with k.

    Raises:
        ReportError: the summary is empty or not a :func:`probes.analysis.reasoning.depth_summary`.
    """
    column = f"{measure}_first_decodable_relative_depth"
    _check(summary, ["model", "task", "steps", "n_layers", "accuracy", column], "depth summary")
    tasks = sorted(summary["task"].unique())
    models = _models_by_depth(summary)
    colours = model_colours(models)
    fig = make_subplots(
        rows=1, cols=len(tasks), shared_yaxes=True, subplot_titles=tasks, horizontal_spacing=0.04
    )
    for col, task in enumerate(tasks, start=1):
        for model in models:
            rows = summary[(summary["task"] == task) & (summary["model"] == model)].sort_values("steps")
            rows = rows[rows[column].notna()]
            if rows.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["steps"],
                    y=rows[column],
                    mode="lines+markers",
                    name=f"{model} ({plural(int(rows['n_layers'].iloc[0]), 'layer')})",
                    legendgroup=model,
                    showlegend=col == 1,
                    line={"color": colours[model]},
                    customdata=rows[["accuracy", "share_decodable", f"{measure}_first_decodable_layer"]],
                    hovertemplate=f"{model}<br>k = %{{x}}<br>relative depth %{{y:.2f}} "
                    "(layer %{customdata[2]:.1f})<br>accuracy %{customdata[0]:.2f}, decodable "
                    "%{customdata[1]:.2f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="steps k", dtick=1)
    fig.update_yaxes(range=[-0.05, 1.05])
    fig.update_yaxes(title_text=f"{measure} first decodable relative depth", col=1)
    return finish(
        fig, "First decodable depth vs number of steps", height=460, width=max(700, 330 * len(tasks) + 200)
    )


def steps_solved_by_layers(solved: pd.DataFrame) -> go.Figure:
    """The largest k solved (y) against the number of layers (x), one line per task.

    The dotted diagonal k = layers is the O(l) reference: one step per layer.

    Raises:
        ReportError: the table is empty or not a :func:`probes.analysis.reasoning.steps_solved`.
    """
    _check(solved, ["model", "task", "n_layers", "steps_solved", "threshold"], "steps-solved")
    fig = go.Figure()
    layers = sorted(solved["n_layers"].unique())
    tested = int(solved["max_steps_tested"].max()) if "max_steps_tested" in solved else max(layers)
    top = max(layers[-1], tested)
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            name="k = layers",
            line={"dash": "dot", "color": "grey"},
            hoverinfo="skip",
        )
    )
    for index, task in enumerate(sorted(solved["task"].unique())):
        rows = solved[solved["task"] == task].sort_values("n_layers")
        fig.add_trace(
            go.Scatter(
                x=rows["n_layers"],
                y=rows["steps_solved"],
                mode="lines+markers",
                name=task,
                line={"color": qualitative.D3[index % len(qualitative.D3)]},
                text=rows["model"],
                hovertemplate=f"{task}<br>%{{text}}: %{{x}} layers<br>k solved %{{y}}<extra></extra>",
            )
        )
    threshold = float(solved["threshold"].iloc[0])
    fig.update_xaxes(title_text="layers", dtick=1, range=[0, layers[-1] + 0.5])
    fig.update_yaxes(
        title_text=f"largest k with accuracy ≥ {threshold:g} for every k' ≤ k",
        dtick=1,
        range=[-0.2, top + 0.5],
    )
    return finish(fig, "Steps solved vs layers", height=460, width=760)


def step_readouts(step_summary: pd.DataFrame, task: str, steps: int) -> go.Figure:
    """Mean probability (among the options) of the value after each step j, against relative depth.

    One panel per model (shallow to deep), one line per step j = 0 … k for items of ``task`` with
    ``steps`` = k: if the model computes step by step, step j's value should peak before j + 1's.

    Raises:
        ReportError: no rows for that task and k.
    """
    _check(
        step_summary, ["model", "task", "steps", "step", "relative_depth", "mean_probability"], "step readout"
    )
    rows = step_summary[(step_summary["task"] == task) & (step_summary["steps"] == steps)]
    if rows.empty:
        raise ReportError(
            f"no step readout for task {task!r} with k = {steps}; pick a task and k that were run."
        )
    models = _models_by_depth(rows)
    fig = make_subplots(
        rows=1, cols=len(models), shared_yaxes=True, subplot_titles=models, horizontal_spacing=0.03
    )
    for col, model in enumerate(models, start=1):
        for step in range(steps + 1):
            line = rows[(rows["model"] == model) & (rows["step"] == step)].sort_values("relative_depth")
            fig.add_trace(
                go.Scatter(
                    x=line["relative_depth"],
                    y=line["mean_probability"],
                    mode="lines+markers",
                    name="start" if step == 0 else f"step {step}" + (" (answer)" if step == steps else ""),
                    legendgroup=str(step),
                    showlegend=col == 1,
                    line={"color": qualitative.Plotly[step % len(qualitative.Plotly)]},
                    hovertemplate=f"{model}, step {step}<br>depth %{{x:.2f}}<br>p %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="relative depth", range=[-0.05, 1.05])
    fig.update_yaxes(title_text="mean p among options", col=1)
    return finish(
        fig,
        f"Lens readout of each step's value: {task}, k = {steps}",
        height=420,
        width=max(700, 260 * len(models) + 200),
    )
