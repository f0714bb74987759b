"""The `probes` command: run sweeps, list ladders and tasks, show results.

Help and the listing commands stay fast: this module imports no model library, pandas or plotly
at import time. Each command imports what it needs when it runs, and the options of the commands
that load models (run, ablate, perplexity) are added to the parser only when that command is the
one asked for (see :func:`build_parser`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from probes.cli.display import ABLATION_TABLES, FEATURE_TABLES, FORMATS, SHOW_TABLES
from probes.cli.flags import HEAVY_OPTIONS, add_dataclass_options, options_from
from probes.errors import ProbesError


def _size_order(store: object) -> list[str]:
    """The store's models, smallest first: by parameters, then training FLOPs (checkpoints)."""
    from probes.report.tables import model_order

    manifest = store.manifest()  # type: ignore[attr-defined]
    return model_order(manifest) if len(manifest) else []


def _command_run(args: argparse.Namespace) -> int:
    from probes.cli.closing import print_closing_summary
    from probes.jobs.sweep import SweepOptions, results_of, run_sweep

    store, units = run_sweep(options_from(args, SweepOptions))
    report = None
    if args.report and units and _last_process(store.root, args):
        report = _write_report(store.root, store.root / "report", x="parameters", png=args.png, strict=False)
    if units:
        print_closing_summary(results_of(store, units), store.root, _size_order(store), report)
    return 0


def _last_process(store: Path, args: argparse.Namespace) -> bool:
    """Whether every unit of the whole (possibly sharded) run is in the store, so a report is due.

    Each process of a sharded run asks this after its own slice: the one that finds the last unit
    written writes the report; the others print how to write it once all are done.
    """
    from probes.jobs.sweep import SweepOptions, unwritten

    options = options_from(args, SweepOptions)
    if options.shard in ("0/1", ""):
        return True
    missing = len(unwritten(options))
    if missing:
        print(
            f"{missing} unit(s) of this run are still running in other shards; the last shard to finish "
            f"writes the report (or run `probes report {store}`)."
        )
    return not missing


def _command_ablate(args: argparse.Namespace) -> int:
    from probes.ablate.study import AblateOptions, run_ablation_study
    from probes.cli.closing import ablation_closing_lines
    from probes.report.ablations import load_ablation_tables

    store = run_ablation_study(options_from(args, AblateOptions))
    tables, order = load_ablation_tables(store.root)
    _end_study(store.root, "ablations", ablation_closing_lines(tables, order), args)
    print(f"results: {store.root} (every table: probes show {store.root})")
    return 0


def _end_study(store: Path, page: str, lines: Sequence[str], args: argparse.Namespace) -> None:
    """A study's closing lines, then (with ``--report``) its page and the lens report's links to it."""
    print()
    for line in lines:
        print(line)
    if args.report:
        _write_study_page(page, store, store / "report", png=args.png, strict=False)
        if (store / "report" / "report.html").is_file():  # now with a link to the new page
            _write_report(store, store / "report", x="parameters", png=False, strict=False)


def _command_features(args: argparse.Namespace) -> int:
    from probes.cli.closing import feature_closing_lines
    from probes.features.study import FeatureOptions, run_feature_study

    store = run_feature_study(options_from(args, FeatureOptions))
    _end_study(store.root, "features", feature_closing_lines(store.root), args)
    print(f"results: {store.root} (every table: probes show {store.root})")
    return 0


#: The study pages a store's report may have, and what their closing line calls them.
STUDY_PAGES = {"ablations": "ablation", "features": "feature"}


def _write_study_page(name: str, store: Path, folder: Path, png: bool, strict: bool) -> None:
    """Write a store's ``ablations`` or ``features`` page, if it has those tables.

    A PNG failure or an unwritable folder warns unless ``strict`` (after a study the results are
    safe in the store; ``probes report`` retries).
    """
    from probes.report import PngExportError, ablations, features

    load_tables, write_page = {
        "ablations": (ablations.load_ablation_tables, ablations.write_ablation_page),
        "features": (features.load_feature_tables, features.write_feature_page),
    }[name]
    tables, order = load_tables(store)
    if not tables:
        return
    page = folder / f"{name}.html"
    try:
        page = write_page(tables, folder, order, png=png, links=_page_links(store, name))
    except PngExportError as err:
        if strict:
            raise
        print(f"probes: warning: {err}", file=sys.stderr)
    except OSError as err:  # a read-only store, a full disk, a file where the folder goes
        if strict:
            raise ProbesError(f"cannot write {page} ({err}); give a writable --out.") from None
        print(
            f"probes: warning: no {name} page written ({err}); `probes report {store} --out DIR` retries.",
            file=sys.stderr,
        )
        return
    print(f"{STUDY_PAGES[name]} report: {page}")


