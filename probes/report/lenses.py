"""Two lenses compared on the same models and items: where the logit and the tuned lens disagree.

Drawn only when a store holds rows of more than one lens (``probes run --lens logit`` and
``--lens tuned`` into one ``--out``). Heat maps of the mean log-odds per lens side by side,
each lens's held-out KL to the final distribution per layer (from the lens artifacts, carried
in the shards' manifests), the share of items whose winning answer differs between lenses at
each layer, and each lens's decision and divergence layers per model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from probes.report.depth import add_depth_columns, depth_axes, log_odds_colours
from probes.report.style import finish, model_labels
from probes.report.tables import decision_table, divergence_table, layer_summary, lenses, model_order


def _panels(results: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(results["task"], results["variant"])))


def lens_heatmaps(results: pd.DataFrame) -> go.Figure:
    """Mean log-odds true − distractor by relative depth (y) and model (x), one column per lens.

    One row per (task, variant); the colour scale is shared, so the lenses compare cell by cell.
    """
    names, panels = lenses(results), _panels(results)
    models, labels = model_order(results), model_labels(results)
    fig = make_subplots(
        rows=len(panels),
        cols=len(names),
        shared_yaxes=True,
        column_titles=[f"{lens} lens" for lens in names],
        row_titles=[f"{task} / {variant}" for task, variant in panels],
        horizontal_spacing=0.04,
        vertical_spacing=0.1,
    )
    limit = 0.0
    for col, lens in enumerate(names, start=1):
        summary = layer_summary(results, lens)
        limit = max(limit, float(np.nanmax(np.abs(summary["mean_log_odds"]))) if len(summary) else 0.0)
        for row, (task, variant) in enumerate(panels, start=1):
            panel = summary[(summary["task"] == task) & (summary["variant"] == variant)]
            add_depth_columns(
                fig,
                panel,
                models,
                "mean_log_odds",
                row,
                col,
                lambda model, cells, lens=lens: {
                    "name": f"{model} ({lens})",
                    "text": [
                        [f"layer {layer} of {n}"] for layer, n in zip(cells["layer"], cells["n_layers"])
                    ],
                    "hovertemplate": f"{labels[model]}, {lens} lens<br>%{{text}}<br>log-odds %{{z:+.2f}}"
                    "<extra></extra>",
                },
            )
    depth_axes(fig, models, labels)
    limit = limit or 1.0
    log_odds_colours(fig, limit)
    return finish(
        fig,
        "Logit lens and tuned lens: mean log-odds by depth and size",
        height=140 + 300 * len(panels),
        width=max(700, 380 * len(names) + 160),
    )


#: Columns of :func:`kl_table`.
KL_COLUMNS = ["model", "lens", "layer", "relative_depth", "kl"]


def kl_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Held-out KL to the final distribution per (model, lens, layer), from the shards' manifests.

    A tuned lens's shards carry ``lens_held_out_kl`` (both lenses' held-out KL, measured when
    the lens was trained); its numbers are listed under the lens's id (``tuned-<hash8>``, the
    name its rows carry), the logit lens's once per model (the same for every tuned lens).
    """
    rows: list[dict[str, Any]] = []
    if "lens_held_out_kl" not in manifest.columns:
        return pd.DataFrame(columns=KL_COLUMNS)
    records = manifest.dropna(subset=["lens_held_out_kl"]).to_dict("records")
    seen: set[tuple[str, str]] = set()
    for record in records:
        lens_id = record.get("lens_id")
        lens_id = lens_id if isinstance(lens_id, str) else str(record.get("lens", "tuned"))
        for lens, values in record["lens_held_out_kl"].items():
            name = lens_id if lens == "tuned" else lens
            if (record["model"], name) in seen:
                continue
            seen.add((record["model"], name))
            n_layers = len(values) - 1
            for layer, value in enumerate(values):
                rows.append(
                    {
                        "model": record["model"],
                        "lens": name,
                        "layer": layer,
                        "relative_depth": layer / n_layers if n_layers else 1.0,
                        "kl": value,
                    }
                )
    return pd.DataFrame(rows, columns=KL_COLUMNS)


