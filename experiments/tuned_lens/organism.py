"""The organism ladder under both lenses: does the distractor still win mid-depth under the tuned lens?

Sweeps the built-in organism ladder on its negation task with the logit lens and with the tuned
lens (the lenses shipped with the rungs, or ``--lens-dir`` from `probes lens train`) into one
store (each rung's tuned lens under its id, ``tuned-<hash8>``), writes the report (which compares
the two lenses) and prints, per rung, variant, lens and layer, the mean log-odds true − distractor
and the share of items where the distractor wins::

    python -m experiments.tuned_lens.organism --out organism-lenses-results
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from probes.jobs.sweep import SweepOptions, results_of, run_sweep
from probes.report import load_results, write_report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("organism-lenses-results"))
    parser.add_argument("--lens-dir", type=Path, default=None, help="Lenses from `probes lens train`.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tables = []
    for lens in ("logit", "tuned"):
        options = SweepOptions(
            ladder="organism", out=args.out, lens=lens, lens_dir=args.lens_dir, progress=False
        )
        store, units = run_sweep(options)
        tables.append(results_of(store, units))
    rows = pd.concat(tables, ignore_index=True)
    rows["lens"] = rows["lens"].str.replace(r"-[0-9a-f]{8}$", "", regex=True)  # tuned-<hash8>: tuned
    rows["distractor_wins"] = rows["log_odds"] < 0
    summary = (
        rows.groupby(["model", "variant", "lens", "layer"], sort=False)
        .agg(mean_log_odds=("log_odds", "mean"), distractor_wins=("distractor_wins", "mean"))
        .reset_index()
    )
    for (model, variant), group in summary.groupby(["model", "variant"], sort=False):
        print(f"\n== {model} / {variant}")
        print(
            group.pivot(index="layer", columns="lens", values=["mean_log_odds", "distractor_wins"]).round(2)
        )
    write_report(load_results(args.out), args.out / "report", png=False)
    print(f"\nreport: {args.out / 'report' / 'report.html'}")


if __name__ == "__main__":
    main()
