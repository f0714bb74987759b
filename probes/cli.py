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

from probes.ablate.study import AblateOptions
from probes.errors import ProbesError
from probes.perplexity import PerplexityOptions
from probes.store import Store
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


def _size_order(store: Store) -> list[str]:
    """The store's models, smallest first: by parameters, then training FLOPs (checkpoints)."""
    from probes.report.tables import model_order

    manifest = store.manifest()
    return model_order(manifest) if len(manifest) else []


def _print_summary(table: pd.DataFrame, out: Path | None = None, order: Sequence[str] = ()) -> None:
    from probes.metrics import aggregate
    from probes.report.tables import lenses, one_lens
    from probes.scoring import SCORES, length_warnings, per_layer_score

    present = lenses(table)
    if len(present) > 1:  # one lens at a time; the default one first
        table = one_lens(table)
        print(f"lens {present[0]} (the store also holds {', '.join(present[1:])})")
    score = per_layer_score(table)
    summary = aggregate(table, n_resamples=200, score=score)
    present = set(table["model"])
    order = [m for m in order if m in present] + sorted(present - set(order))
    for (task, variant), group in summary.groupby(["task", "variant"], sort=False):
        print(f"\n== {task} / {variant}: accuracy by layer (rows) and model (columns); a tie is half right")
        accuracy = group.pivot_table(index="layer", columns="model", values="accuracy")[
            [m for m in order if m in set(group["model"])]
        ]
        print(accuracy.to_string(float_format=lambda v: f"{v:.2f}"))
        print(f"-- {task} / {variant}: mean log-odds true − distractor, {SCORES[score]}")
        odds = group.pivot_table(index="layer", columns="model", values="mean_log_odds")[accuracy.columns]
        print(odds.to_string(float_format=lambda v: f"{v:+.2f}"))
    _print_layers(table, order)
    for line in length_warnings(table):
        print(f"\nwarning: {line}")
    if out is not None:
        print(f"\nresults: {out}")


