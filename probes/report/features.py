"""Figures and the page of the SAE feature study: the log-odds in feature terms, top features, checks.

Like the ablation page (:mod:`probes.report.ablations`), each figure is a pure function of the
study's tables (:mod:`probes.features.study`: ``features``, ``feature_items``,
``feature_ablation``, several models at once) to a plotly ``Figure``; the numbers come from
:mod:`probes.features.summary`. Models are ordered smallest first by the order given. Red is the
distractor, blue the true answer, as in the lens report's depth heat map.

Which layer: the identity figure draws every SAE layer of every model side by side (the model's
log-odds is the same at each; the split into terms is not); the top features, their items and
the top-k ablation use each model's last SAE layer, the one every size has.

Tokens and prompts are the study's own: the ``features`` table carries each peak token's text
(``token_text``, decoded by the model's tokenizer as the study ran) and ``feature_items`` each
item's prompt, so the page needs no tokenizer.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from probes.features.summary import (
    KEYS,
    ablation_comparison,
    attribution_check,
    feature_ranking,
    identity_terms,
    splice_check,
    token_totals,
    top_features,
)
from probes.report.ablations import markdown_lines, ordered_models
from probes.report.study_page import Panel, load_study_tables, write_study_page
from probes.report.style import MAX_WIDTH, error_bars, finish
from probes.report.tables import task_order, variant_order

#: The study's tables the page draws from, by kind.
KINDS = ("features", "feature_items", "feature_ablation")
#: Key of the recovered prompts in the tables (``task``, ``variant``, ``item_id``, ``prompt``).
PROMPTS = "prompts"
#: Features per side (distractor, true) in the top-feature figure and table.
TOP = 5
#: Items per top feature in the table of top activating items.
TOP_ITEMS = 3
#: Longest prompt shown in a cell of the items table (longer ones are cut, with an ellipsis).
PROMPT_CHARACTERS = 200
#: Variant of the figures of one variant, when the tables hold it.
FIRST_VARIANT = "prize"

RED, BLUE = "#d62728", "#1f77b4"
#: The identity's terms, bottom of the stack first: column, legend name, colour, fill pattern.
TERMS = (
    ("baseline", "baseline (every feature and the error off)", "#d9d9d9", ""),
    ("error", "SAE error term", "#7f7f7f", "."),
    ("distractor_features", "features pushing the distractor", RED, "/"),
    ("true_features", "features pushing the true answer", BLUE, ""),
    ("gap", "integration gap", "#8c564b", ""),
)


def short_names(models: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The models' shared prefix up to a separator (``"organism:"``) and each name without it."""
    shared = os.path.commonprefix(list(models))
    prefix = shared[: max(shared.rfind(mark) for mark in ":/-_") + 1]
    return prefix, {model: model[len(prefix) :] or model for model in models}


def _variant(table: pd.DataFrame, variant: str | None) -> str:
    """``variant`` if given, else :data:`FIRST_VARIANT` when present, else the first in report order."""
    if variant is not None:
        return variant
    present = variant_order(table)
    return FIRST_VARIANT if FIRST_VARIANT in present else present[0]


def last_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each model's last SAE layer."""
    last = table.groupby("model")["layer"].transform("max")
    return table[table["layer"] == last]


def _one_panel(table: pd.DataFrame, variant: str | None) -> tuple[pd.DataFrame, str]:
    """Rows of the first task, the variant (:func:`_variant`) and each model's last SAE layer, and a
    title suffix naming them."""
    task, variant = task_order(table)[0], _variant(table, variant)
    rows = table[(table["task"] == task) & (table["variant"] == variant)]
    return last_layers(rows), f"{task} / {variant}, last SAE layer"


