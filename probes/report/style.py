"""What every report figure shares: colours, size labels, the size axis and its switch.

A variant keeps one colour in every figure and a model one colour (dark to light with size),
so a reader who has learnt one figure can read the next without its legend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from probes.cli import display
from probes.report.tables import SIZE_AXES, available_axes, check_axis, model_sizes

#: Template of every figure (white background, prints well).
TEMPLATE = "plotly_white"
#: Colours of the report's variants, in :func:`probes.report.tables.variant_order`.
VARIANT_COLOURS = qualitative.D3
#: Colour scale of model size (smallest dark, largest light) and of log-odds (diverging).
SIZE_SCALE = "Viridis"
LOG_ODDS_SCALE = "RdBu"


#: Dash and marker of each variant, so that series that coincide (prize and one_shot often do)
#: stay distinguishable in grey print and for colour-blind readers: (dash, marker symbol, size).
#: The solid line and filled circle lie underneath; the others are open markers drawn on top.
VARIANT_MARKS: dict[str, tuple[str, str, int]] = {
    "prize": ("solid", "circle", 10),
    "one_shot": ("dash", "square-open", 9),
    "cot": ("dot", "diamond-open", 10),
    "no_distractor": ("dashdot", "triangle-up-open", 10),
}
#: Fill pattern of each variant's bars (the same role as its dash), then the others in turn.
VARIANT_PATTERNS = {"prize": "", "one_shot": "/", "cot": ".", "no_distractor": "x"}
_OTHER_PATTERNS = ["\\", "-", "|", "+"]
#: Marks of variants beyond :data:`VARIANT_MARKS`, in turn.
_OTHER_MARKS = [("longdash", "x-thin-open", 9), ("longdashdot", "star-open", 10), ("solid", "cross-open", 9)]


def variant_colours(variants: Sequence[str]) -> dict[str, str]:
    """A colour per variant, in order."""
    return {v: VARIANT_COLOURS[i % len(VARIANT_COLOURS)] for i, v in enumerate(variants)}


def variant_styles(variants: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per variant, the ``line``, ``marker`` and ``bar`` (marker of a bar trace) of its series: a
    colour *and* a dash, a marker symbol and a fill pattern."""
    colours = variant_colours(variants)
    others = iter(_OTHER_MARKS * (1 + len(variants)))
    patterns = iter(_OTHER_PATTERNS * (1 + len(variants)))
    styles = {}
    for variant in variants:
        dash, symbol, size = VARIANT_MARKS.get(variant) or next(others)
        colour = colours[variant]
        pattern = VARIANT_PATTERNS[variant] if variant in VARIANT_PATTERNS else next(patterns)
        styles[variant] = {
            "bar": {"color": colour, "pattern": {"shape": pattern, "fgcolor": "white", "solidity": 0.3}},
            "line": {"color": colour, "dash": dash, "width": 2},
            "marker": {
                "color": colour,
                "symbol": symbol,
                "size": size,
                "line": {"color": colour, "width": 2},
            },
        }
    return styles


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """A colour per model from :data:`SIZE_SCALE`, smallest first (so larger is lighter)."""
    if len(models) == 1:
        return {models[0]: sample_colorscale(SIZE_SCALE, [0.0])[0]}
    points = [0.9 * i / (len(models) - 1) for i in range(len(models))]  # the scale's end is too pale
    return dict(zip(models, sample_colorscale(SIZE_SCALE, points)))


def human_count(value: float) -> str:
    """A parameter or token count as the listings print it (``1.1K``, ``162M``, ``1.4B``):
    :func:`probes.cli.display.human_count`, one formatter for the listings and the report."""
    return display.human_count(value if pd.notna(value) else None)


def human_size(axis: str, value: float) -> str:
    """A value of a size axis as the listings print it: FLOPs with an SI prefix (``9.6 GFLOP``),
    counts in K/M/B/T, perplexity to two decimals; ``–`` when unknown."""
    if not pd.notna(value):
        return display.MISSING
    if axis.startswith("training_flops"):
        return display.human_flops(float(value))
    if axis == "perplexity":
        return f"{float(value):.2f}"
    return display.human_count(float(value))


def model_labels(results: pd.DataFrame) -> dict[str, str]:
    """Per model, its name with its parameter count: ``"pythia-160m (162M)"``."""
    sizes = model_sizes(results)
    if "parameters" not in sizes.columns:
        return {model: model for model in sizes.index}
    return {model: f"{model} ({human_count(sizes.loc[model, 'parameters'])})" for model in sizes.index}


def size_values(sizes: pd.DataFrame, axis: str, models: Sequence[str]) -> list[float | None]:
    """Each model's value on a size axis (None where unknown, so plotly leaves a gap).

    Args:
        sizes: :func:`probes.report.tables.model_sizes` of the results.
        axis: One of :data:`probes.report.tables.SIZE_AXES`.
        models: The models, in the trace's order.
    """
    values = sizes[axis]
    return [float(values[m]) if pd.notna(values[m]) and values[m] > 0 else None for m in models]


