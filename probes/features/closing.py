"""What ``probes features`` prints when it ends: the top-k against random-k verdict per size and layer.

One table per task and variant (the first variant the store holds first: ``prize`` when present):
per model (smallest first) and SAE layer, the accuracy, what splicing the SAE in does to it, and
the accuracy change of ablating the top-k distractor features against k random ones (the largest
k with a top set), the difference's 95% interval and its verdict; then where the rest is.
"""

from __future__ import annotations

from pathlib import Path

from probes.cli.display import text_table, wrapped
from probes.features.summary import ablation_comparison, splice_check

#: Variants printed first, in this order, when the store holds them.
FIRST_VARIANTS = ("prize", "one_shot")


def _order(models: list[str], store: Path) -> list[str]:
    from probes.report.tables import model_order
    from probes.store.store import Store

    manifest = Store(store).manifest("features")
    ordered = model_order(manifest) if len(manifest) else []
    return [m for m in ordered if m in models] + sorted(set(models) - set(ordered))


def feature_closing_lines(store: Path) -> list[str]:
    """The closing table of a store's feature study (empty when it holds none)."""
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
            for model in _order(list(dict.fromkeys(spliced["model"])), store):
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
    lines += wrapped(
        f"every figure: probes report {store} (features.html); rows: the store's features, feature_items "
        "and feature_ablation tables",
        indent=0,
    )
    return lines