def _page_links(store: Path, page: str) -> list[tuple[str, str]]:
    """Links from one page of a store's report (``report``, ``ablations``, ``features``) to the others
    the store has tables for."""
    from probes.report.ablations import KINDS as ABLATION_KINDS
    from probes.report.features import KINDS as FEATURE_KINDS
    from probes.store.store import LENS, Store

    kinds = set(Store(store).kinds())
    pages = {
        "report": ("Lens report", "report.html", {LENS}),
        "ablations": ("Ablations", "ablations.html", set(ABLATION_KINDS)),
        "features": ("Features", "features.html", set(FEATURE_KINDS)),
    }
    return [(text, address) for name, (text, address, have) in pages.items() if name != page and kinds & have]


def _command_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from probes.cli.closing import (
        ABLATION_KINDS,
        FEATURE_KINDS,
        ablation_show_tables,
        feature_show_tables,
        print_ablation_tables,
        print_feature_tables,
        print_tables,
        show_records,
    )
    from probes.cli.display import records_text
    from probes.report.tables import model_order
    from probes.store.store import LENS, Store

    store = Store(args.store)
    kinds = store.kinds()
    ablation = {kind: store.read(kind) for kind in kinds if kind in ABLATION_KINDS}
    manifests = [store.manifest(kind) for kind in kinds if kind in ABLATION_KINDS]
    ablation_order = model_order(pd.concat(manifests, ignore_index=True)) if manifests else []
    if args.format != "text" and args.table in ABLATION_TABLES:
        found = ablation_show_tables(ablation, ablation_order)
        if args.table not in found:
            raise ProbesError(
                f"{args.store} holds no {args.table} table; run `probes ablate --out {args.store}` first."
            )
        print(records_text(show_records(found[args.table]), args.format))
        return 0
    features = set(FEATURE_KINDS) <= set(kinds)
    if args.format != "text" and args.table in FEATURE_TABLES:
        found = feature_show_tables(Path(args.store))
        if args.table not in found:
            raise ProbesError(
                f"{args.store} holds no feature tables; run `probes features --out {args.store}` first."
            )
        print(records_text(show_records(found[args.table]), args.format))
        return 0
    if LENS in kinds or not (ablation or features):  # an empty store: read() says what to run
        out = None if ablation or features else Path(args.store)  # else said once, at the end
        print_tables(store.read(), out, _size_order(store), args.format, args.table)
    if ablation and args.format == "text":
        print_ablation_tables(ablation, ablation_order)
    if features and args.format == "text":
        print_feature_tables(Path(args.store))
    if (ablation or features) and args.format == "text":
        print(f"\nresults: {args.store}")
    return 0


def _write_report(
    store: Path, folder: Path, x: str, png: bool, strict: bool, lens: str | None = None
) -> Path | None:
    """Write the report of a whole store and return its path; PNG failures only warn unless ``strict``."""
    from probes.report import PngExportError, load_results, write_report

    links = _page_links(store, "report")
    try:
        write_report(load_results(store), folder, x=x, png=png, links=links, lens=lens)
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
        return None
    return folder / "report.html"


def _command_report(args: argparse.Namespace) -> int:
    from probes.report.document import browser_path
    from probes.store.store import Store

    store = Path(args.store)
    folder = args.out or store / "report"
    if not Store(store).kinds():
        raise ProbesError(
            f"{store} holds no results; run `probes run` or `probes ablate` with --out {store}."
        )
    png = args.png
    if png is None:  # not asked either way: PNGs when a browser can draw them, else one hint
        png = browser_path() is not None
        if not png:
            print(
                "probes: warning: no PNGs written: drawing them needs Chrome or Chromium (Debian/Ubuntu: "
                "apt-get install chromium, or set BROWSER_PATH); the HTML report has every figure.",
                file=sys.stderr,
            )
    if Store(store).shard_paths():
        path = _write_report(store, folder, x=args.x, png=png, strict=True, lens=args.lens)
        print(f"report: {path}\nsummary: {folder / 'summary.md'}")
    _write_study_page("ablations", store, folder, png=png, strict=True)
    _write_study_page("features", store, folder, png=png, strict=True)
    return 0