def identity_figure(features: pd.DataFrame, items: pd.DataFrame, order: Sequence[str] = ()) -> go.Figure:
    """The mean log-odds as stacked terms, per model and SAE layer, one panel per task and variant.

    Bars (relative stacking, :func:`probes.features.summary.identity_terms`): the baseline, the SAE's
    error term, the features pushing the distractor (sum of the negative mean attributions), those
    pushing the true answer and the integration gap; they add up to the mean log-odds, drawn as a
    black diamond. The x axis groups each model's layers (``L<layer>``), smallest model first.
    """
    terms = identity_terms(features, items)
    tasks, variants = task_order(terms), variant_order(terms)
    models = ordered_models(terms["model"], order)
    prefix, short = short_names(models)
    rank = {model: index for index, model in enumerate(models)}
    titles = [f"{task} / {variant}" if len(tasks) > 1 else variant for task in tasks for variant in variants]
    fig = make_subplots(
        rows=len(tasks),
        cols=len(variants),
        shared_yaxes=True,
        subplot_titles=titles,
        horizontal_spacing=0.03,
        vertical_spacing=0.18,
    )
    for row, task in enumerate(tasks, start=1):
        for column, variant in enumerate(variants, start=1):
            panel = terms[(terms["task"] == task) & (terms["variant"] == variant)]
            panel = panel.sort_values(
                ["model", "layer"], key=lambda c: c.map(rank) if c.name == "model" else c
            )
            x = [[short[m] for m in panel["model"]], [f"L{layer}" for layer in panel["layer"]]]
            first = row == 1 and column == 1
            for name, label, colour, pattern in TERMS:
                fig.add_trace(
                    go.Bar(
                        x=x,
                        y=panel[name],
                        name=label,
                        legendgroup=name,
                        showlegend=first,
                        marker={"color": colour, "pattern": {"shape": pattern, "fgcolor": "white"}},
                        customdata=panel[["model", "n_items"]],
                        hovertemplate=f"%{{customdata[0]}} %{{x[1]}}<br>{label} %{{y:+.3f}}"
                        " (mean over %{customdata[1]} items)<extra></extra>",
                    ),
                    row=row,
                    col=column,
                )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=panel["log_odds"],
                    mode="markers",
                    name="mean log-odds true − distractor",
                    legendgroup="log_odds",
                    showlegend=first,
                    marker={
                        "color": "black",
                        "symbol": "diamond",
                        "size": 10,
                        "line": {"color": "white", "width": 1},
                    },
                    customdata=panel[["model", "accuracy", "spliced_accuracy"]],
                    hovertemplate="%{customdata[0]} %{x[1]}<br>mean log-odds %{y:+.3f}<br>accuracy "
                    "%{customdata[1]:.2f}, spliced %{customdata[2]:.2f}<extra></extra>",
                ),
                row=row,
                col=column,
            )
            fig.update_xaxes(
                title=f"model ({prefix}…), SAE layer" if prefix else "model, SAE layer", row=row, col=column
            )
        fig.update_yaxes(title="mean log-odds (nats)", row=row, col=1)
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_layout(barmode="relative", bargap=0.25)
    positions = terms.groupby(["task", "variant"]).size().max()
    width = 300 + len(variants) * max(260, 34 * int(positions))
    title = "The log-odds in feature terms: what pushes the distractor and the true answer, by size"
    return finish(fig, title, height=140 + 420 * len(tasks), width=min(MAX_WIDTH, width))


#: Positions counted back from the answer position drawn apart in :func:`position_figure`; earlier
#: ones are pooled.
POSITIONS = 6
#: Colours of the positions, the answer position first (a sequential scale: nearer is darker).
POSITION_COLOURS = ("#08306b", "#2171b5", "#6baed6", "#d94801", "#fd8d3c", "#fdd0a2", "#bdbdbd")


