"""Figures and the page of the ablation study: attribution heat maps, patching curves, ablation vs k.

Like the lens report's figures, each is a pure function of a table (the per-item tables of
:mod:`probes.ablate.study`, several models at once) to a plotly ``Figure``; models are ordered
smallest first by the order given (the store's manifest knows the sizes). Blue means the part
favours the true answer, red the distractor, as in the lens report's depth heat map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from probes.ablate.patching import POSITIONS
from probes.ablate.summary import (
    MIN_GAP,
    ablation_effects,
    distractor_pushers,
    mean_attribution,
    patching_curve,
)
from probes.report.study_page import Panel, load_study_tables, write_study_page
from probes.report.style import LOG_ODDS_SCALE, MAX_WIDTH, finish, model_colours
from probes.report.summary import markdown_table

#: The tables the page draws from, by kind.
KINDS = ("attribution", "ablation", "patching", "patching_unpaired")


def ordered_models(models: Sequence[str], order: Sequence[str]) -> list[str]:
    """The distinct ``models``, in ``order`` (smallest first), then any it lacks in order of appearance."""
    present = list(dict.fromkeys(models))
    return [m for m in order if m in present] + [m for m in present if m not in order]


#: Most model panels side by side in a heat-map figure; more continue on a further row.
PANELS_PER_ROW = 4
#: Widest figure on the page (:data:`probes.report.style.MAX_WIDTH`).
PAGE_WIDTH = MAX_WIDTH


def _first_panel(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Rows of the first task and variant, and a title suffix naming them."""
    task, variant = table["task"].iloc[0], table["variant"].iloc[0]
    return table[(table["task"] == task) & (table["variant"] == variant)], f"{task} / {variant}"