def _command_perplexity(args: argparse.Namespace) -> int:
    from probes.jobs.perplexity import PERPLEXITY, PerplexityOptions, run_perplexity
    from probes.store.store import Store

    options = options_from(args, PerplexityOptions)
    rows = run_perplexity(options)
    print(rows[["model", "text_name", "n_tokens", "window", "perplexity"]].to_string(index=False))
    print(f"\nperplexity: {Store(options.out).folder(PERPLEXITY)}")
    return 0


def _command_verify(args: argparse.Namespace) -> int:
    from probes.errors import DamagedShardError
    from probes.store.verify import verify_store

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
    if not shards:
        unfinished = " (the files above are a stopped or running run's; re-running it resumes)"
        print(f"{args.store}: no finished shard yet{unfinished if findings else ''}.")
        return 0
    print(f"{args.store}: {len(shards)} shard(s) verified.")
    return 0


def _command_lens_train(args: argparse.Namespace) -> int:
    from probes.jobs.lens_training import LensTrainOptions, held_out_table, train_lenses

    for folder in train_lenses(options_from(args, LensTrainOptions)):
        print(held_out_table(folder))
    return 0


def _command_sae_train(args: argparse.Namespace) -> int:
    from probes.jobs.sae_training import SAETrainOptions, quality_table, sae_folder, train_model_saes

    options = options_from(args, SAETrainOptions)
    for model, qualities in train_model_saes(options).items():
        print(quality_table(model, qualities, sae_folder(options.out, model)))
    print(f"\nthen: probes features --models ... --sae {options.out}")
    return 0


def _command_models_check(args: argparse.Namespace) -> int:
    from probes.model.check import check_spec

    result = check_spec(args.model, args.backend, args.device, args.dtype)
    print(result.line())
    return 0 if result.exact else 1


def _command_ladders(args: argparse.Namespace) -> int:
    from probes.cli.listings import ladders_output

    print(ladders_output([args.ladder] if args.ladder else None, args.format))
    return 0