def position_figure(
    features: pd.DataFrame, items: pd.DataFrame, order: Sequence[str] = (), variant: str | None = None
) -> go.Figure:
    """Where the features read: summed mean attribution by the position each feature peaks at.

    Per model and SAE layer (first task, one variant), every feature's mean attribution
    (:func:`probes.features.summary.feature_ranking`) goes to the position, counted back from the
    answer position, where it is most often most active (:func:`probes.features.summary.token_totals`);
    one stacked bar per position, labelled with the commonest token there. The bars add up to the
    features' share of the log-odds (the identity figure's red plus blue).
    """
    task, variant = task_order(features)[0], _variant(features, variant)
    rows = features[(features["task"] == task) & (features["variant"] == variant)]
    chosen = items[(items["task"] == task) & (items["variant"] == variant)]
    totals = token_totals(feature_ranking(rows, chosen))
    totals = totals.assign(bucket=totals["from_end"].clip(upper=POSITIONS))
    models = ordered_models(totals["model"], order)
    prefix, short = short_names(models)
    rank = {model: index for index, model in enumerate(models)}
    places = totals[["model", "layer"]].drop_duplicates()
    places = places.sort_values(["model", "layer"], key=lambda c: c.map(rank) if c.name == "model" else c)
    x = [[short[m] for m in places["model"]], [f"L{layer}" for layer in places["layer"]]]
    fig = go.Figure()
    for bucket in sorted(totals["bucket"].unique()):
        mine = totals[totals["bucket"] == bucket]
        weights = mine.assign(weight=mine["attribution"].abs()).groupby("token_text")["weight"].sum()
        token = weights.idxmax() if len(weights) else ""
        where = (
            f"{POSITIONS}+ back"
            if bucket == POSITIONS
            else ("answer position" if bucket == 0 else f"{bucket} back")
        )
        summed = mine.groupby(["model", "layer"])["attribution"].sum()
        values = [float(summed.get((m, layer), 0.0)) for m, layer in zip(places["model"], places["layer"])]
        fig.add_trace(
            go.Bar(
                x=x,
                y=values,
                name=f'{where} (mostly "{token}")',
                marker={"color": POSITION_COLOURS[min(bucket, len(POSITION_COLOURS) - 1)]},
                hovertemplate=f"%{{x[0]}} %{{x[1]}}<br>features peaking {where}: %{{y:+.3f}}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_layout(barmode="relative", bargap=0.25)
    fig.update_xaxes(title=f"model ({prefix}…), SAE layer" if prefix else "model, SAE layer")
    fig.update_yaxes(title="summed mean attribution (nats)")
    title = f"Where the features read: attribution by the position they peak at ({task} / {variant})"
    return finish(fig, title, height=520, width=min(MAX_WIDTH, 420 + 40 * len(places)))


def token_label(text: object, token: int) -> str:
    """``"<text>"`` for a decoded token, else ``token <id>``."""
    return f'"{text}"' if isinstance(text, str) else f"token {token}"


def _texts(features: pd.DataFrame) -> dict[tuple[str, int], str]:
    """Each (model, token id)'s decoded text, where :func:`load_feature_tables` decoded it."""
    if "token_text" not in features.columns:
        return {}
    known = features.dropna(subset=["token_text"]).drop_duplicates(["model", "token"])
    return {(m, int(t)): str(s) for m, t, s in zip(known["model"], known["token"], known["token_text"])}


def ranked_top(
    features: pd.DataFrame, items: pd.DataFrame, variant: str | None = None, n: int = TOP
) -> pd.DataFrame:
    """The top ``n`` features per side (:func:`probes.features.summary.top_features`) of each model's
    last SAE layer, first task, one variant, with a ``label``: ``f<id> @ "<token>" (from_end n)``."""
    rows, _ = _one_panel(features, variant)
    chosen = items[items["variant"] == _variant(features, variant)]
    top = top_features(feature_ranking(rows, chosen), n)
    texts = _texts(features)
    labels = [
        f"f{feature} @ {token_label(texts.get((model, int(token))), int(token))} (from_end {from_end})"
        for model, feature, token, from_end in zip(
            top["model"], top["feature"], top["token"], top["from_end"]
        )
    ]
    return top.assign(label=labels)


def top_features_figure(
    features: pd.DataFrame, items: pd.DataFrame, order: Sequence[str] = (), variant: str | None = None
) -> go.Figure:
    """The top distractor- and true-pushing features of each size, mean attribution with 95% intervals.

    One panel per model (its last SAE layer; the first task; ``variant``, prize by default), the
    distractor side on top; one x range for every panel, so sizes compare.
    """
    top = ranked_top(features, items, variant)
    rows, panel_title = _one_panel(features, variant)
    models = ordered_models(rows["model"], order)
    columns = min(2, len(models))  # two wide panels a row: room for the labels and the bars
    n_rows = -(-len(models) // columns)
    layers = rows.groupby("model")["layer"].first()
    found = set(top["model"])
    titles = [f"{m} L{layers[m]}" + ("" if m in found else " (none)") for m in models]
    shown: set[str] = set()
    fig = make_subplots(
        rows=n_rows,
        cols=columns,
        subplot_titles=titles,
        horizontal_spacing=0.25,
        vertical_spacing=0.3 / n_rows,
    )
    for index, model in enumerate(models):
        place = {"row": 1 + index // columns, "col": 1 + index % columns}
        mine = top[top["model"] == model]
        for side, colour, name in (
            ("distractor", RED, "pushes the distractor"),
            ("true", BLUE, "pushes the true answer"),
        ):
            bars = mine[mine["side"] == side]
            if bars.empty:
                continue
            fig.add_trace(
                go.Bar(
                    x=bars["attribution"],
                    y=bars["label"],
                    orientation="h",
                    name=name,
                    legendgroup=side,
                    showlegend=side not in shown,
                    marker={
                        "color": colour,
                        "pattern": {"shape": "/" if side == "distractor" else "", "fgcolor": "white"},
                    },
                    error_x=error_bars(bars["attribution"], bars["low"], bars["high"]),
                    customdata=bars[["low", "high", "n_active", "n_items", "activation"]],
                    hovertemplate="%{y}<br>mean attribution %{x:+.3f} [%{customdata[0]:+.3f}, "
                    "%{customdata[1]:+.3f}]<br>active on %{customdata[2]} of %{customdata[3]} items, mean "
                    "activation %{customdata[4]:.3f}<extra></extra>",
                ),
                **place,
            )
            shown.add(side)
        fig.update_yaxes(autorange="reversed", tickfont={"size": 11}, showticklabels=not mine.empty, **place)
    if len(top):
        low, high = float(min(top["low"].min(), 0)), float(max(top["high"].max(), 0))
        pad = 0.05 * (high - low or 1)
        fig.update_xaxes(range=[low - pad, high + pad], zeroline=True, zerolinecolor="#444")
    for column in range(1, columns + 1):
        fig.update_xaxes(title="mean attribution to the log-odds (nats)", row=n_rows, col=column)
    fig.update_layout(barmode="overlay")
    title = f"Top features per size ({panel_title}): mean attribution, 95% t-interval over items"
    fig = finish(fig, title, height=120 + 330 * n_rows, width=MAX_WIDTH if columns > 1 else 700)
    return fig.update_layout(margin={"l": 230})


def ablation_figure(
    ablation: pd.DataFrame, order: Sequence[str] = (), variant: str | None = None
) -> go.Figure:
    """Accuracy and log-odds change of ablating the top-k distractor features against k random ones.

    One column per model (its last SAE layer, the first task, ``variant``): the top-k change with its
    bootstrap 95% interval as error bars, the random-k change with its interval as a band.
    """
    rows, panel_title = _one_panel(ablation, variant)
    comparison = ablation_comparison(rows)
    models = ordered_models(comparison["model"], order)
    fig = make_subplots(
        rows=2,
        cols=len(models),
        subplot_titles=[f"{m} L{rows.loc[rows['model'] == m, 'layer'].iloc[0]}" for m in models],
        shared_yaxes="rows",
        vertical_spacing=0.12,
        horizontal_spacing=0.03,
    )
    for column, model in enumerate(models, start=1):
        line = comparison[comparison["model"] == model].sort_values("k")
        for row, measure in enumerate(("accuracy", "log_odds"), start=1):
            random, low, high = (line[f"{measure}_random{end}"] for end in ("", "_low", "_high"))
            shown = column == 1 and row == 1
            fig.add_trace(
                go.Scatter(
                    x=[*line["k"], *line["k"][::-1]],
                    y=[*high, *low[::-1]],
                    mode="lines",
                    fill="toself",
                    fillcolor="rgba(127,127,127,0.2)",
                    line={"width": 0},
                    hoverinfo="skip",
                    name="random-k 95% interval",
                    legendgroup="band",
                    showlegend=shown,
                ),
                row=row,
                col=column,
            )
            fig.add_trace(
                go.Scatter(
                    x=line["k"],
                    y=random,
                    mode="lines+markers",
                    name="k random active features",
                    legendgroup="random",
                    showlegend=shown,
                    line={"color": "#7f7f7f", "dash": "dash"},
                    marker={"symbol": "square-open", "size": 8, "color": "#7f7f7f"},
                    hovertemplate=f"{model} k %{{x}}<br>random-k Δ {measure} %{{y:+.3f}}<extra></extra>",
                ),
                row=row,
                col=column,
            )
            top = line[f"{measure}_top"]
            fig.add_trace(
                go.Scatter(
                    x=line["k"],
                    y=top,
                    mode="lines+markers",
                    name="top-k distractor features",
                    legendgroup="top",
                    showlegend=shown,
                    line={"color": RED},
                    marker={"symbol": "circle", "size": 9, "color": RED},
                    error_y=error_bars(top, line[f"{measure}_top_low"], line[f"{measure}_top_high"]),
                    customdata=line[["decided", f"{measure}_difference", "n_items"]],
                    hovertemplate=f"{model} k %{{x}}<br>top-k Δ {measure} %{{y:+.3f}}<br>top − random "
                    "%{customdata[1]:+.3f}: %{customdata[0]} (%{customdata[2]} items)<extra></extra>",
                ),
                row=row,
                col=column,
            )
        ks = sorted(line["k"].unique())
        fig.update_xaxes(tickvals=ks, row=1, col=column)
        fig.update_xaxes(tickvals=ks, title="k features", row=2, col=column)
    fig.add_hline(y=0, line_dash="dot", line_color="#999")
    fig.update_yaxes(title="Δ accuracy", row=1, col=1)
    fig.update_yaxes(title="Δ log-odds (nats)", row=2, col=1)
    title = f"Ablating the top-k distractor features against k random ones ({panel_title})"
    return finish(fig, title, height=620, width=min(MAX_WIDTH, max(800, 200 * len(models) + 260)))


def _interval(value: float, low: float, high: float, form: str = "{:+.2f}") -> str:
    """``"+0.12 [-0.05, +0.30]"``; empty when the value is missing."""
    if pd.isna(value):
        return ""
    return f"{form.format(value)} [{form.format(low)}, {form.format(high)}]"


def _cut(text: str, limit: int = PROMPT_CHARACTERS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def top_items_html(
    features: pd.DataFrame,
    items: pd.DataFrame,
    order: Sequence[str] = (),
    prompts: pd.DataFrame | None = None,
    variant: str | None = None,
) -> str:
    """An HTML table: each top feature (:func:`ranked_top`), its mean attribution [95% CI], and the
    :data:`TOP_ITEMS` items where it is most active: activation, the token where it peaks, the
    feature's attribution there, and the prompt where ``prompts`` has it."""
    top = ranked_top(features, items, variant)
    if top.empty:
        return "<p>No feature's mean differs from 0 (Holm, p < 0.05) at any size.</p>"
    texts = _texts(features)
    known = {}
    if prompts is not None and len(prompts):
        known = {
            (t, v, i): p
            for t, v, i, p in prompts[["task", "variant", "item_id", "prompt"]].itertuples(index=False)
        }
    header = [
        "model",
        "layer",
        "feature",
        "side",
        "mean attribution [95% CI]",
        "item",
        "activation",
        "peaks at",
        "attribution on the item",
    ] + (["prompt"] if known else [])
    body = []
    rank = {m: i for i, m in enumerate(ordered_models(top["model"], order))}
    top = top.sort_values("model", key=lambda c: c.map(rank), kind="stable")
    keys = [*KEYS, "feature"]
    strongest = (
        features.merge(top[keys], on=keys)
        .sort_values("activation", ascending=False, kind="stable")
        .groupby(keys, sort=False)
    )
    for feature in top.itertuples():
        mine = strongest.get_group(tuple(getattr(feature, key) for key in keys)).head(TOP_ITEMS)
        span = f' rowspan="{len(mine)}"' if len(mine) > 1 else ""
        shared = [
            feature.model,
            f"L{feature.layer}",
            f"f{feature.feature}",
            feature.side,
            _interval(feature.attribution, feature.low, feature.high, "{:+.3f}"),
        ]
        for index, item in enumerate(mine.itertuples()):
            token = token_label(texts.get((item.model, int(item.token))), int(item.token))
            cells = [
                f"{item.item_id}",
                f"{item.activation:.3f}",
                f"{token} (from_end {item.from_end})",
                f"{item.attribution:+.3f}",
            ]
            row = [f"<td{span}>{html.escape(str(c))}</td>" for c in shared] if index == 0 else []
            row += [f"<td>{html.escape(c)}</td>" for c in cells]
            if known:
                prompt = known.get((item.task, item.variant, item.item_id))
                row.append(f'<td class="prompt">{html.escape(_cut(prompt)) if prompt else "–"}</td>')
            body.append("<tr>" + "".join(row) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="items">{table}</div>'


def _by_size(frame: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Rows by task, variant (report order), model (smallest first), layer, and k where present."""
    rank = {m: i for i, m in enumerate(ordered_models(frame["model"], order))}
    variants = {v: i for i, v in enumerate(variant_order(frame))}
    tasks = {t: i for i, t in enumerate(task_order(frame))}
    keys = {"task": tasks, "variant": variants, "model": rank}
    columns = [c for c in ["task", "variant", "model", "layer", "k"] if c in frame.columns]
    return frame.sort_values(
        columns, key=lambda c: c.map(keys[c.name]) if c.name in keys else c, kind="stable"
    )


#: The quality figures of an SAE shown on the page (:class:`probes.features.training.SAEQuality`).
QUALITY_COLUMNS = ("d_sae", "k", "fve", "l0", "dead", "ce_clean", "ce_spliced", "ce_zero", "loss_recovered")


def sae_quality(items: pd.DataFrame) -> pd.DataFrame:
    """The quality figures of the SAEs a study read, where they are known (else no row).

    A shipped SAE's come from its ladder's ``saes.json``, a folder's from the ``quality.json``
    that :func:`probes.features.training.train_saes` writes beside it; pretrained releases carry none.
    """
    from probes.features.sources import shipped_entries

    rows = []
    if "sae" not in items.columns:
        return pd.DataFrame(columns=["model", "layer", *QUALITY_COLUMNS])
    for model, layer, source in items[["model", "layer", "sae"]].drop_duplicates().itertuples(index=False):
        quality = None
        if source == f"{model}/layer-{layer}":  # shipped with a built-in rung
            quality = shipped_entries(model).get(str(layer), {}).get("quality")
        elif (Path(source) / "quality.json").is_file():
            quality = json.loads((Path(source) / "quality.json").read_text("utf-8"))
        if quality:
            rows.append({"model": model, "layer": int(layer), **{c: quality.get(c) for c in QUALITY_COLUMNS}})
    return pd.DataFrame(rows, columns=["model", "layer", *QUALITY_COLUMNS])


def feature_markdown(tables: dict[str, pd.DataFrame], order: Sequence[str] = ()) -> dict[str, str]:
    """The study's key numbers as Markdown blocks by name, each a heading and a table.

    ``identity`` (the identity figure's numbers), ``top`` (the top features), ``splice``
    (:func:`~probes.features.summary.splice_check`), ``attribution-check``
    (:func:`~probes.features.summary.attribution_check`) and ``ablation-table``
    (:func:`~probes.features.summary.ablation_comparison`), for the tables present.
    """
    features, items = tables.get("features"), tables.get("feature_items")
    ablation = tables.get("feature_ablation")
    blocks: dict[str, str] = {}

    def block(name: str, heading: str, frame: pd.DataFrame, columns: dict[str, str]) -> None:
        frame = frame.rename(columns=columns)
        blocks[name] = "\n".join(
            [f"## {heading}", "", *markdown_lines(frame, list(columns.values()))]
        ).strip()

    if items is not None and len(items):
        quality = sae_quality(items)
        if len(quality):
            rank = {m: i for i, m in enumerate(ordered_models(quality["model"], order))}
            quality = quality.sort_values(
                ["model", "layer"], key=lambda c: c.map(rank) if c.name == "model" else c
            )
            block(
                "sae-quality",
                "The SAEs: quality on held-out text (FVE, L0, dead features, cross-entropy spliced)",
                quality,
                {
                    "model": "model",
                    "layer": "layer",
                    "d_sae": "features",
                    "k": "k",
                    "fve": "FVE",
                    "l0": "L0",
                    "dead": "dead",
                    "ce_clean": "CE clean",
                    "ce_spliced": "CE spliced",
                    "ce_zero": "CE zeroed",
                    "loss_recovered": "loss recovered",
                },  # fmt: skip
            )
    if features is not None and items is not None and len(items):
        terms = _by_size(identity_terms(features, items), order)
        block(
            "identity",
            "Mean log-odds as the sum of its terms (nats): baseline + error + distractor + true + gap",
            terms,
            {
                "task": "task",
                "variant": "variant",
                "model": "model",
                "layer": "layer",
                "n_items": "items",
                "log_odds": "log-odds",
                "baseline": "baseline",
                "error": "error",
                "distractor_features": "distractor features",
                "true_features": "true features",
                "gap": "gap",
                "accuracy": "accuracy",
                "spliced_accuracy": "spliced accuracy",
            },
        )
        top = _by_size(ranked_top(features, items), order)
        top = top.assign(
            interval=[
                _interval(a, lo, hi, "{:+.3f}")
                for a, lo, hi in zip(top["attribution"], top["low"], top["high"])
            ]
        )
        block(
            "top",
            "Top features per size (last SAE layer; mean attribution, 95% t-interval over items)",
            top,
            {
                "task": "task",
                "variant": "variant",
                "model": "model",
                "layer": "layer",
                "side": "pushes",
                "label": "feature @ peak token",
                "interval": "attribution [95% CI]",
                "n_active": "active on",
                "n_items": "items",
            },
        )
    if items is not None and len(items):
        splice = _by_size(splice_check(items), order)
        splice = splice.assign(
            change=[
                _interval(*v)
                for v in zip(
                    splice["splice_change"], splice["splice_change_low"], splice["splice_change_high"]
                )
            ],
            clean=[
                _interval(*v, "{:.2f}")
                for v in zip(splice["accuracy"], splice["accuracy_low"], splice["accuracy_high"])
            ],
            spliced=[
                _interval(*v, "{:.2f}")
                for v in zip(
                    splice["spliced_accuracy"],
                    splice["spliced_accuracy_low"],
                    splice["spliced_accuracy_high"],
                )
            ],
        )
        block(
            "splice",
            "Splicing the SAE in (its reconstruction in place of the residual, the error dropped)",
            splice,
            {
                "task": "task",
                "variant": "variant",
                "model": "model",
                "layer": "layer",
                "n_items": "items",
                "change": "Δ log-odds [95% CI]",
                "clean": "accuracy [95% CI]",
                "spliced": "spliced accuracy [95% CI]",
                "max_completeness_gap": "max |gap|",
                "error_share": "error share",
            },
        )
    if features is not None and len(features):
        check = _by_size(attribution_check(features), order)
        block(
            "attribution-check",
            "Attribution against the exact effect of ablating one feature",
            check,
            {
                "task": "task",
                "variant": "variant",
                "model": "model",
                "layer": "layer",
                "n_checked": "checked",
                "r": "r (integrated gradients)",
                "r_linear": "r (gradient at the clean point)",
                "slope": "slope",
            },
        )
    if ablation is not None and len(ablation):
        comparison = ablation_comparison(ablation)
        if len(comparison):
            comparison = _by_size(comparison, order)
            cells = {}
            for measure, form in (("accuracy", "{:+.2f}"), ("log_odds", "{:+.2f}")):
                for name in ("top", "random", "difference"):
                    column = f"{measure}_{name}"
                    cells[column + "_cell"] = [
                        _interval(*v, form)
                        for v in zip(
                            comparison[column], comparison[column + "_low"], comparison[column + "_high"]
                        )
                    ]
            block(
                "ablation-table",
                "Ablating the top-k distractor features against k random ones (top ranked on the other half)",
                comparison.assign(**cells),
                {
                    "task": "task",
                    "variant": "variant",
                    "model": "model",
                    "layer": "layer",
                    "k": "k",
                    "n_items": "items",
                    "accuracy_clean": "accuracy",
                    "accuracy_top_cell": "Δ acc top-k",
                    "accuracy_random_cell": "Δ acc random-k",
                    "accuracy_difference_cell": "top − random [95% CI]",
                    "decided": "verdict",
                    "log_odds_top_cell": "Δ log-odds top-k",
                    "log_odds_random_cell": "Δ log-odds random-k",
                    "log_odds_difference_cell": "log-odds top − random",
                },
            )
    return blocks


#: The page's figures and tables, in reading order.
PANELS: tuple[Panel, ...] = (
    Panel(
        "identity",
        "The log-odds in feature terms",
        "Per model (smallest first) and SAE layer (L = the residual stream after that block), the mean "
        "over items of logit(true) − logit(distractor) at the answer position (black diamond; the same "
        "at every layer of a model) split by integrated gradients into: the baseline (the log-odds "
        "with every feature and the error term off), the SAE's error term, the features whose mean "
        "attribution is negative (red: they push the distractor) and positive (blue: the true answer), "
        "and the integration's own gap. The bars stack (negative ones downwards) and add up to the "
        "diamond (to float rounding). Means over items, counting 0 where a feature is inactive; no "
        "intervals (those of single features follow). One panel per variant, prize first.",
    ),
    Panel(
        "positions",
        "Where the features read",
        "Per model and SAE layer, prize variant: each feature's mean attribution (as in the figure "
        "above) summed by the prompt position where the feature is most often most active, counted back "
        "from the answer position, with the commonest token there (weighted by |attribution|); "
        "positions 6 or more back are pooled. The bars add up to the features' part of the figure above "
        "(red plus blue). Where a size's features read the negation shows here as a bar at its position.",
    ),
    Panel(
        "top-features",
        "Top features per size",
        "Per model, at its last SAE layer, prize variant: the (at most) 5 features with the most "
        "negative mean attribution (red) and the 5 most positive (blue) among those whose mean differs "
        "from 0 after Holm's correction over the layer's active features (p < 0.05, Student's t); bars "
        "are Student's t 95% intervals over items (inactive items count 0). Labels: feature id @ the "
        "token where it is most active (the commonest over items) and that token's distance from the "
        "prompt's end; (none): no feature passes. One x scale for every panel.",
    ),
    Panel(
        "top-items",
        "Top activating items of the top features",
        "For each feature of the figure above, the 3 items where its activation is largest: the item, "
        "that activation, the token where it peaks, the feature's attribution on that item, and its prompt.",
    ),
    Panel(
        "ablation",
        "Top-k against random-k feature ablation",
        "Change in accuracy (a tie counts half) and in mean log-odds when the k features most pushing "
        "the distractor are removed at every position (the error term kept), ranked on the other half "
        "of the items (cross-fitted), against k features drawn at random from those active on the "
        "ranking half (mean over draws per item). Top-k: bars are percentile-bootstrap 95% intervals "
        "over items; random-k: the band. Last SAE layer, prize variant; the table below gives the "
        "difference's interval and the verdict for every layer and variant.",
    ),
    Panel(
        "sae-quality",
        "The SAEs",
        "Each SAE the study read, measured on text held out from its training (the model's own samples "
        "for the shipped ones): FVE, the fraction of the residual's variance its reconstruction "
        "explains; L0, active features per vector; dead, features that fire on none of the training and "
        "held-out vectors; the model's next-token cross-entropy as it is, with the reconstruction in "
        "place of the residual, and with the residual zeroed; loss recovered = (zeroed − spliced) / "
        "(zeroed − clean). Pretrained releases carry no such figures and are left out.",
    ),
    Panel(
        "splice",
        "Check: splicing the SAE in",
        "The change in log-odds when the SAE's reconstruction replaces the residual (error dropped), "
        "mean with a percentile-bootstrap 95% interval over items; accuracy clean and spliced with "
        "Wilson 95% intervals; the largest |gap| of the attribution identity over items; the error "
        "term's share of |error| + |features|.",
    ),
    Panel(
        "attribution-check",
        "Check: attribution against ablating one feature",
        "Over the (item, feature) pairs whose ablation was measured (each item's features of largest "
        "|attribution|): Pearson's r of the integrated-gradients attribution and of the "
        "gradient-at-the-clean-point estimate with the exact effect of removing the feature, and the "
        "least-squares slope through 0 (1 = the attribution predicts the ablation's size).",
    ),
    Panel(
        "ablation-table",
        "Check: top-k against random-k, every layer and variant",
        "Accuracy and log-odds changes with percentile-bootstrap 95% intervals over items (the same "
        "resamples for top, random and their difference). Verdict: top > random or top < random where "
        "the difference's interval excludes 0, else not determined. Ks with fewer distractor-pushing "
        "features than k are left out.",
    ),
)

#: Blocks of :func:`feature_markdown` shown as tables on the page (the others close it as key numbers).
TABLE_PANELS = ("sae-quality", "splice", "attribution-check", "ablation-table")


def feature_figures(tables: dict[str, pd.DataFrame], order: Sequence[str] = ()) -> dict[str, go.Figure | str]:
    """The page's figures and HTML tables by panel name, for the tables present, in reading order."""
    from probes.report.document import markdown_to_html

    features, items = tables.get("features"), tables.get("feature_items")
    ablation = tables.get("feature_ablation")
    drawn: dict[str, go.Figure | str] = {}
    if features is not None and items is not None and len(items):
        drawn["identity"] = identity_figure(features, items, order)
        drawn["positions"] = position_figure(features, items, order)
        drawn["top-features"] = top_features_figure(features, items, order)
        drawn["top-items"] = top_items_html(features, items, order, tables.get(PROMPTS))
    if ablation is not None and len(ablation_comparison(_one_panel(ablation, None)[0])):
        drawn["ablation"] = ablation_figure(ablation, order)  # only where its panel has a top set
    blocks = feature_markdown(tables, order)
    for name in TABLE_PANELS:
        if name in blocks:
            table = blocks[name].split("\n", 2)[2]  # without its heading: the section has one
            drawn[name] = f'<div class="items">{markdown_to_html(table)}</div>'
    return drawn


def write_feature_page(
    tables: dict[str, pd.DataFrame],
    folder: str | Path,
    order: Sequence[str] = (),
    png: bool = True,
    links: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``features.html``, ``features.md`` and (with ``png``) ``figures/feature-*.png``.

    ``links`` (text, relative address) go into the page's contents bar (the lens report, the
    ablation page).

    Raises:
        PngExportError: PNGs could not be drawn; the HTML and Markdown are written first.
    """
    drawn = feature_figures(tables, order)
    blocks = feature_markdown(tables, order)
    markdown = "\n\n".join(["# Features", *blocks.values()]) + "\n"
    summary = "\n\n".join(["# Features", *(b for n, b in blocks.items() if n not in TABLE_PANELS)])
    return write_study_page(
        folder, "features", "Features", PANELS, drawn, markdown, summary, png, links, "feature"
    )


def load_feature_tables(root: str | Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """A store's feature tables by kind (those present), and its models smallest first.

    :data:`PROMPTS` holds each item's prompt (``task``, ``variant``, ``item_id``, ``prompt``), from
    ``feature_items``.
    """
    tables, order = load_study_tables(root, KINDS)
    items = tables.get("feature_items")
    if items is not None and "prompt" in items.columns:
        columns = ["task", "variant", "item_id", "prompt"]
        tables[PROMPTS] = (
            items[columns].drop_duplicates(["task", "variant", "item_id"]).reset_index(drop=True)
        )
    return tables, order