def _print_layers(table: pd.DataFrame, order: Sequence[str]) -> None:
    """The decision and divergence layers (probes.decision) with their 95% intervals."""
    from probes.decision import decision_summary, divergence_summary

    rank = {model: i for i, model in enumerate(order)}

    def ranked(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return frame.sort_values(keys, key=lambda c: c.map(rank) if c.name == "model" else c)

    decision = ranked(decision_summary(table, n_resamples=200), ["model", "task", "variant"])
    print(
        "\n== decision layer: first block from which the true answer wins through the last; median "
        "over items [95% CI], only where last-layer accuracy (a tie is half right) is above chance"
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
    divergence = divergence_summary(table, n_resamples=200)
    if divergence.empty:
        print("\n(no divergence layer: it needs both the prize and the no_distractor variant)")
        return
    divergence = ranked(divergence, ["model", "task"])
    print(
        "\n== divergence layer: first block where prize log-odds fall significantly below the "
        "no_distractor twin's (paired over items) [95% CI]"
    )
    rows = [
        {
            "model": row.model,
            "task": row.task,
            "blocks": row.n_layers,
            "pairs": row.n_pairs,
            "divergence layer": _layer_cell(
                row.divergence_layer, row.divergence_layer_low, row.divergence_layer_high
            )
            if pd.notna(row.divergence_layer)
            else "– (none)",
        }
        for row in divergence.itertuples()
    ]
    print(pd.DataFrame(rows).to_string(index=False))


def _layer_cell(layer: float, low: float, high: float) -> str:
    """``"3 [2, 4]"``, or ``"–"`` when there is no layer."""
    if not pd.notna(layer):
        return "–"
    interval = f" [{low:g}, {high:g}]" if pd.notna(low) else ""
    return f"{layer:g}{interval}"


def _command_run(args: argparse.Namespace) -> int:
    fields = {f.name for f in dataclasses.fields(SweepOptions)}
    options = SweepOptions(**{k: v for k, v in vars(args).items() if k in fields})
    store, units = run_sweep(options)
    if units:
        _print_summary(results_of(store, units), store.root, _size_order(store))
        if args.report:
            _write_report(store.root, store.root / "report", x="parameters", png=args.png, strict=False)
    return 0


def _command_ablate(args: argparse.Namespace) -> int:
    from probes.ablate.study import AblateOptions, run_ablation_study
    from probes.report.ablations import ablation_markdown, load_ablation_tables

    fields = {f.name for f in dataclasses.fields(AblateOptions)}
    options = AblateOptions(**{k: v for k, v in vars(args).items() if k in fields})
    store = run_ablation_study(options)
    tables, order = load_ablation_tables(store.root)
    print(ablation_markdown(tables, order))
    print(f"results: {store.root} (tables: {', '.join(sorted(tables))})")
    if args.report:
        _write_ablation_page(store.root, store.root / "report", png=args.png, strict=False)
    return 0


def _write_ablation_page(store: Path, folder: Path, png: bool, strict: bool) -> None:
    """Write a store's ablation page, if it has ablation tables; PNG failures warn unless ``strict``."""
    from probes.report import PngExportError
    from probes.report.ablations import load_ablation_tables, write_ablation_page

    tables, order = load_ablation_tables(store)
    if not tables:
        return
    try:
        page = write_ablation_page(tables, folder, order, png=png)
    except PngExportError as err:
        if strict:
            raise
        print(f"probes: warning: {err}", file=sys.stderr)
        page = folder / "ablations.html"
    print(f"ablation report: {page}")


def _command_show(args: argparse.Namespace) -> int:
    store = Store(args.store)
    _print_summary(store.read(), Path(args.store), _size_order(store))
    return 0


def _write_report(store: Path, folder: Path, x: str, png: bool, strict: bool) -> None:
    """Write the report of a whole store and print its path; PNG failures only warn unless ``strict``."""
    from probes.report import PngExportError, load_results, write_report

    try:
        write_report(load_results(store), folder, x=x, png=png)
    except PngExportError as err:
        if strict:
            raise
        print(f"probes: warning: {err}", file=sys.stderr)
    except OSError as err:  # a read-only store, a full disk
        if strict:
            raise ProbesError(
                f"cannot write the report into {folder} ({err}); give a writable --out."
            ) from None
        print(
            f"probes: warning: no report written ({err}); `probes report {store} --out DIR` retries.",
            file=sys.stderr,
        )
        return
    except ProbesError as err:
        if strict:
            raise
        # After a sweep the results are safe in the store: report the problem, keep exit 0.
        print(
            f"probes: warning: no report written ({err}); `probes report {store}` retries.", file=sys.stderr
        )
        return
    print(f"report: {folder / 'report.html'}")


def _command_report(args: argparse.Namespace) -> int:
    store = Path(args.store)
    folder = args.out or store / "report"
    if not Store(store).kinds():
        raise ProbesError(
            f"{store} holds no results; run `probes run` or `probes ablate` with --out {store}."
        )
    if Store(store).shard_paths():
        _write_report(store, folder, x=args.x, png=args.png, strict=True)
    _write_ablation_page(store, folder, png=args.png, strict=True)
    return 0


def _command_perplexity(args: argparse.Namespace) -> int:
    from probes.perplexity import PERPLEXITY, run_perplexity

    fields = {f.name for f in dataclasses.fields(PerplexityOptions)}
    options = PerplexityOptions(**{k: v for k, v in vars(args).items() if k in fields})
    rows = run_perplexity(options)
    print(rows[["model", "text_name", "n_tokens", "window", "perplexity"]].to_string(index=False))
    print(f"\nperplexity: {Store(options.out).folder(PERPLEXITY)}")
    return 0


def _command_upgrade(args: argparse.Namespace) -> int:
    from probes.store import LAYOUTS, STORE_FORMAT, upgrade_store

    moved = upgrade_store(args.store)
    print(f"{args.store}: {moved} shard(s) moved; layout {LAYOUTS[STORE_FORMAT]} (format {STORE_FORMAT}).")
    return 0


def _command_verify(args: argparse.Namespace) -> int:
    from probes.errors import DamagedShardError
    from probes.verify import verify_store

    findings = verify_store(args.store)
    for finding in findings:
        if finding.status != "ok":
            print(f"{finding.status}: {finding.path}: {finding.detail}")
    damaged = [f for f in findings if f.status == "damaged"]
    shards = [f for f in findings if f.status != "leftover"]
    if damaged:
        raise DamagedShardError(
            f"{len(damaged)} of {len(shards)} shard(s) of {args.store} are damaged (above)."
        )
    print(f"{args.store}: {len(shards)} shard(s) verified.")
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

    for name in args.names or task_names():
        task = get_task(name)
        print(f"{task.name}: {task.description}\n  distractor: {task.distractor}")
        if task.source:
            print(f"  follows: {task.source}")
        for variant in task.variants:
            sample = task.items(variant, n_items=1, seed=0)[0]
            prompt = sample.prompt if args.full else _shorten(sample.prompt, 160)
            answers = f"true {sample.true_answer!r}, distractor {sample.distractor_answer!r}"
            print(f"  [{variant}] {prompt!r} -> {answers}")
    return 0


def _shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to at most ``width`` characters."""
    if len(text) <= width:
        return text
    half = (width - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def _command_export(args: argparse.Namespace) -> int:
    from probes.tasks import get_task, load_items
    from probes.tasks.prize import write_prize_file

    items = []
    for name in args.tasks:
        variants = args.variants or [v for v in get_task(name).variants if v != "cot"]
        items.extend(load_items([name], variants, args.n_items, args.seed))
    path = write_prize_file(items, args.out)
    print(f"wrote {len(items)} items to {path}")
    return 0


def _add_report_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--report/--no-report`` (on) and ``--png/--no-png`` (off) for a command that ends with a report."""
    parser.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"Write {what} into <out>/report/ at the end.",
    )
    parser.add_argument(
        "--png",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Also write a PNG per figure (a few seconds each; `probes report STORE` writes them later).",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `probes` command."""
    parser = argparse.ArgumentParser(prog="probes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Sweep a ladder over tasks and variants into a result store.")
    add_dataclass_options(run, SweepOptions)
    _add_report_flags(run, "the HTML report and Markdown summary of the store")
    run.set_defaults(handler=_command_run)
    ablate = commands.add_parser(
        "ablate",
        help="Attribution, ablation and patching of which heads and MLPs push the distractor, per size.",
    )
    add_dataclass_options(ablate, AblateOptions)
    _add_report_flags(ablate, "the ablation page (ablations.html, ablations.md)")
    ablate.set_defaults(handler=_command_ablate)
    show = commands.add_parser("show", help="Print accuracy and log-odds per layer and size of a store.")
    show.add_argument("store", help="Folder of a result store (the --out of `probes run`).")
    show.set_defaults(handler=_command_show)
    report = commands.add_parser(
        "report", help="Write a store's standalone HTML report, a PNG per figure and a Markdown summary."
    )
    report.add_argument("store", help="Folder of a result store (the --out of `probes run`).")
    report.add_argument("--out", type=Path, default=None, help="Report folder (default: STORE/report).")
    report.add_argument(
        "--x",
        default="parameters",
        help="Size axis: parameters, non_embedding_parameters, training_flops or perplexity.",
    )
    report.add_argument(
        "--png", action=argparse.BooleanOptionalAction, default=True, help="Also write figures/*.png."
    )
    report.set_defaults(handler=_command_report)
    perplexity = commands.add_parser(
        "perplexity", help="Measure each model's perplexity on a held-out text, stored beside a sweep."
    )
    add_dataclass_options(perplexity, PerplexityOptions)
    perplexity.set_defaults(handler=_command_perplexity)
    upgrade = commands.add_parser(
        "upgrade", help="Move an older store's shards into this toolkit's layout (shards/<lens>/...)."
    )
    upgrade.add_argument("store", help="Folder of a result store.")
    upgrade.set_defaults(handler=_command_upgrade)
    verify = commands.add_parser("verify", help="Check every shard of a store against its checksum.")
    verify.add_argument("store", help="Folder of a result store.")
    verify.set_defaults(handler=_command_verify)
    ladders = commands.add_parser("ladders", help="List the known ladders and their rungs.")
    ladders.add_argument("ladder", nargs="?", help="Only this ladder.")
    ladders.set_defaults(handler=_command_ladders)
    tasks = commands.add_parser("tasks", help="List tasks and variants with a sample item each.")
    tasks.set_defaults(handler=_command_tasks, names=[], full=False)
    task_commands = tasks.add_subparsers(dest="tasks_command")
    listing = task_commands.add_parser("list", help="List tasks (all by default) with a sample per variant.")
    listing.add_argument("names", nargs="*", help="Only these tasks.")
    listing.add_argument("--full", action="store_true", help="Print sample prompts whole.")
    export = task_commands.add_parser(
        "export", help="Write generated items in the Inverse Scaling Prize format (.csv or .jsonl)."
    )
    export.add_argument("out", type=Path, help="File to write: .csv or .jsonl.")
    export.add_argument("--tasks", nargs="+", required=True, help="Task names (see `probes tasks`).")
    export.add_argument("--variants", nargs="+", default=None, help="Variants (default: all but cot).")
    export.add_argument("--n-items", type=int, default=None, help="Items per task and variant.")
    export.add_argument("--seed", type=int, default=0, help="Seed of the generators.")
    export.set_defaults(handler=_command_export)
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
