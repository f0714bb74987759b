"""Reasoning depth: at which layer does a k-step answer become readable, per model of a ladder?

For the k-step tasks (``variable_chain``, ``multi_hop``, ``arithmetic_steps``) and k = 1 … 5, reads
every option of every item at every layer through the logit lens and writes, under ``--out``:

- ``store/``: a result store of the runs (one shard per model, task and lens, plus the step
  readouts as a table of their own kind), written by the shared run loop of
  :mod:`probes.runner`, so an interrupted study resumes where it stopped;
- ``layers.parquet``: the per-(model, item, layer) table of :func:`probes.metrics.layer_table` with
  ``steps`` (k), ``ladder`` and provenance (model, revision, lens, toolkit version);
- ``summary.csv``: per (model, task, k) accuracy, chance, and the first decodable layer (median and
  mean over decodable items), absolute and relative; tasks pooled as ``all``;
- ``steps_solved.csv``: per (model, task) the largest k solved (accuracy ≥ ``--threshold`` for
  every k' ≤ k) against the model's layers;
- ``step_readout.csv`` and ``step_peaks.csv``: mean lens readout of the value after every step j
  by layer, and the layer where each step's value peaks;
- ``figures/``: first decodable relative depth vs k (one line per model), steps solved vs layers,
  and the step readouts of the largest k, as standalone HTML and (with Chromium) PNG.

Example::

    python experiments/reasoning_depth.py                      # the built-in depth ladder
    python experiments/reasoning_depth.py --ladder pythia --n-items 100 --out pythia-depth
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from probes.lens import LogitLens, read_options  # noqa: E402
from probes.metrics import layer_table  # noqa: E402
from probes.models import HookedModel  # noqa: E402
from probes.reasoning import (  # noqa: E402
    SOLVED_ACCURACY,
    depth_summary,
    step_peaks,
    step_readout_summary,
    step_readout_table,
    steps_solved,
    with_steps,
)
from probes.report.document import BrowserNotFoundError, PngExportError, write_pngs  # noqa: E402
from probes.report.reasoning import first_decodable_depth, step_readouts, steps_solved_by_layers  # noqa: E402
from probes.runner import ItemOptions, Output, Unit, execute, model_specs, provenance  # noqa: E402
from probes.tasks import Item, load_items  # noqa: E402
from probes.tasks.kstep_vocabulary import TASKS  # noqa: E402
from probes.tasks.multistep import MAX_STEPS  # noqa: E402
from probes.version import __version__  # noqa: E402


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ladder", default="depth", help="a ladder name (`probes ladders`); the depth ladder by default"
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="k-step tasks to run")
    parser.add_argument(
        "--steps", nargs="+", type=int, default=list(range(1, MAX_STEPS + 1)), help="step counts k to keep"
    )
    parser.add_argument("--n-items", type=int, default=200, help="items per task before keeping --steps")
    parser.add_argument("--out", type=Path, default=Path("reasoning-depth-results"), help="report folder")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the items (0: the depth ladder's held-out set)"
    )
    parser.add_argument(
        "--threshold", type=float, default=SOLVED_ACCURACY, help="accuracy that counts as solved"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", type=int, default=16)
    return parser.parse_args(argv)


#: Kind of the store's table of per-step readouts.
STEP_READOUT = "step_readout"


def measure(arguments: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-layer table and the per-step readout table of every model of the ladder.

    One unit per (model, task) runs through the shared loop into ``<out>/store``; both tables
    are then read back from it, so a re-run skips the models already measured.
    """
    options = ItemOptions(
        ladder=arguments.ladder,
        tasks=list(arguments.tasks),
        n_items=arguments.n_items,
        seed=arguments.seed,
        out=arguments.out / "store",
        device=arguments.device,
        dtype=arguments.dtype,
        batch_size=arguments.batch_size,
    )
    items = [
        item
        for item in load_items(arguments.tasks, ["prize"], arguments.n_items, arguments.seed)
        if item.meta.get("steps") in arguments.steps
    ]
    by_task: dict[str, list[Item]] = {}
    for item in items:
        by_task.setdefault(item.task, []).append(item)
    lens = LogitLens()
    units = [
        Unit(model, task, "prize", tuple(group), lens=lens.name)
        for model in model_specs(options)
        for task, group in by_task.items()
    ]

    def compute(model: HookedModel, pending: list[Unit]) -> Iterator[Output]:
        # one read of every pending task's items, in their order, as the study has always batched
        chosen = [item for item in items if item.task in {unit.task for unit in pending}]
        readout = read_options(model, chosen, lens, batch_size=options.batch_size, progress=True)
        origin = provenance(model, lens.name)
        table = with_steps(layer_table(readout, origin, model.n_layers), chosen)
        table = table.assign(ladder=arguments.ladder, parameters=model.parameters)
        steps = step_readout_table(readout, origin, model.n_layers)
        for unit in pending:
            fields = {"n_items": len(unit.items), "lens": lens.name}
            mine = steps[steps["task"] == unit.task].reset_index(drop=True)
            yield Output(unit, mine, STEP_READOUT, fields=fields, done=False)
            yield Output(unit, table[table["task"] == unit.task].reset_index(drop=True), fields=fields)
        print(f"{model.name}: {model.n_layers} layers, {len(chosen)} items", flush=True)

    store = execute(units, options, compute, "shards")
    return _of(store.read(), units), _of(store.read(STEP_READOUT), units)


def _of(table: pd.DataFrame, units: Sequence[Unit]) -> pd.DataFrame:
    """The rows of these units, models in ladder order (smallest first), tasks as asked."""
    order = {(unit.model.label, unit.task): i for i, unit in enumerate(units)}
    rank = pd.Series([order.get(key, -1) for key in zip(table["model"], table["task"])], index=table.index)
    return (
        table[rank >= 0]
        .assign(_rank=rank)
        .sort_values("_rank", kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the study and write tables and figures."""
    arguments = parse_arguments(argv)
    out = arguments.out
    (out / "figures").mkdir(parents=True, exist_ok=True)
    table, steps_table = measure(arguments)
    table.to_parquet(out / "layers.parquet", index=False)
    summary = pd.concat([depth_summary(table), depth_summary(table.assign(task="all"))], ignore_index=True)
    summary.insert(0, "ladder", arguments.ladder)
    solved = steps_solved(summary, arguments.threshold).assign(
        ladder=arguments.ladder, toolkit_version=__version__
    )
    step_summary = step_readout_summary(steps_table)
    peaks = step_peaks(step_summary)
    summary.to_csv(out / "summary.csv", index=False)
    solved.to_csv(out / "steps_solved.csv", index=False)
    step_summary.to_csv(out / "step_readout.csv", index=False)
    peaks.to_csv(out / "step_peaks.csv", index=False)
    largest = max(arguments.steps)
    figures = {
        "first_decodable_depth": first_decodable_depth(summary),
        "steps_solved_by_layers": steps_solved_by_layers(solved),
        **{
            f"step_readouts_{task}_k{largest}": step_readouts(step_summary, task, largest)
            for task in sorted(steps_table["task"].unique())
        },
    }
    for name, figure in figures.items():
        figure.write_html(out / "figures" / f"{name}.html", include_plotlyjs=True)
    try:
        write_pngs(figures, out / "figures")
    except (PngExportError, BrowserNotFoundError) as error:
        print(f"PNG figures skipped: {error}")
    pd.set_option("display.width", 200)
    print(
        summary[["model", "task", "steps", "n_layers", "accuracy", "median_first_decodable_relative_depth"]]
    )
    print(solved[["model", "task", "n_layers", "steps_solved"]])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
