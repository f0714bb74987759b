"""The `probes` command: run sweeps, list ladders and tasks, show results."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from probes.errors import ProbesError
from probes.sweep import SweepOptions, results_of, run_sweep


def add_dataclass_options(parser: argparse.ArgumentParser, options_class: type) -> None:
    """One ``--option`` per dataclass field, with the field's help text and default."""
    hints = typing.get_type_hints(options_class)
    for spec in dataclasses.fields(options_class):
        flag = "--" + spec.name.replace("_", "-")
        kind = hints[spec.name]
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()  # type: ignore[misc]
        help_text = f"{spec.metadata.get('help', '')} (default: {default})"
        args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        base = (
            args[0] if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union else kind
        )
        if typing.get_origin(base) is list:
            parser.add_argument(
                flag, nargs="+", type=typing.get_args(base)[0], default=default, help=help_text
            )
        else:
            parser.add_argument(flag, type=base, default=default, help=help_text)


def _print_summary(table: pd.DataFrame, out: Path | None = None) -> None:
    from probes.metrics import aggregate, critical_summary

    summary = aggregate(table, n_resamples=200)
    order = list(dict.fromkeys(table["model"]))
    for (task, variant), group in summary.groupby(["task", "variant"], sort=False):
        print(f"\n== {task} / {variant}: accuracy by layer (rows) and model (columns)")
        accuracy = group.pivot_table(index="layer", columns="model", values="accuracy")[
            [m for m in order if m in set(group["model"])]
        ]
        print(accuracy.to_string(float_format=lambda v: f"{v:.2f}"))
        print(f"-- {task} / {variant}: mean log-odds true − distractor")
        odds = group.pivot_table(index="layer", columns="model", values="mean_log_odds")[accuracy.columns]
        print(odds.to_string(float_format=lambda v: f"{v:+.2f}"))
    critical = critical_summary(table)
    print("\n== critical layer (first layer from which the true answer wins through the last)")
    columns = ["model", "task", "variant", "n_layers", "share_with_critical_layer", "median_critical_layer"]
    print(critical[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if out is not None:
        print(f"\nresults: {out}")


def _command_run(args: argparse.Namespace) -> int:
    fields = {f.name for f in dataclasses.fields(SweepOptions)}
    options = SweepOptions(**{k: v for k, v in vars(args).items() if k in fields})
    store, units = run_sweep(options)
    if units:
        _print_summary(results_of(store, units), store.root)
    return 0


def _command_show(args: argparse.Namespace) -> int:
    from probes.store import Store

    _print_summary(Store(args.store).read(), Path(args.store))
    return 0


def _command_ladders(args: argparse.Namespace) -> int:
    from probes.ladders import ladders_table

    table = ladders_table()
    if args.ladder:
        table = table[table["ladder"] == args.ladder]
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False))
    return 0


def _command_tasks(args: argparse.Namespace) -> int:
    from probes.tasks import get_task, task_names

    for name in task_names():
        task = get_task(name)
        print(f"{task.name}: {task.description}\n  distractor: {task.distractor}")
        for variant in task.variants:
            sample = task.items(variant, n_items=1, seed=0)[0]
            answers = f"true {sample.true_answer!r}, distractor {sample.distractor_answer!r}"
            print(f"  [{variant}] {sample.prompt!r} -> {answers}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `probes` command."""
    parser = argparse.ArgumentParser(prog="probes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Sweep a ladder over tasks and variants into a result store.")
    add_dataclass_options(run, SweepOptions)
    run.set_defaults(handler=_command_run)
    show = commands.add_parser("show", help="Print accuracy and log-odds per layer and size of a store.")
    show.add_argument("store", help="Folder of a result store (the --out of `probes run`).")
    show.set_defaults(handler=_command_show)
    ladders = commands.add_parser("ladders", help="List the known ladders and their rungs.")
    ladders.add_argument("ladder", nargs="?", help="Only this ladder.")
    ladders.set_defaults(handler=_command_ladders)
    tasks = commands.add_parser("tasks", help="List tasks and variants with a sample item each.")
    tasks.set_defaults(handler=_command_tasks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `probes` command; errors of ours print as one clear line."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ProbesError as err:
        print(f"probes: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "probes: interrupted; finished shards are kept, re-run the same command to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