def head_heatmap(
    values: pd.DataFrame, value: str, order: Sequence[str] = (), title: str = "", colour_title: str = ""
) -> go.Figure:
    """Layer × head heat maps of ``value``, one panel per model (columns: heads, then any MLP).

    ``values`` holds one row per model and component with ``kind`` ``head`` (``layer``,
    ``head``) or ``mlp`` (``layer``), e.g. :func:`probes.ablate.summary.mean_attribution`.
    """
    models = ordered_models(values["model"], order)
    columns = min(len(models), PANELS_PER_ROW)
    n_rows = -(-len(models) // columns)
    fig = make_subplots(
        rows=n_rows, cols=columns, subplot_titles=models, horizontal_spacing=0.05, vertical_spacing=0.12
    )
    cells = values[values["kind"].isin(["head", "mlp"])]
    limit = float(cells[value].abs().max()) if len(cells) else 1.0
    drawn = cells[cells[value].notna()]["model"]
    scaled = next((m for m in reversed(models) if (drawn == m).any()), models[-1])
    for index, model in enumerate(models):
        place = {"row": 1 + index // columns, "col": 1 + index % columns}
        rows = cells[cells["model"] == model]
        heads = int(rows["head"].max()) + 1 if rows["head"].notna().any() else 0
        labels = [f"H{h}" for h in range(heads)] + (["MLP"] if (rows["kind"] == "mlp").any() else [])
        layers = sorted(int(layer) for layer in rows["layer"].dropna().unique())
        grid = pd.DataFrame(index=layers, columns=labels, dtype=float)
        for row in rows.itertuples():
            grid.loc[int(row.layer), "MLP" if row.kind == "mlp" else f"H{int(row.head)}"] = getattr(
                row, value
            )
        fig.add_trace(
            go.Heatmap(
                z=grid.to_numpy(),
                x=labels,
                y=[f"L{layer}" for layer in layers],
                zmid=0,
                zmin=-limit,
                zmax=limit,
                colorscale=LOG_ODDS_SCALE,
                showscale=model == scaled,  # one colour bar, on a panel with values to draw
                colorbar={
                    "title": {"text": colour_title},
                    "len": min(1.0, 1.1 / n_rows),
                    "y": 1.0,
                    "yanchor": "top",
                },
                hovertemplate=f"{model}<br>%{{y}} %{{x}}<br>{value} %{{z:.3f}}<extra></extra>",
            ),
            **place,
        )
        fig.update_yaxes(autorange="reversed", **place)
    # at most PANELS_PER_ROW panels side by side: the figure (and its colour bar) fits a 1400 px page
    return finish(fig, title, height=120 + 320 * n_rows, width=min(PAGE_WIDTH, max(700, 280 * columns + 160)))


def attribution_heatmap(attribution: pd.DataFrame, order: Sequence[str] = ()) -> go.Figure:
    """Mean direct logit attribution per head and MLP, layer × head, one panel per size."""
    rows, panel = _first_panel(attribution)
    return head_heatmap(
        mean_attribution(rows),
        "attribution",
        order,
        f"Direct logit attribution to true − distractor ({panel}); red pushes the distractor",
        "mean attribution",
    )


def patching_heads_heatmap(
    patching: pd.DataFrame, order: Sequence[str] = (), positions: str = "answer"
) -> go.Figure:
    """Share of the log-odds gap restored by patching each head from the twin, per size."""
    rows, panel = _first_panel(patching[patching["positions"] == positions])
    curve = patching_curve(rows[rows["site"] == "head"])
    title = f"Patching each head from its no-distractor twin at the {positions} positions ({panel})"
    return head_heatmap(curve.assign(kind="head"), "restored", order, title, "share restored")


def patching_figure(patching: pd.DataFrame, order: Sequence[str] = ()) -> go.Figure:
    """Share of the log-odds gap restored by patching the residual stream, against relative depth.

    One panel per positions mode (answer position only; the shared suffix; all positions).
    """
    rows, panel = _first_panel(patching)
    curve = patching_curve(rows[rows["site"] == "resid"])
    modes = list(dict.fromkeys(curve["positions"]))
    models = ordered_models(curve["model"], order)
    colours = model_colours(models)
    fig = make_subplots(
        rows=1, cols=len(modes), shared_yaxes=True, subplot_titles=[f"patched: {m} positions" for m in modes]
    )
    for column, mode in enumerate(modes, start=1):
        for model in models:
            line = curve[(curve["model"] == model) & (curve["positions"] == mode)].sort_values("layer")
            fig.add_trace(
                go.Scatter(
                    x=line["relative_depth"],
                    y=line["restored"],
                    mode="lines+markers",
                    name=model,
                    legendgroup=model,
                    showlegend=column == 1,
                    line={"color": colours[model]},
                    customdata=line[["layer", "gap", "n_items"]],
                    hovertemplate=f"{model}<br>layer %{{customdata[0]}} (relative %{{x:.2f}})<br>restored "
                    "%{y:.2f} of a mean gap %{customdata[1]:.2f} (%{customdata[2]} items)<extra></extra>",
                ),
                row=1,
                col=column,
            )
        fig.update_xaxes(title="relative depth (0 = embeddings)", range=[-0.03, 1.03], row=1, col=column)
    for level in (0, 1):
        fig.add_hline(y=level, line_dash="dot", line_color="#999")
    fig.update_yaxes(title="share of the item→twin log-odds gap restored", row=1, col=1)
    title = f"Residual-stream patching from the no-distractor twin ({panel})"
    return finish(fig, title, height=460, width=max(900, 520 * len(modes)))


def ablation_figure(ablation: pd.DataFrame, order: Sequence[str] = ()) -> go.Figure:
    """Change in accuracy and log-odds when the top-k distractor heads or k random heads are ablated."""
    rows, panel = _first_panel(ablation)
    effects = ablation_effects(rows[rows["selection"].isin(["top", "random"])])
    models = ordered_models(effects["model"], order)
    fig = make_subplots(
        rows=2, cols=len(models), subplot_titles=models, shared_yaxes="rows", vertical_spacing=0.12,
        horizontal_spacing=0.03,
    )  # fmt: skip
    styles = {
        "top": ("#d62728", "top-k distractor heads (attribution)"),
        "random": ("#7f7f7f", "k random heads"),
    }
    for column, model in enumerate(models, start=1):
        for selection, (colour, name) in styles.items():
            line = effects[(effects["model"] == model) & (effects["selection"] == selection)].sort_values("k")
            for row, (measure, spread) in enumerate(
                (("accuracy_change", "accuracy_std"), ("delta", "delta_std")), 1
            ):
                fig.add_trace(
                    go.Scatter(
                        x=line["k"],
                        y=line[measure],
                        error_y={"type": "data", "array": line[spread].fillna(0).tolist(), "visible": True},
                        mode="lines+markers",
                        name=name,
                        legendgroup=selection,
                        showlegend=column == 1 and row == 1,
                        line={"color": colour},
                        hovertemplate=f"{model} {name}<br>k %{{x}}<br>{measure} %{{y:.3f}}<extra></extra>",
                    ),
                    row=row,
                    col=column,
                )
        ks = sorted(effects.loc[effects["model"] == model, "k"].unique())
        fig.update_xaxes(tickvals=ks, title="k heads ablated", row=2, col=column)
        fig.update_xaxes(tickvals=ks, row=1, col=column)
    fig.update_yaxes(title="Δ accuracy", row=1, col=1)
    fig.update_yaxes(title="Δ log-odds", row=2, col=1)
    method = ", ".join(sorted(set(rows["method"][rows["selection"].isin(["top", "random"])])))
    title = f"Ablating k heads ({method} ablation; bars: s.d. over random draws; {panel})"
    return finish(fig, title, height=620, width=min(PAGE_WIDTH, max(800, 200 * len(models) + 200)))


#: The page's figures, in reading order.
PANELS: tuple[Panel, ...] = (
    Panel(
        "attribution",
        "Direct logit attribution per head and MLP",
        "Each head's and MLP's direct contribution to logit(true) − logit(distractor) at the answer "
        "position, averaged over items, with the final norm's scale frozen from the clean run "
        "(first answer token for multi-token answers). Red parts push the distractor.",
    ),
    Panel(
        "ablation",
        "Ablating the top-k distractor heads against k random heads",
        "Change in accuracy and mean log-odds when the k heads of most negative attribution are "
        "ablated together, against k heads drawn at random (mean and s.d. over draws). Heads are "
        "ranked on the same items they are ablated on, which favours the top-k set; beyond the "
        "number of heads with negative attribution (column distractor_heads) the top set also "
        "holds heads that favour the true answer.",
    ),
    Panel(
        "patching",
        "Residual-stream patching from the no-distractor twin",
        "Share of the log-odds gap between an item and its no-distractor twin that patching the "
        "residual stream from the twin restores, by relative depth: at the answer position only, "
        "and at every position the two prompts share counted back from it (suffix). No point "
        f"where the mean gap is under {MIN_GAP:g} nats (too small to divide by).",
    ),
    *(
        Panel(
            f"patching-heads-{mode}",
            f"Patching each head from the twin ({mode} positions)",
            "Share of the same gap restored by patching one head's output from the twin; blank "
            f"where the mean item-to-twin gap is under {MIN_GAP:g} nats (too small to divide by).",
        )
        for mode in POSITIONS
    ),
)


def ablation_figures(tables: dict[str, pd.DataFrame], order: Sequence[str] = ()) -> dict[str, go.Figure]:
    """The page's figures by panel name, for the kinds present in ``tables``."""
    figures: dict[str, go.Figure] = {}
    if len(tables.get("attribution", ())):
        figures["attribution"] = attribution_heatmap(tables["attribution"], order)
    ablation = tables.get("ablation")
    if ablation is not None and ablation["selection"].isin(["top", "random"]).any():
        figures["ablation"] = ablation_figure(ablation, order)
    patching = tables.get("patching")
    if patching is not None and len(patching):
        figures["patching"] = patching_figure(patching, order)
        heads = patching[patching["site"] == "head"]
        for mode in dict.fromkeys(heads["positions"]):
            figures[f"patching-heads-{mode}"] = patching_heads_heatmap(patching, order, mode)
    return figures


def ablation_markdown(tables: dict[str, pd.DataFrame], order: Sequence[str] = ()) -> str:
    """Key numbers of the study in Markdown: distractor pushers, ablation effects, patching curve."""
    lines = ["# Ablations", ""]
    rank = {m: i for i, m in enumerate(order)}

    def by_size(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(
            "model", key=lambda c: c.map(lambda m: rank.get(m, len(rank))), kind="stable"
        )

    if len(tables.get("attribution", ())):
        pushers = by_size(distractor_pushers(tables["attribution"]))
        lines += ["## Parts that push the distractor most (mean direct logit attribution)", ""]
        lines += markdown_lines(pushers, ["model", "task", "component", "attribution"])
    if len(tables.get("ablation", ())):
        effects = by_size(ablation_effects(tables["ablation"]))
        lines += ["## Ablation effects", ""]
        columns = ["model", "task", "selection", "method", "k", "components", "accuracy_clean",
                   "accuracy_ablated", "accuracy_change", "delta"]  # fmt: skip
        lines += markdown_lines(effects, columns)
    if len(tables.get("patching", ())):
        curve = patching_curve(tables["patching"])
        curve = by_size(curve[curve["site"] == "resid"])
        lines += ["## Residual patching from the no-distractor twin (share of the gap restored)", ""]
        columns = ["model", "task", "positions", "layer", "relative_depth", "gap", "restored"]
        lines += markdown_lines(curve, columns)
    unpaired = tables.get("patching_unpaired")
    if unpaired is not None and len(unpaired):
        counts = unpaired.groupby(["model", "task", "reason"], as_index=False).size()
        lines += ["## Items without a usable twin (not patched)", ""]
        lines += markdown_lines(counts, list(counts.columns))
    return "\n".join(lines) + "\n"


def markdown_lines(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """``columns`` of ``frame`` as Markdown lines (numbers to 3 significant digits), then a blank line."""

    def cell(value: object) -> object:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.3g}"
        return value

    rows = [[cell(v) for v in record] for record in frame[columns].itertuples(index=False)]
    return [markdown_table(columns, rows), ""]


def write_ablation_page(
    tables: dict[str, pd.DataFrame],
    folder: str | Path,
    order: Sequence[str] = (),
    png: bool = True,
    links: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``ablations.html``, ``ablations.md`` and (with ``png``) ``figures/ablation-*.png``.

    ``links`` (text, relative address) go into the page's contents bar (the lens report beside it).

    Raises:
        PngExportError: PNGs could not be drawn; the HTML and Markdown are written first.
    """
    summary = ablation_markdown(tables, order)
    figures = ablation_figures(tables, order)
    return write_study_page(
        folder, "ablations", "Ablations", PANELS, figures, summary, summary, png, links, "ablation"
    )


def load_ablation_tables(root: str | Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """A store's ablation tables by kind (those present), and its models smallest first."""
    return load_study_tables(root, KINDS)