def size_axis_layout(axis: str) -> dict[str, Any]:
    """Layout of an x axis showing ``axis``: log scale; perplexity reversed (better to the right)."""
    layout: dict[str, Any] = {
        "type": "log",
        "title": {"text": SIZE_AXES[axis]},
        "autorange": "reversed" if axis == "perplexity" else True,
    }
    if axis != "perplexity":  # decades labelled as the listings print them (1K, 10M, 9.6 GFLOP)
        decades = [10.0**power for power in range(28)]
        layout.update(tickmode="array", tickvals=decades, ticktext=[human_size(axis, v) for v in decades])
    return layout


def use_size_axis(fig: go.Figure, results: pd.DataFrame, axis: str) -> None:
    """Put ``axis`` on every x axis of ``fig`` and add a menu that switches between the known axes.

    Every trace drawn against size must carry its models, smallest first, as ``customdata``:
    the menu recomputes each trace's x from them, so no trace has to be drawn twice.

    Raises:
        ReportError: ``axis`` is unknown or no model has a value on it.
    """
    check_axis(results, axis)
    x_axes = [x_axis.plotly_name for x_axis in fig.select_xaxes()]
    # Shared x axes show tick labels (and so get a title) on the bottom row only.
    titled = {x_axis.plotly_name for x_axis in fig.select_xaxes() if x_axis.showticklabels is not False}
    for name in x_axes:
        fig.layout[name].update(_axis_layout(axis, name in titled))
    choices = available_axes(results)
    if len(choices) < 2:
        return
    sized = [i for i, trace in enumerate(fig.data) if trace.customdata is not None]
    sizes = model_sizes(results)
    buttons = []
    for choice in choices:
        xs = [size_values(sizes, choice, list(fig.data[i].customdata)) for i in sized]
        relayout = {
            f"{name}.{key}": value
            for name in x_axes
            for key, value in _flat(_axis_layout(choice, name in titled)).items()
        }
        buttons.append({"label": SIZE_AXES[choice], "method": "update", "args": [{"x": xs}, relayout, sized]})
    fig.update_layout(updatemenus=[menu(buttons, choices.index(axis))])


def menu(buttons: list[dict[str, Any]], active: int = 0) -> dict[str, Any]:
    """A dropdown at the plots' top left, between the figure's title (the line above it, see
    :func:`finish`) and the plots, so that it never covers the title however long."""
    return {
        "buttons": buttons,
        "active": active,
        "direction": "down",
        "showactive": True,
        "x": 0.0,
        "xanchor": "left",
        "y": 1.0,
        "yanchor": "bottom",
        "pad": {"b": 36},
    }


def _axis_layout(axis: str, titled: bool) -> dict[str, Any]:
    layout = size_axis_layout(axis)
    if not titled:
        layout["title"] = {"text": ""}
    return layout


def _flat(layout: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in layout.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def error_bars(centre: pd.Series, low: pd.Series, high: pd.Series) -> dict[str, Any]:
    """Asymmetric plotly error bars from an interval's ends."""
    return {
        "type": "data",
        "symmetric": False,
        "array": (high - centre).clip(lower=0).tolist(),
        "arrayminus": (centre - low).clip(lower=0).tolist(),
        "thickness": 1.2,
        "width": 3,
    }


#: Widest figure, legend and colour bar included: a 1400 px window shows all of it.
MAX_WIDTH = 1300


def finish(fig: go.Figure, title: str, height: int, width: int | None = None) -> go.Figure:
    """The report's common layout: template, title, legend at the right, fixed size for PNG export
    (at most :data:`MAX_WIDTH` wide: figures of many panels narrow them rather than clip)."""
    width = min(width, MAX_WIDTH) if width else width
    fig.update_layout(
        template=TEMPLATE,
        # the title on the top line, over the plot's left edge; the menu (if any) below it
        title={
            "text": title,
            "x": 0.0,
            "xref": "paper",
            "xanchor": "left",
            "y": 1.0,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 18},
        },
        height=height,
        width=width,
        margin={"t": 110, "l": 70, "r": 40, "b": 60},
        legend={"x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"},
        hovermode="closest",
    )
    return fig


def verdict_marks(verdicts: Sequence[float], counted: Sequence[bool] | None = None) -> str:
    """One mark per model: ✓ right, ✗ wrong, ½ a tie (half right); with ``counted``, the marks
    not compared for flips (:func:`probes.report.tables.item_flips`) in parentheses."""
    marks = ["✓" if v == 1 else "✗" if v == 0 else "½" for v in verdicts]
    if counted is not None:
        marks = [mark if count else f"({mark})" for mark, count in zip(marks, counted)]
    return " ".join(marks)
