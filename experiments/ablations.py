"""Which layers and heads push the distractor, per size: attribution, ablation and patching on a ladder.

Runs the three analyses of :mod:`probes.ablate` on every model of a ladder (the built-in
``organism`` ladder by default, offline, a couple of minutes on 2 CPU cores), writes their
per-item tables to a result store, the figures (HTML page and PNGs) to ``<out>/report/``, the
aggregate tables as CSV beside them, and prints the key numbers per size.

Example::

    python -m experiments.ablations --out results/ablations
    python -m experiments.ablations --ladder pythia --tasks negation_qa --n-items 100 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from probes.ablate.study import AblateOptions, run_ablation_study
from probes.ablate.summary import ablation_effects, distractor_pushers, patching_curve
from probes.errors import ProbesError
from probes.report import PngExportError
from probes.report.ablations import load_ablation_tables, write_ablation_page


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The script's options (the study's own are those of `probes ablate`)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ladder", default=None, help="A named ladder; the built-in organism ladder by default."
    )
    parser.add_argument("--tasks", nargs="+", default=None, help="Tasks (default: organism_negation).")
    parser.add_argument("--n-items", type=int, default=None, help="Items per task (default: all of them).")
    parser.add_argument("--out", type=Path, default=Path("results/ablations"), help="Result store folder.")
    parser.add_argument("--device", default="cpu", help="Torch device.")
    parser.add_argument("--batch-size", type=int, default=32, help="Prompts per forward pass.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of items, donors and random head sets.")
    parser.add_argument("--no-png", action="store_true", help="Write the HTML page only.")
    return parser.parse_args(argv)


def headline(tables: dict[str, pd.DataFrame], order: list[str]) -> str:
    """Per size: the strongest distractor pushers, top-k vs random-k accuracy change, the patching curve."""
    lines = []
    pushers = distractor_pushers(tables["attribution"], top=3)
    effects = ablation_effects(tables["ablation"])
    curve = patching_curve(tables["patching"])
    for model in order:
        mine = pushers[pushers["model"] == model]
        parts = ", ".join(f"{r.component} {r.attribution:+.2f}" for r in mine.itertuples())
        lines.append(f"{model}: pushers {parts}")
        search = effects[(effects["model"] == model) & effects["selection"].isin(["top", "random"])]
        for k, group in search.groupby("k"):
            cells = {row.selection: row for row in group.itertuples()}
            top, random = cells.get("top"), cells.get("random")
            text = f"  k={k}: top Δacc {top.accuracy_change:+.3f} Δlog-odds {top.delta:+.2f}" if top else "  "
            if random is not None:
                text += (
                    f"; random Δacc {random.accuracy_change:+.3f} ± {random.accuracy_std:.3f}"
                    f" Δlog-odds {random.delta:+.2f} ± {random.delta_std:.2f}"
                )
            lines.append(text)
        for mode, group in curve[(curve["model"] == model) & (curve["site"] == "resid")].groupby("positions"):
            shares = group.sort_values("layer")["restored"]  # missing where the gap is under MIN_GAP
            values = " ".join(f"{v:.2f}" if pd.notna(v) else "–" for v in shares)
            lines.append(f"  patching ({mode}) restored by layer: {values}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the study, write the figures and tables, print the key numbers."""
    arguments = parse_arguments(argv)
    options = AblateOptions(
        ladder=arguments.ladder,
        n_items=arguments.n_items,
        out=arguments.out,
        device=arguments.device,
        batch_size=arguments.batch_size,
        seed=arguments.seed,
    )
    if arguments.tasks:
        options.tasks = arguments.tasks
    started = time.perf_counter()
    try:
        store = run_ablation_study(options)
        tables, order = load_ablation_tables(store.root)
        folder = store.root / "report"
        try:
            page = write_ablation_page(tables, folder, order, png=not arguments.no_png)
        except PngExportError as err:
            print(f"warning: {err}", file=sys.stderr)
            page = folder / "ablations.html"
    except ProbesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    distractor_pushers(tables["attribution"], top=5).to_csv(folder / "distractor_pushers.csv", index=False)
    ablation_effects(tables["ablation"]).to_csv(folder / "ablation_effects.csv", index=False)
    patching_curve(tables["patching"]).to_csv(folder / "patching_curve.csv", index=False)
    print(headline(tables, order))
    print(f"\n{time.perf_counter() - started:.0f} s; page: {page}; tables: {folder}/*.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