def kl_figure(kl: pd.DataFrame, results: pd.DataFrame) -> go.Figure:
    """Held-out KL (nats per token, log scale) against relative depth: one line per model and lens."""
    fig = go.Figure()
    labels = model_labels(results)
    models = [m for m in model_order(results) if m in set(kl["model"])]
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    names = sorted(set(kl["lens"]), key=lambda name: (name != "logit", name))
    others = iter(["solid", "dash", "dashdot", "longdash"] * len(names))
    dashes = {name: "dot" if name == "logit" else next(others) for name in names}
    for index, model in enumerate(models):
        for lens, dash in dashes.items():
            line = kl[(kl["model"] == model) & (kl["lens"] == lens)]
            line = line[line["relative_depth"] < 1]  # the last layer is 0 for both by construction
            if line.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=line["relative_depth"],
                    y=line["kl"].clip(lower=1e-6),
                    mode="lines+markers",
                    line={"dash": dash, "color": palette[index % len(palette)]},
                    name=f"{labels.get(model, model)} — {lens}",
                    hovertemplate=f"{model}, {lens} lens<br>depth %{{x:.2f}}<br>KL %{{y:.3f}}<extra></extra>",
                )
            )
    fig.update_xaxes(title_text="relative depth (the last layer, KL 0 for both, left out)")
    fig.update_yaxes(title_text="held-out KL to the final distribution (nats/token)", type="log")
    return finish(fig, "How far each lens is from the model's output, layer by layer", height=480, width=900)


