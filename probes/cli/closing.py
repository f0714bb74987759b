"""What a run prints at its end (a few lines) and what ``probes show`` prints (every table).

The closing summary says in one line per task what the run found: the shape of last-layer
accuracy across sizes per variant, named only where its test is significant
(:func:`probes.analysis.shape.scaling_shape`, the same as the report's) with its p-value;
the decision layer of the largest model per variant and, per size, the divergence
layer (the prize prompt pulls the prize's answer pair toward its distractor, compared with the
no_distractor prompt on the same pair: :mod:`probes.analysis.decision`); and where
the report and the full tables are. ``probes show`` prints the
per-layer tables behind it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from probes.cli.display import MISSING, WIDTH, records_text, text_table, wrapped

#: Tasks the closing summary names before it points to ``probes show`` for the rest.
MAX_TASKS = 6


def _ordered(models: set[str], order: Sequence[str]) -> list[str]:
    return [m for m in order if m in models] + sorted(models - set(order))


def closing_lines(table: pd.DataFrame, order: Sequence[str] = ()) -> list[str]:
    """At most ~15 lines: per task, the shape across sizes per variant and where the answer wins.

    Args:
        table: Per-layer rows of the run (any number of models, tasks, variants; one lens is used).
        order: Models smallest first (the report's order); models not in it go last by name.
    """
    from probes.analysis.decision import decision_summary, divergence_summary
    from probes.analysis.shape import p_text
    from probes.report.tables import last_layer, one_lens, scaling_shapes, task_order, variant_order

    table = one_lens(table)
    models = _ordered(set(table["model"]), order)
    final = last_layer(table)
    ran = set(zip(final["task"], final["variant"], final["model"]))
    shape_of = scaling_shapes(table, order=models)
    decision = decision_summary(table).set_index(["task", "variant", "model"])
    divergence = divergence_summary(table)
    tasks = task_order(table)
    lines = []
    for task in tasks[:MAX_TASKS]:
        shapes: dict[str, list[str]] = {}
        depths = []
        for variant in variant_order(table[table["task"] == task]):
            present = [m for m in models if (task, variant, m) in ran]
            shape = shape_of[(task, variant)]
            if len(present) == 1:
                name, detail = f"accuracy {shape.accuracy[0]:.2f}", ""
            elif shape.label == "not determined":
                name, detail = shape.label, f" ({shape.path()})"
            else:
                name, detail = shape.label, f" ({shape.path()}, {p_text(shape.p_value)})"
            shapes.setdefault(name, []).append(variant + detail)
            row = decision.loc[(task, variant, present[-1])]
            depths.append(f"{variant} {_layer(row, 'decision')}" if row["above_chance"] else f"{variant} –")
        n_items = int(final[final["task"] == task].groupby(["variant", "model"]).size().max())
        size_note = f"{len(models)} sizes, {models[0]}…{models[-1]}" if len(models) > 1 else models[0]
        lines.append(f"{task} ({n_items} items per variant, {size_note}):")
        found = "; ".join(f"{shape} in {', '.join(names)}" for shape, names in shapes.items())
        lines += wrapped(found, indent=2)
        heading = f"decision layer of {models[-1]} ({int(row['n_layers'])} blocks; median [95% CI]): "
        lines += textwrap.wrap(
            heading + ", ".join(depths), width=100, initial_indent="  ", subsequent_indent="    "
        )
        lines += divergence_lines(divergence, task, models)
    if len(tasks) > MAX_TASKS:
        lines.append(f"… and {len(tasks) - MAX_TASKS} more task(s): see `probes show`.")
    return lines


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent="  ", subsequent_indent="    ")


def divergence_lines(divergence: pd.DataFrame, task: str, models: Sequence[str]) -> list[str]:
    """The closing summary's divergence line for one task (none without prize/no_distractor pairs).

    Per size: the divergence layer (the prize prompt pulls the prize's own answer pair toward
    its distractor, compared with the no_distractor prompt on the same pair, family-wise over
    blocks: :mod:`probes.analysis.decision`) and, where there is none, the separation layer (the
    two prompts move the pair apart either way), each as ``block/blocks (effect [simultaneous
    95% CI])``.
    """
    rows = divergence[divergence["task"] == task] if len(divergence) else divergence
    if rows.empty:
        return []
    rank = {model: i for i, model in enumerate(models)}
    rows = rows.sort_values("model", key=lambda c: c.map(lambda m: rank.get(m, len(rank))))
    if not rows["testable"].any():
        return _wrapped(f"divergence: not determined ({int(rows['n_pairs'].max())} pairs: too few to test)")
    diverging = rows[rows["divergence_layer"].notna()]
    separating = rows[rows["divergence_layer"].isna() & rows["separation_layer"].notna()]
    pairs = int(rows["n_pairs"].max())
    text = (
        f"divergence (prize vs no_distractor prompt on the prize's answer pair, {pairs} pairs, "
        "family-wise 5% over blocks): toward the distractor in "
        + (f"{len(diverging)} of {len(rows)} sizes" if len(diverging) else f"none of {len(rows)} sizes")
    )
    if len(diverging):
        text += ", from block: " + ", ".join(_effect(r, "divergence") for _, r in diverging.iterrows())
    if len(separating):
        text += "; the prompts separate the pair (+: toward its true answer) from block: " + ", ".join(
            _effect(r, "separation") for _, r in separating.iterrows()
        )
    return _wrapped(text)


def _effect(row: pd.Series, kind: str) -> str:
    """``"m 3/4 (+1.20 [+0.90, +1.50])"``: a size's divergence or separation block and its effect."""
    return (
        f"{row['model']} {row[f'{kind}_layer']:g}/{row['n_layers']} ({row[f'{kind}_effect']:+.2f} "
        f"[{row[f'{kind}_effect_low']:+.2f}, {row[f'{kind}_effect_high']:+.2f}])"
    )


def _layer(row: pd.Series, kind: str) -> str:
    """``"3 [2, 4]"``: a decision or divergence layer with its 95% interval; ``–`` when none."""
    layer, low, high = row[f"{kind}_layer"], row[f"{kind}_layer_low"], row[f"{kind}_layer_high"]
    if not pd.notna(layer):
        return "–"
    return f"{layer:g} [{low:g}, {high:g}]" if pd.notna(low) else f"{layer:g}"


def print_closing_summary(
    table: pd.DataFrame, out: Path, order: Sequence[str] = (), report: Path | None = None
) -> None:
    """Print the run's few-line summary, the report's path and where the full tables are."""
    from probes.analysis.shape import ALPHA

    print(f"\nshape of last-layer accuracy across sizes, smallest→largest (named only where p ≤ {ALPHA:g}):")
    for line in closing_lines(table, order):
        print(line)
    if report is not None:
        print(f"report: {report}")
    print(f"results: {out} (every table: probes show {out})")


def show_tables(table: pd.DataFrame, order: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """The tables behind ``probes show``, rows in reading order (task, variant as in
    :data:`probes.tasks.variants.VARIANTS`, model smallest first, layer).

    ``layers``: per (task, variant, model, layer) accuracy (a tie is half right, Wilson 95%
    interval) and mean log-odds (bootstrap 95% interval), :func:`probes.analysis.metrics.aggregate`;
    ``decision`` and ``divergence``: :mod:`probes.analysis.decision`'s per-model layers.
    """
    from probes.analysis.decision import decision_summary, divergence_summary
    from probes.analysis.metrics import aggregate
    from probes.analysis.scoring import per_layer_score
    from probes.report.tables import task_order, variant_order

    models = _ordered(set(table["model"]), order)
    ranks = {
        "task": {task: i for i, task in enumerate(task_order(table))},
        "variant": {variant: i for i, variant in enumerate(variant_order(table))},
        "model": {model: i for i, model in enumerate(models)},
    }

    def ranked(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        if frame.empty:
            return frame
        key = lambda column: column.map(ranks[column.name]) if column.name in ranks else column  # noqa: E731
        return frame.sort_values(keys, key=key, kind="stable").reset_index(drop=True)

    return {
        "layers": ranked(
            aggregate(table, score=per_layer_score(table)),  # 1000 resamples per layer
            ["task", "variant", "model", "layer"],
        ),
        "decision": ranked(decision_summary(table), ["task", "variant", "model"]),
        "divergence": ranked(divergence_summary(table), ["task", "model"]),
    }


def show_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """A table's rows as records for CSV or JSON: missing figures as None (empty, ``null``)."""
    return [
        {key: None if _missing(value) else value for key, value in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: present
        return False


def print_tables(
    table: pd.DataFrame,
    out: Path | None = None,
    order: Sequence[str] = (),
    form: str = "text",
    which: str = "layers",
) -> None:
    """Print accuracy and log-odds per layer and model, decision and divergence layers (``probes show``).

    Text is for people: every line fits :data:`~probes.cli.display.WIDTH` columns (a table of
    more models than fit continues below), a layer past a model's depth shows ``–``. ``form``
    ``"csv"`` or ``"json"`` prints the one table ``which`` names
    (:data:`~probes.cli.display.SHOW_TABLES`) for scripts.
    """
    from probes.analysis.scoring import (
        CREDITS,
        SCORE_NAMES,
        SCORES,
        length_warnings,
        per_layer_credit,
        per_layer_score,
        scoring_warnings,
    )
    from probes.report.tables import last_layer, lenses, one_lens

    present = lenses(table)
    lens_note = None
    if len(present) > 1:  # one lens at a time; the default one first
        table = one_lens(table)
        lens_note = f"lens {present[0]} (the store also holds {', '.join(present[1:])})"
    tables = show_tables(table, order)
    if form != "text":
        print(records_text(show_records(tables[which]), form))
        return
    if lens_note:
        print(lens_note)
    score_name = SCORE_NAMES[per_layer_score(table)]
    score = SCORES[per_layer_score(table)]
    credit = SCORE_NAMES[CREDITS[per_layer_credit(table)]]
    final = last_layer(table).groupby(["task", "variant", "model"])["correct"].mean()
    summary = tables["layers"]
    for (task, variant), group in summary.groupby(["task", "variant"], sort=False):
        columns = list(dict.fromkeys(group["model"]))
        print()
        for line in wrapped(
            f"== {task} / {variant}: accuracy by layer (rows) and model (columns), {credit} score; "
            "a tie is half right",
            indent=0,
        ):
            print(line)
        accuracy = group.pivot_table(index="layer", columns="model", values="accuracy")[columns]
        for line in layer_grid(accuracy, lambda v: f"{v:.2f}"):
            print(line)
        prize = ", ".join(f"{m} {final[(task, variant, m)]:.2f}" for m in columns)
        for line in wrapped(
            f"-- last-layer accuracy, prize metric (summed log-probs, as lm-evaluation-harness): {prize}",
            indent=0,
        ):
            print(line)
        for line in wrapped(f"-- {task} / {variant}: mean log-odds true − distractor, {score}", indent=0):
            print(line)
        odds = group.pivot_table(index="layer", columns="model", values="mean_log_odds")[columns]
        for line in layer_grid(odds, lambda v: f"{v:+.2f}"):
            print(line)
    _print_layers(tables["decision"], tables["divergence"], score_name)
    for line in [*scoring_warnings(table), *length_warnings(table)]:
        print()
        for part in wrapped(line, indent=0, first="warning: "):
            print(part)
    if out is not None:
        print(f"\nresults: {out}")


def layer_grid(pivot: pd.DataFrame, number: Callable[[float], str], width: int = WIDTH) -> list[str]:
    """A layer × model table as text lines no wider than ``width``.

    Cells absent from ``pivot`` (layers past a smaller model's depth) print as ``–``; models
    that do not fit beside the others continue in a further block below, the layer column
    repeated.
    """
    rows = [
        {"layer": str(layer), **{m: None if pd.isna(v) else number(v) for m, v in values.items()}}
        for layer, values in pivot.iterrows()
    ]
    layer_width = max([len("layer")] + [len(row["layer"]) for row in rows])
    blocks: list[list[str]] = [[]]
    used = 2 + layer_width
    for model in pivot.columns:
        cell = max([len(str(model))] + [len(row[model] or MISSING) for row in rows])
        if blocks[-1] and used + 2 + cell > width:
            blocks.append([])
            used = 2 + layer_width
        blocks[-1].append(model)
        used += 2 + cell
    lines: list[str] = []
    for index, block in enumerate(blocks):
        if index:
            lines.append("")
        columns = {"layer": "layer", **{m: str(m) for m in block}}
        lines += text_table(rows, columns, right=list(columns), width=width, shrink=block[0])
    return lines


def _print_layers(decision: pd.DataFrame, divergence: pd.DataFrame, score_name: str) -> None:
    """The decision and divergence layers (probes.analysis.decision) with their 95% intervals."""
    print()
    for line in wrapped(
        "== decision layer: first block from which the true answer wins through the last; median "
        "over items [95% CI], only where last-layer accuracy (a tie is half right) is above chance; "
        f"{score_name} score",
        indent=0,
    ):
        print(line)
    columns = {
        "model": "model",
        "blocks": "blocks",
        "variant": "variant",
        "accuracy": "accuracy [95% CI]",
        "chance": "chance",
        "share": "with one",
        "layer": "decision layer",
    }
    for task, group in decision.groupby("task", sort=False):
        rows = [
            {
                "model": row.model,
                "blocks": row.n_layers,
                "variant": row.variant,
                "accuracy": f"{row.accuracy:.2f} [{row.accuracy_low:.2f}, {row.accuracy_high:.2f}]",
                "chance": f"{row.chance:.2f}",
                "share": None
                if _missing(row.share_with_decision_layer)
                else f"{row.share_with_decision_layer:.0%}",
                "layer": _layer_cell(row.decision_layer, row.decision_layer_low, row.decision_layer_high)
                if row.above_chance
                else "– (not above chance)",
            }
            for row in group.itertuples()
        ]
        print(f"{task}:")
        for line in text_table(rows, columns, right=["blocks", "chance", "share"], shrink="model"):
            print(line)
    if divergence.empty:
        print("\n(no divergence layer: it needs both the prize and the no_distractor variant)")
        return
    print()
    for line in wrapped(
        "== divergence layer: first block where the prize prompt pulls the prize's answer pair toward "
        "its distractor, against the no_distractor prompt on the same pair (paired over items); "
        "separation layer: first block where the two prompts move the pair apart either way; effect "
        f"there [simultaneous 95% CI, family-wise over blocks]; {score_name} score",
        indent=0,
    ):
        print(line)
    rows = [
        {
            "model": row.model,
            "task": row.task,
            "blocks": row.n_layers,
            "pairs": row.n_pairs,
            "unpaired": row.n_unpaired,
            "divergence": _effect_cell(row, "divergence"),
            "separation": _effect_cell(row, "separation"),
        }
        for row in divergence.itertuples()
    ]
    columns = {
        "model": "model",
        "task": "task",
        "blocks": "blocks",
        "pairs": "pairs",
        "unpaired": "unpaired",
        "divergence": "divergence layer",
        "separation": "separation layer",
    }
    for line in text_table(rows, columns, right=["blocks", "pairs", "unpaired"], shrink="task"):
        print(line)


def _effect_cell(row: Any, kind: str) -> str:
    """``"3 (-1.20 [-1.50, -0.90])"``, ``"– (none)"``, or ``"not determined"`` (too few pairs)."""
    layer = getattr(row, f"{kind}_layer")
    if not row.testable:
        return "not determined"
    if not pd.notna(layer):
        return "– (none)"
    effect, low, high = (getattr(row, f"{kind}_effect{end}") for end in ("", "_low", "_high"))
    return f"{layer:g} ({effect:+.2f} [{low:+.2f}, {high:+.2f}])"


def _layer_cell(layer: float, low: float, high: float) -> str:
    """``"3 [2, 4]"``, or ``"–"`` when there is no layer."""
    if not pd.notna(layer):
        return "–"
    interval = f" [{low:g}, {high:g}]" if pd.notna(low) else ""
    return f"{layer:g}{interval}"


#: Kinds of the ablation study's tables (:mod:`probes.ablate.study`).
ABLATION_KINDS = ("attribution", "ablation", "patching", "patching_unpaired")


def ablation_show_tables(
    tables: dict[str, pd.DataFrame], order: Sequence[str] = ()
) -> dict[str, pd.DataFrame]:
    """The ablation study's aggregates ``probes show`` prints, models smallest first.

    ``pushers``: per model the five heads and MLPs of most negative mean direct logit attribution;
    ``effects``: per ablated set and method the accuracy and log-odds change
    (:func:`probes.ablate.summary.ablation_effects`); ``patching``: per model, positions mode
    and site the share of the item→twin gap restored (missing where the gap is under
    :data:`probes.ablate.summary.MIN_GAP`); ``unpaired``: items patching could not pair, by reason.
    """
    from probes.ablate.summary import ablation_effects, distractor_pushers, patching_curve

    def by_size(frame: pd.DataFrame) -> pd.DataFrame:
        models = _ordered(set(frame["model"]), order)
        rank = {model: i for i, model in enumerate(models)}
        return frame.sort_values("model", key=lambda c: c.map(rank), kind="stable").reset_index(drop=True)

    found: dict[str, pd.DataFrame] = {}
    if len(tables.get("attribution", ())):
        found["pushers"] = by_size(distractor_pushers(tables["attribution"]))
    if len(tables.get("ablation", ())):
        found["effects"] = by_size(ablation_effects(tables["ablation"]))
    if len(tables.get("patching", ())):
        found["patching"] = by_size(patching_curve(tables["patching"]))
    unpaired = tables.get("patching_unpaired")
    if unpaired is not None and len(unpaired):
        found["unpaired"] = by_size(unpaired.groupby(["model", "task", "reason"], as_index=False).size())
    return found


def print_ablation_tables(tables: dict[str, pd.DataFrame], order: Sequence[str] = ()) -> None:
    """Print the ablation study's tables for people (``probes show``), every line ≤ 100 columns."""
    from probes.ablate.summary import MIN_GAP

    found = ablation_show_tables(tables, order)
    if "pushers" in found:
        _heading("== parts that push the distractor most: mean direct logit attribution (log-odds)")
        for task, group in found["pushers"].groupby("task", sort=False):
            rows = [
                {"model": r.model, "component": r.component, "attribution": f"{r.attribution:+.3f}"}
                for r in group.itertuples()
            ]
            print(f"{task}:")
            _print(text_table(rows, {"model": "model", "component": "part", "attribution": "attribution"},
                              right=["attribution"]))  # fmt: skip
    if "effects" in found:
        _heading(
            "== ablation: accuracy before and after (a tie is half right) and the mean log-odds change; "
            "random sets pooled over their draws (± the draws' spread)"
        )
        for task, group in found["effects"].groupby("task", sort=False):
            rows = [
                {
                    "model": r.model,
                    "set": r.selection if r.selection != "single" else r.components,
                    "method": r.method,
                    "k": r.k,
                    "clean": f"{r.accuracy_clean:.2f}",
                    "ablated": f"{r.accuracy_ablated:.2f}",
                    "change": f"{r.delta:+.2f}" + ("" if _missing(r.delta_std) else f" ± {r.delta_std:.2f}"),
                }
                for r in group.itertuples()
            ]
            columns = {"model": "model", "set": "ablated", "method": "method", "k": "k", "clean": "acc clean",
                       "ablated": "acc ablated", "change": "Δ log-odds"}  # fmt: skip
            print(f"{task}:")
            _print(text_table(rows, columns, right=["k", "clean", "ablated", "change"], shrink="set"))
    if "patching" in found:
        resid = found["patching"][found["patching"]["site"] == "resid"]
        _heading(
            "== residual patching from the no_distractor twin: share of the item→twin log-odds gap "
            f"restored, by layer (rows) and model (columns); – where the gap is under {MIN_GAP:g} nats"
        )
        for (task, mode), group in resid.groupby(["task", "positions"], sort=False):
            print(f"{task}, positions {mode}:")
            models = list(dict.fromkeys(group["model"]))
            grid = group.pivot_table(index="layer", columns="model", values="restored", dropna=False)
            _print(layer_grid(grid.reindex(columns=models), lambda v: f"{v:.2f}"))
    if "unpaired" in found:
        _heading("== items without a usable twin (not patched)")
        rows = found["unpaired"].to_dict("records")
        _print(text_table(rows, {"model": "model", "task": "task", "size": "items", "reason": "reason"},
                          right=["size"], shrink="reason"))  # fmt: skip


def ablation_closing_lines(tables: dict[str, pd.DataFrame], order: Sequence[str] = ()) -> list[str]:
    """A few lines per task of what an ablation study found in its largest model, and where the rest is.

    Descriptive figures, no test: the parts that push the distractor most, what ablating the
    top-k distractor heads does next to random k, and the first layer whose residual patch
    restores half the gap.
    """
    found = ablation_show_tables(tables, order)
    lines = []
    tasks = list(dict.fromkeys(pd.concat([t[["task"]] for t in tables.values() if len(t)])["task"]))
    for task in tasks[:MAX_TASKS]:
        models = _ordered(
            {m for t in tables.values() if len(t) for m in t.loc[t["task"] == task, "model"]}, order
        )
        largest = models[-1]
        size_note = f"{len(models)} sizes, {models[0]}…{largest}" if len(models) > 1 else largest
        lines.append(
            f"{task} ({size_note}); largest model {largest}:" if len(models) > 1 else f"{task} ({largest}):"
        )
        pushers = found.get("pushers")
        if pushers is not None:
            mine = pushers[(pushers["task"] == task) & (pushers["model"] == largest)].head(3)
            named = ", ".join(
                f"{r.component}\u00a0{r.attribution:+.2f}" for r in mine.itertuples()
            )  # kept together
            lines += _wrapped(f"pushes the distractor most (mean direct logit attribution): {named}")
        effects = found.get("effects")
        if effects is not None:
            mine = effects[(effects["task"] == task) & (effects["model"] == largest)]
            top, random = mine[mine["selection"] == "top"], mine[mine["selection"] == "random"]
            if len(top):
                parts = []
                for r in top.itertuples():
                    same = random[random["k"] == r.k]
                    versus = f" (random {same['delta'].iloc[0]:+.2f})" if len(same) else ""
                    parts.append(
                        f"k={r.k}\u00a0{r.delta:+.2f}{versus}".replace(" (random ", "\u00a0(random\u00a0")
                    )
                method = top["method"].iloc[0]
                lines += _wrapped(
                    f"{method}-ablating its top-k distractor heads, Δ log-odds: {', '.join(parts)}"
                )
        patching = found.get("patching")
        if patching is not None:
            mine = patching[
                (patching["task"] == task) & (patching["model"] == largest) & (patching["site"] == "resid")
            ]
            parts = []
            for mode, group in mine.groupby("positions", sort=False):
                half = group[group["restored"] >= 0.5]
                if group["restored"].isna().all():
                    parts.append(f"{mode}: gap too small to normalise")
                else:
                    parts.append(
                        f"{mode}: from layer {int(half['layer'].min())}" if len(half) else f"{mode}: none"
                    )
            if parts:
                lines += _wrapped(
                    f"residual patch from the no_distractor twin restores half the gap: {'; '.join(parts)}"
                )
    if len(tasks) > MAX_TASKS:
        lines.append(f"… and {len(tasks) - MAX_TASKS} more task(s): see `probes show`.")
    return lines


def _heading(text: str) -> None:
    print()
    _print(wrapped(text, indent=0))


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


#: Variants printed first, in this order, when the store holds them.
FIRST_VARIANTS = ("prize", "one_shot")


def _feature_model_order(models: list[str], store: Path) -> list[str]:
    from probes.report.tables import model_order
    from probes.store.store import Store

    manifest = Store(store).manifest("features")
    ordered = model_order(manifest) if len(manifest) else []
    return [m for m in ordered if m in models] + sorted(set(models) - set(ordered))


def feature_closing_lines(store: Path, pointer: bool = True) -> list[str]:
    """The closing table of a store's feature study (empty when it holds none); with ``pointer``, a last
    line saying where every figure and row is."""
    from probes.features.summary import ablation_comparison, splice_check
    from probes.store.store import Store

    stored = Store(store)
    if "feature_ablation" not in stored.kinds():
        return []
    items, ablation = stored.read("feature_items"), stored.read("feature_ablation")
    comparison = ablation_comparison(ablation)
    splices = splice_check(items)
    lines = []
    variants = list(dict.fromkeys(items["variant"]))
    variants = [v for v in FIRST_VARIANTS if v in variants] + [v for v in variants if v not in FIRST_VARIANTS]
    for task in dict.fromkeys(items["task"]):
        for variant in variants[:2]:
            rows = []
            mine = comparison[(comparison["task"] == task) & (comparison["variant"] == variant)]
            spliced = splices[(splices["task"] == task) & (splices["variant"] == variant)]
            for model in _feature_model_order(list(dict.fromkeys(spliced["model"])), store):
                for splice in spliced[spliced["model"] == model].itertuples():
                    here = mine[(mine["model"] == model) & (mine["layer"] == splice.layer)]
                    row = {
                        "model": model,
                        "layer": splice.layer,
                        "accuracy": f"{splice.accuracy:.2f}",
                        "spliced": f"{splice.spliced_accuracy:.2f}",
                    }
                    if len(here):
                        best = here.loc[here["k"].idxmax()]
                        low, high = best["accuracy_difference_low"], best["accuracy_difference_high"]
                        row.update(
                            k=int(best["k"]),
                            top=f"{best['accuracy_top']:+.2f}",
                            random=f"{best['accuracy_random']:+.2f}",
                            difference=f"{best['accuracy_difference']:+.2f} [{low:+.2f}, {high:+.2f}]",
                            verdict=best["decided"],
                        )
                    rows.append(row)
            if not rows:
                continue
            lines += wrapped(
                f"{task}, {variant}: accuracy change when the top-k distractor features (ranked on the other "
                "half of the items) or k random active features are ablated",
                indent=0,
            )
            columns = {
                "model": "model", "layer": "layer", "accuracy": "acc", "spliced": "spliced", "k": "k",
                "top": "top-k", "random": "random-k", "difference": "top − random [95% CI]",
                "verdict": "verdict",
            }  # fmt: skip
            lines += text_table(rows, columns, right=["layer", "accuracy", "spliced", "k", "top", "random"])
            lines.append("")
    if pointer:
        lines += wrapped(
            f"every figure: probes report {store} (features.html); rows: the store's features, "
            "feature_items and feature_ablation tables",
            indent=0,
        )
    return lines


#: Kinds of the feature study's tables (:mod:`probes.features.study`).
FEATURE_KINDS = ("features", "feature_items", "feature_ablation")


def feature_show_tables(store: Path) -> dict[str, pd.DataFrame]:
    """The feature study's aggregates ``probes show`` prints, models smallest first.

    ``feature-ranking``: every feature's mean attribution with its interval
    (:func:`probes.features.summary.feature_ranking`); ``feature-verdicts``: top-k against
    random-k per k (:func:`probes.features.summary.ablation_comparison`); ``feature-checks``:
    splicing and the attribution identity per layer (:func:`probes.features.summary.splice_check`).
    """
    from probes.features.summary import ablation_comparison, feature_ranking, splice_check
    from probes.store.store import Store

    stored = Store(store)
    kinds = set(stored.kinds())
    if not set(FEATURE_KINDS) <= kinds:
        return {}
    items = stored.read("feature_items")
    order = _feature_model_order(list(dict.fromkeys(items["model"])), store)
    rank = {model: i for i, model in enumerate(order)}

    def by_size(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values("model", key=lambda c: c.map(rank), kind="stable").reset_index(drop=True)

    return {
        "feature-ranking": by_size(feature_ranking(stored.read("features"), items)),
        "feature-verdicts": by_size(ablation_comparison(stored.read("feature_ablation"))),
        "feature-checks": by_size(splice_check(items)),
    }


def _variant_rank(variant: str) -> int:
    return FIRST_VARIANTS.index(variant) if variant in FIRST_VARIANTS else len(FIRST_VARIANTS)


def print_feature_tables(store: Path, top: int = 3) -> None:
    """Print the feature study for people (``probes show``): the verdict table, then per model,
    variant and layer the features pushing each answer hardest; every line ≤ 100 columns."""
    _print(feature_closing_lines(store, pointer=False)[:-1])  # without the pointer and its blank line
    ranking = feature_show_tables(store).get("feature-ranking")
    if ranking is None:
        return
    _heading(
        f"== the {top} features pushing the distractor (−) and the true answer (+) hardest, of those "
        "significant after Holm's correction over their layer: mean attribution to the log-odds, 95% "
        "interval; peak = token and position from the end"
    )
    from probes.features.summary import top_features

    chosen = top_features(ranking, top)
    if chosen.empty:
        print("  (none: no feature's mean differs from 0 after Holm's correction)")
        return
    several_tasks = chosen["task"].nunique() > 1  # else the tasks' rows could not be told apart
    rows = [
        {"task": r.task, "model": r.model, "variant": r.variant, "layer": r.layer, "feature": f"f{r.feature}",
         "attribution": f"{r.attribution:+.3f} [{r.low:+.3f}, {r.high:+.3f}]",
         "active": f"{r.n_active}/{r.n_items}", "peak": f"{r.token_text!r} @-{r.from_end}"}
        for r in chosen.sort_values(
            ["task", "variant", "model", "layer", "attribution"],
            key=lambda c: c.map(_variant_rank) if c.name == "variant" else c,
            kind="stable",
        ).itertuples()
    ]  # fmt: skip
    columns = {"task": "task", "model": "model", "variant": "variant", "layer": "layer", "feature": "feature",
               "attribution": "attribution [95% CI]", "active": "active", "peak": "peak"}  # fmt: skip
    if not several_tasks:
        del columns["task"]
    _print(text_table(rows, columns, right=["layer", "active"], shrink="model"))
