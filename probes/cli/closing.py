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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from probes.cli.display import wrapped

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


def print_tables(table: pd.DataFrame, out: Path | None = None, order: Sequence[str] = ()) -> None:
    """Print accuracy and log-odds per layer and model, decision and divergence layers (``probes show``)."""
    from probes.analysis.metrics import aggregate
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
    if len(present) > 1:  # one lens at a time; the default one first
        table = one_lens(table)
        print(f"lens {present[0]} (the store also holds {', '.join(present[1:])})")
    score = per_layer_score(table)
    summary = aggregate(table, score=score)  # 1000 resamples per layer
    credit = SCORE_NAMES[CREDITS[per_layer_credit(table)]]
    final = last_layer(table).groupby(["task", "variant", "model"])["correct"].mean()
    present = set(table["model"])
    order = [m for m in order if m in present] + sorted(present - set(order))
    for (task, variant), group in summary.groupby(["task", "variant"], sort=False):
        print(
            f"\n== {task} / {variant}: accuracy by layer (rows) and model (columns), {credit} score; "
            "a tie is half right"
        )
        accuracy = group.pivot_table(index="layer", columns="model", values="accuracy")[
            [m for m in order if m in set(group["model"])]
        ]
        print(accuracy.to_string(float_format=lambda v: f"{v:.2f}"))
        prize = ", ".join(f"{m} {final[(task, variant, m)]:.2f}" for m in accuracy.columns)
        print(f"-- last-layer accuracy, prize metric (summed log-probs, as lm-evaluation-harness): {prize}")
        print(f"-- {task} / {variant}: mean log-odds true − distractor, {SCORES[score]}")
        odds = group.pivot_table(index="layer", columns="model", values="mean_log_odds")[accuracy.columns]
        print(odds.to_string(float_format=lambda v: f"{v:+.2f}"))
    _print_layers(table, order)
    for line in [*scoring_warnings(table), *length_warnings(table)]:
        print(f"\nwarning: {line}")
    if out is not None:
        print(f"\nresults: {out}")


def _print_layers(table: pd.DataFrame, order: Sequence[str]) -> None:
    """The decision and divergence layers (probes.analysis.decision) with their 95% intervals."""
    from probes.analysis.decision import decision_summary, divergence_summary
    from probes.analysis.scoring import SCORE_NAMES, per_layer_score

    rank = {model: i for i, model in enumerate(order)}

    def ranked(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return frame.sort_values(keys, key=lambda c: c.map(rank) if c.name == "model" else c)

    decision = ranked(decision_summary(table), ["model", "task", "variant"])
    print(
        "\n== decision layer: first block from which the true answer wins through the last; median "
        "over items [95% CI], only where last-layer accuracy (a tie is half right) is above chance; "
        f"both by the {SCORE_NAMES[per_layer_score(table)]} score"
    )
    rows = [
        {
            "model": row.model,
            "task": row.task,
            "variant": row.variant,
            "blocks": row.n_layers,
            "accuracy": f"{row.accuracy:.2f} [{row.accuracy_low:.2f}, {row.accuracy_high:.2f}]",
            "chance": f"{row.chance:.2f}",
            "items with one": f"{row.share_with_decision_layer:.0%}",
            "decision layer": _layer_cell(row.decision_layer, row.decision_layer_low, row.decision_layer_high)
            if row.above_chance
            else "– (not above chance)",
        }
        for row in decision.itertuples()
    ]
    print(pd.DataFrame(rows).to_string(index=False))
    divergence = divergence_summary(table)
    if divergence.empty:
        print("\n(no divergence layer: it needs both the prize and the no_distractor variant)")
        return
    divergence = ranked(divergence, ["model", "task"])
    print(
        "\n== divergence layer: first block where the prize prompt pulls the prize's answer pair toward "
        "its distractor, against the no_distractor prompt on the same pair (paired over items); separation "
        "layer: first block where the two prompts move the pair apart either way; effect there "
        f"[simultaneous 95% CI, family-wise over blocks]; {SCORE_NAMES[per_layer_score(table)]} score"
    )
    rows = [
        {
            "model": row.model,
            "task": row.task,
            "blocks": row.n_layers,
            "pairs": row.n_pairs,
            "unpaired": row.n_unpaired,
            "divergence layer": _effect_cell(row, "divergence"),
            "separation layer": _effect_cell(row, "separation"),
        }
        for row in divergence.itertuples()
    ]
    print(pd.DataFrame(rows).to_string(index=False))


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