def disagreement_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per other lens and (model, task, variant, layer): share of items whose winning answer differs
    between the default lens (the logit lens, first of :func:`lenses`) and that lens.

    Winners are the sign of the per-layer score (:func:`probes.analysis.scoring.per_layer_score`) under
    each lens. ``lens`` names the other lens; ``distractor_wins_default`` and
    ``distractor_wins_lens`` are the shares of items the distractor wins under each.
    """
    names = lenses(results)
    if len(names) < 2:
        return pd.DataFrame()
    from probes.analysis.scoring import per_layer_score

    keys = ["model", "task", "variant", "item_id", "layer"]
    score = per_layer_score(results)

    def of(lens: str) -> pd.DataFrame:
        rows = results[results["lens"] == lens].set_index(keys)[[score, "relative_depth"]]
        return rows.rename(columns={score: "log_odds"})

    tables = []
    for other in names[1:]:
        joined = of(names[0]).join(of(other), how="inner", lsuffix="_a", rsuffix="_b")
        joined["disagree"] = np.sign(joined["log_odds_a"]) != np.sign(joined["log_odds_b"])
        joined["distractor_wins_a"] = joined["log_odds_a"] < 0
        joined["distractor_wins_b"] = joined["log_odds_b"] < 0
        table = (
            joined.reset_index()
            .groupby(["model", "task", "variant", "layer"], sort=False)
            .agg(
                relative_depth=("relative_depth_a", "first"),
                n_items=("disagree", "size"),
                share_disagree=("disagree", "mean"),
                distractor_wins_default=("distractor_wins_a", "mean"),
                distractor_wins_lens=("distractor_wins_b", "mean"),
            )
            .reset_index()
        )
        tables.append(table.assign(default=names[0], lens=other))
    return pd.concat(tables, ignore_index=True)


def disagreement_figure(results: pd.DataFrame) -> go.Figure:
    """Share of items whose winner differs from the default lens's, by relative depth and model:
    one row of panels per other lens, one column per (task, variant)."""
    table = disagreement_table(results)
    panels = _panels(results)
    others = lenses(results)[1:]
    models, labels = model_order(results), model_labels(results)
    fig = make_subplots(
        rows=max(1, len(others)),
        cols=max(1, len(panels)),
        shared_yaxes=True,
        column_titles=[f"{task} / {variant}" for task, variant in panels],
        row_titles=[f"{lenses(results)[0]} vs {other}" for other in others] if len(others) > 1 else None,
        horizontal_spacing=0.04,
        vertical_spacing=0.1,
    )
    for row, other in enumerate(others, start=1):
        for col, (task, variant) in enumerate(panels, start=1):
            panel = table[(table["lens"] == other) & (table["task"] == task) & (table["variant"] == variant)]
            add_depth_columns(
                fig,
                panel,
                models,
                "share_disagree",
                row,
                col,
                lambda model, cells, other=other: {
                    "name": f"{model} ({other})",
                    "hovertemplate": f"{labels[model]}, {other}<br>depth %{{y:.2f}}<br>%{{z:.0%}} of items"
                    "<extra></extra>",
                },
            )
    depth_axes(fig, models, labels)
    fig.update_layout(
        coloraxis={
            "colorscale": "Greys",
            "cmin": 0.0,
            "cmax": 1.0,
            "colorbar": {"title": {"text": "items whose<br>winner differs"}},
        }
    )
    return finish(
        fig,
        "Where the lenses disagree on which answer wins",
        height=160 + 300 * max(1, len(others)),
        width=max(700, 320 * len(panels) + 160),
    )


def layers_by_lens(results: pd.DataFrame, n_resamples: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each lens's decision layers (per model, task, variant) and divergence layers (per model, task).

    One row per lens and point, the lens in a ``lens`` column, so the two read side by side.
    """
    decisions, divergences = [], []
    for lens in lenses(results):
        decisions.append(decision_table(results, lens, n_resamples=n_resamples).assign(lens=lens))
        divergence = divergence_table(results, lens)
        if len(divergence):
            divergences.append(divergence.assign(lens=lens))
    order = {model: i for i, model in enumerate(model_order(results))}

    def ordered(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        table = table.sort_values(keys, key=lambda c: c.map(order) if c.name == "model" else c, kind="stable")
        return table.reset_index(drop=True)

    return ordered(decisions, ["task", "variant", "model"]), ordered(divergences, ["task", "model"])


def lens_markdown(results: pd.DataFrame, kl: pd.DataFrame) -> str:
    """The lens comparison's key numbers: KL per layer, decision and divergence layers, disagreement."""
    from probes.report.summary import markdown_table

    names = lenses(results)
    parts = [f"## Lenses compared ({', '.join(names)})", ""]
    if len(kl):
        parts += [
            "Held-out KL to the final distribution (nats/token) per layer, measured when the lens was made:",
            "",
        ]
        rows = []
        for model in [m for m in model_order(results) if m in set(kl["model"])]:
            for lens in sorted(set(kl["lens"]), key=lambda name: (name != "logit", name)):
                values = kl[(kl["model"] == model) & (kl["lens"] == lens)].sort_values("layer")["kl"]
                rows.append([model, lens, " ".join(f"{v:.3f}" for v in values)])
        parts += [markdown_table(["model", "lens", "KL at layers 0, 1, ..."], rows), ""]
    decisions, divergences = layers_by_lens(results)
    if len(decisions):
        parts += ["Decision layer (median over items, where the model is above chance) per lens:", ""]
        rows = [
            [
                r.model,
                r.task,
                r.variant,
                r.lens,
                f"{r.share_with_decision_layer:.2f}",
                _number(r.decision_layer),
            ]
            for r in decisions.itertuples()
        ]
        parts += [markdown_table(["model", "task", "variant", "lens", "share", "decision layer"], rows), ""]
    if len(divergences):
        parts += ["Divergence layer (prize vs no_distractor twin) per lens:", ""]
        rows = [
            [r.model, r.task, r.lens, r.n_pairs, _number(r.divergence_layer)]
            for r in divergences.itertuples()
        ]
        parts += [markdown_table(["model", "task", "lens", "pairs", "divergence layer"], rows), ""]
    disagreement = disagreement_table(results)
    if len(disagreement):
        rows = [
            [
                r.model,
                r.task,
                r.variant,
                r.lens,
                int(r.layer),
                f"{r.share_disagree:.2f}",
                f"{r.distractor_wins_default:.2f}",
                f"{r.distractor_wins_lens:.2f}",
            ]
            for r in disagreement.itertuples()
        ]
        header = ["model", "task", "variant", "lens", "layer", "winner differs", "distractor wins"]
        header = [*header[:-1], f"distractor wins ({names[0]})", "distractor wins (lens)"]
        parts += [
            f"Share of items whose winner differs between the {names[0]} lens and each other lens, "
            "and where the distractor wins under each:",
            "",
        ]
        parts += [markdown_table(header, rows), ""]
    return "\n".join(parts)


def _number(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:g}"


def lens_figures(results: pd.DataFrame, kl: pd.DataFrame | None = None) -> dict[str, go.Figure]:
    """The comparison's figures by section name (empty unless the results hold two lenses or more)."""
    if len(lenses(results)) < 2:
        return {}
    figures = {"lenses-depth": lens_heatmaps(results)}
    if kl is not None and len(kl):
        figures["lenses-kl"] = kl_figure(kl, results)
    figures["lenses-disagreement"] = disagreement_figure(results)
    return figures


#: Headings and captions of :func:`lens_figures` (name, title, caption).
LENS_SECTIONS: Sequence[tuple[str, str, str]] = (
    (
        "lenses-depth",
        "Logit lens and tuned lens side by side",
        "Mean log-odds true − distractor at each layer of each model under each lens (shared colour "
        "scale). The tuned lens translates each layer's stream before the model's own final norm and "
        "unembedding; at the last layer both give the model's output.",
    ),
    (
        "lenses-kl",
        "KL to the final distribution per layer",
        "Held-out KL (nats per token) from the model's own output distribution to what each lens reads "
        "at each layer (dotted: logit lens, solid: a tuned lens, dashed: a second one), measured on "
        "held-out text when the lens was trained. Lower is a more faithful readout of what the layer "
        "already knows.",
    ),
    (
        "lenses-disagreement",
        "Where the lenses disagree on which answer wins",
        "Share of items whose winning answer (sign of the log-odds) differs between the logit lens and "
        "each other lens (a tuned lens is named tuned-<first 8 hex digits of its weights' sha256>), "
        "per layer and model.",
    ),
)