def _command_tasks(args: argparse.Namespace) -> int:
    from probes.cli.listings import tasks_output

    print(tasks_output(args.names, args.format, args.full))
    return 0


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


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for people (fits 100 columns), csv or json for scripts (raw figures).",
    )


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of the `probes` command.

    Args:
        commands: The commands whose model-loading options to add (run, ablate, perplexity);
            all by default. :func:`main` passes only the command asked for, so that help and
            the listings never import torch.
    """
    parser = argparse.ArgumentParser(prog="probes", description=__doc__.split("\n\n")[0])
    subcommands = parser.add_subparsers(dest="command", required=True)
    helps = {
        "run": "Sweep a ladder over tasks and variants into a result store.",
        "ablate": "Attribution, ablation and patching of which heads and MLPs push the distractor, per size.",
        "features": "Which SAE features push the distractor or the true answer, per layer and size.",
        "perplexity": "Measure each model's perplexity on a held-out text, stored beside a sweep.",
    }
    chosen = {}
    for name in ("run", "ablate", "features"):
        chosen[name] = subcommands.add_parser(name, help=helps[name])
    show = subcommands.add_parser("show", help="Print accuracy and log-odds per layer and size of a store.")
    show.add_argument("store", help="Folder of a result store (the --out of `probes run`).")
    _add_format(show)
    show.add_argument(
        "--table",
        choices=SHOW_TABLES + ABLATION_TABLES + FEATURE_TABLES,
        default="layers",
        help="With --format csv or json: the table to print (a sweep's per-layer scores, decision or "
        "divergence layers; an ablation study's pushers, effects, patching or unpaired; a feature "
        "study's feature-ranking, feature-verdicts or feature-checks; "
        "default: %(default)s).",
    )
    show.set_defaults(handler=_command_show)
    report = subcommands.add_parser(
        "report", help="Write a store's standalone HTML report, a PNG per figure and a Markdown summary."
    )
    report.add_argument("store", help="Folder of a result store (the --out of `probes run`).")
    report.add_argument("--out", type=Path, default=None, help="Report folder (default: STORE/report).")
    report.add_argument(
        "--lens",
        default=None,
        help="Lens of the main figures when the store holds several (logit by default; tuned, or a lens "
        "id such as tuned-1a2b3c4d); the lens comparison shows them all.",
    )
    report.add_argument(
        "--x",
        default="parameters",
        help="Size axis: parameters, non_embedding_parameters, training_flops or perplexity.",
    )
    report.add_argument(
        "--png",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Write figures/*.png (needs Chrome or Chromium). Default: when a browser is found; "
        "--png fails without one, --no-png skips them.",
    )
    report.set_defaults(handler=_command_report)
    chosen["perplexity"] = subcommands.add_parser("perplexity", help=helps["perplexity"])
    for name, subparser in chosen.items():
        subparser.set_defaults(handler=globals()[f"_command_{name}"])
        if commands is None or name in commands:
            HEAVY_OPTIONS[name](subparser)
    verify = subcommands.add_parser("verify", help="Check every shard of a store against its checksum.")
    verify.add_argument("store", help="Folder of a result store.")
    verify.set_defaults(handler=_command_verify)
    lens = subcommands.add_parser("lens", help="Tuned lenses: train them per model or ladder.")
    lens_commands = lens.add_subparsers(dest="lens_command", required=True)
    lens_train = lens_commands.add_parser(
        "train",
        help="Train a tuned lens per model (KL to the final distribution), saved per model under --out.",
    )
    lens_train.set_defaults(handler=_command_lens_train)
    if commands is None or "lens" in commands:
        from probes.jobs.lens_training import LensTrainOptions

        add_dataclass_options(lens_train, LensTrainOptions)
    sae = subcommands.add_parser("sae", help="Sparse autoencoders: train them per model or ladder (SAELens).")
    sae_train = sae.add_subparsers(dest="sae_command", required=True).add_parser(
        "train",
        help="Train a TopK SAE per model and residual layer on the model's own text; OUT/<model>/layer-<L>/.",
    )
    sae_train.set_defaults(handler=_command_sae_train)
    if commands is None or "sae" in commands:
        from probes.jobs.sae_training import SAETrainOptions

        add_dataclass_options(sae_train, SAETrainOptions)
    models = subcommands.add_parser("models", help="Check how exactly probes reads a model (docs/models.md).")
    check = models.add_subparsers(dest="models_command", required=True).add_parser(
        "check", help="Per-layer log-probs, prompt cache, ablation, tuned lens vs plain transformers."
    )
    check.add_argument("model", help="Hub id, model folder or .gguf file.")
    check.add_argument("--backend", default="auto", help="auto (default), bridge or nnsight.")
    check.add_argument("--device", default="cpu", help="Torch device.")
    check.add_argument("--dtype", default="float32", help="float32 (the 1e-4 bar assumes it), bfloat16 ...")
    check.set_defaults(handler=_command_models_check)
    ladders = subcommands.add_parser("ladders", help="List the known ladders and their rungs.")
    ladders.add_argument("ladder", nargs="?", help="Only this ladder.")
    _add_format(ladders)
    ladders.set_defaults(handler=_command_ladders)
    tasks = subcommands.add_parser("tasks", help="List tasks and variants with a sample item each.")
    _add_format(tasks)
    tasks.set_defaults(handler=_command_tasks, names=[], full=False)
    task_commands = tasks.add_subparsers(dest="tasks_command")
    listing = task_commands.add_parser("list", help="List tasks (all by default) with a sample per variant.")
    listing.add_argument("names", nargs="*", help="Only these tasks.")
    listing.add_argument("--full", action="store_true", help="Print sample prompts whole.")
    _add_format(listing)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        # building the parser of a model-loading command imports torch: a Ctrl-C there is a
        # Ctrl-C like any other (exit 130, no traceback)
        args = build_parser({command} if command else ()).parse_args(argv)
        return int(args.handler(args))
    except ProbesError as err:
        print(f"probes: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `probes ladders | head` stopped reading: not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "probes: interrupted; finished shards are kept, re-run the same command to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
