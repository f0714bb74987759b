"""Reasoning depth: how many sequential steps does a model of L layers solve, and where does each step show?

For the sequential k-step tasks (on the built-in depth ladder its training task ``pointer_chase16``,
k = 1 … 6; elsewhere ``pointer_chase``, k = 1 … 16; ``permutation_walk``, and the older
``variable_chain``, ``multi_hop`` and ``arithmetic_steps`` also run), per model of a ladder (or the
``--models`` given), writes under ``--out``:

- ``layers.parquet``: the per-(model, item, layer) logit-lens table
  (:func:`probes.analysis.metrics.layer_table`) with ``steps`` (k) and provenance;
- ``accuracy.csv``: per (model, task, k) last-layer accuracy with its 95% Wilson interval;
- ``solvable.csv``: per (model, task, threshold) the largest k with accuracy ≥ the threshold at
  every k' ≤ k, for each of ``--thresholds``, its bootstrap interval, and whether it is censored
  (the model solves the largest k tested);
- ``fits.csv``: per threshold, solvable k against layers under constant, logarithmic and linear
  relations (uncensored models only), with AICc, Akaike weights and leave-one-out errors;
- ``depth_model.csv``: per task, the item-level logistic regression of correctness on k and depth
  (and their product), the training seed as a factor, intervals clustered by model
  (:func:`probes.analysis.solvable.depth_logistic`);
- ``probe_vs_lens.csv``: per (model, k, step, layer, lens) the probe's and the lens's share read
  on the probe's held-out items (the same items), with an exact McNemar test, Holm-corrected over
  the cells where the lens reads at least ``--decodable-at``: is the probe worse than the lens?
- ``step_scores.csv`` / ``step_first_layers.csv``: per (model, k, step j, layer) how well the value
  after step j is read at the last prompt token, by the lens (``--lens logit|tuned``: share of items
  where it is the top option; every other lens already in the same ``--out`` store too) and by a
  linear probe (held-out accuracy of a ridge classifier, its penalty chosen by leave-one-out error on the
  training items; separate
  items, seed ``--seed + 2``), and the first layer where each reaches ``--decodable-at`` with a
  bootstrap interval over items;
- ``figures/``: accuracy vs k, solvable k vs layers with the fits (one panel per threshold), and
  step decodability, as HTML and (with Chromium) PNG.

Example::

    python -m experiments.reasoning_depth                              # the built-in depth ladder
    python -m experiments.reasoning_depth --ladder pythia --steps 1 2 3 4 6 8 --out pythia-depth
    python -m experiments.reasoning_depth --models path/to/SmolLM2-135M.gguf --out smollm2-depth
    python -m experiments.reasoning_depth --lens tuned   # into the same store, beside the logit lens

The tuned lens of a built-in rung ships with it; for other models pass ``--lens-dir`` (the ``--out``
of `probes lens train`). Each lens's per-layer rows live in the store under its lens id (``logit``,
``tuned-<hash8>``), its step readouts and probe scores in tables of their own kind.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from probes.analysis.metrics import layer_table
from probes.analysis.reasoning import step_readout_summary, step_readout_table, with_steps
from probes.analysis.solvable import (
    SOLVED_AT_SENSITIVITY,
    accuracy_table,
    depth_logistic,
    fit_relations,
    last_layer_items,
    relation_curve,
    solvable_steps,
)
from probes.analysis.step_probe import (
    DECODABLE_AT,
    PROBE_RIDGE_GRID,
    final_residuals,
    first_decodable_intervals,
    lens_step_scores,
    probe_against_lens,
    probe_step_items,
    probe_step_scores,
)
from probes.builtin.folders import builtin_catalogue
from probes.errors import BuiltinWeightsError, InvalidItemError
from probes.jobs.fingerprint import fingerprint, run_settings
from probes.jobs.manifest import provenance
from probes.jobs.options import ItemOptions
from probes.jobs.runner import execute
from probes.jobs.units import Output, Unit, model_specs
from probes.lenses.base import lens_fields
from probes.lenses.reading import read_options
from probes.lenses.registry import choose_lens, lens_names
from probes.model.loading import HookedModel
from probes.report.document import BrowserNotFoundError, PngExportError, write_pngs
from probes.report.solvable import accuracy_by_k, solvable_by_depth, step_decodability
from probes.store.store import Store, lens_store_name
from probes.tasks import Item, load_items
from probes.version import __version__


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ladder", default="depth", help="a ladder name (`probes ladders`); depth by default"
    )
    parser.add_argument(
        "--models", nargs="+", help="model specs to run instead of a ladder (e.g. a GGUF path)"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        help="k-step tasks to run (default: the depth ladder's training task on it, else pointer_chase)",
    )
    parser.add_argument("--steps", nargs="+", type=int, help="step counts k (default: every k of the items)")
    parser.add_argument(
        "--n-items", type=int, help="items per task before keeping --steps (default: the task's own number)"
    )
    parser.add_argument(
        "--probe-steps", nargs="+", type=int, default=[1, 2, 3, 4, 6, 8], help="k probed per step"
    )
    parser.add_argument(
        "--probe-items", type=int, default=200, help="items per probed k (70%% train the probe)"
    )
    parser.add_argument("--out", type=Path, default=Path("reasoning-depth-results"), help="report folder")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the items (0: the depth ladder's held-out set)"
    )
    parser.add_argument(
        "--thresholds",
        nargs="+",
        type=float,
        default=list(SOLVED_AT_SENSITIVITY),
        help="accuracies that count as solved: solvable k and its fits at each",
    )
    parser.add_argument("--decodable-at", type=float, default=DECODABLE_AT, help="step score that counts")
    parser.add_argument(
        "--lens", default="logit", choices=lens_names(), help="lens of the per-layer readouts"
    )
    parser.add_argument(
        "--lens-dir",
        type=Path,
        default=None,
        help="tuned lenses (`probes lens train --out`); default: shipped",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", type=int, default=16)
    arguments = parser.parse_args(argv)
    if arguments.tasks is None:
        on_depth = arguments.ladder == "depth" and not arguments.models
        arguments.tasks = builtin_catalogue("depth").catalogue()["tasks"] if on_depth else ["pointer_chase"]
    return arguments


#: Kind of the store's table of per-step lens readouts.
STEP_READOUT = "step_readout"

#: Kind of the store's table of per-step linear-probe scores.
STEP_PROBE = "step_probe"


def lens_id_of(unit: Unit) -> str:
    """The unit's lens as its shards and rows name it: ``logit``, ``tuned-<hash8>``."""
    return lens_store_name(unit.lens, unit.lens_weights)


def lens_name(lens_id: str) -> str:
    """The lens's name without its weights' hash (``tuned-1a2b3c4d`` -> ``tuned``): the figures'
    readouts, since each rung has a tuned lens of its own."""
    return re.sub(r"-[0-9a-f]{8}$", "", lens_id)


def kind_of(kind: str, lens_id: str) -> str:
    """A step table's kind for one lens: the bare kind for the logit lens (as stores always had
    it), ``<kind>-<lens id>`` for another, so each lens's tables live side by side in one store."""
    return kind if lens_id == "logit" else f"{kind}-{lens_id}"


def probe_items(tasks: Sequence[str], steps: Sequence[int], per_k: int, seed: int) -> dict[str, list[Item]]:
    """Items for the linear probes, per task: the first ``per_k`` of every k in ``steps``, another
    seed than the evaluation's (the tasks cycle k over at most 16 values, so ``16 * per_k`` items
    hold ``per_k`` of each)."""
    chosen: dict[str, list[Item]] = {}
    for task in tasks:
        counts: dict[int, int] = {}
        chosen[task] = []
        for item in load_items([task], ["prize"], 16 * per_k, seed):
            k = item.meta.get("steps")
            if k in steps and counts.get(k, 0) < per_k:
                counts[k] = counts.get(k, 0) + 1
                chosen[task].append(item)
    return chosen


def measure(arguments: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The per-layer lens table, the lens step readouts and the probe's per-item step readouts of
    every model (the step tables under every lens the store holds).

    One unit per (model, task) runs through the shared loop into ``<out>/store``; the tables are
    then read back from it, so a re-run skips the models already measured.
    """
    options = ItemOptions(
        models=list(arguments.models or []),
        ladder=None if arguments.models else arguments.ladder,
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
        if arguments.steps is None or item.meta.get("steps") in arguments.steps
    ]
    present = {item.meta.get("steps") for item in items}
    arguments.probe_steps = [
        k for k in arguments.probe_steps if k in present
    ]  # k = 8 is past pointer_chase16
    probing = probe_items(arguments.tasks, arguments.probe_steps, arguments.probe_items, arguments.seed + 2)
    by_task: dict[str, list[Item]] = {}
    for item in items:
        by_task.setdefault(item.task, []).append(item)
    settings = {
        "probe_steps": list(arguments.probe_steps),
        "probe_items": arguments.probe_items,
        "probe": "ridge, leave-one-out penalty",
        "probe_ridge_grid": list(PROBE_RIDGE_GRID),
    }
    models = model_specs(options)
    choices = {model.label: choose_lens(arguments.lens, model.label, arguments.lens_dir) for model in models}
    units = [
        Unit(
            model,
            task,
            "prize",
            tuple(group),
            lens=choices[model.label].name,
            lens_weights=choices[model.label].weights_hash,
            settings=settings,
        )
        for model in models
        for task, group in by_task.items()
    ]
    source = "models" if arguments.models else arguments.ladder

    def compute(model: HookedModel, pending: list[Unit]) -> Iterator[Output]:
        lens = choices[pending[0].model.label].build(model)  # a tuned lens checks the model here
        lens_id = lens_id_of(pending[0])  # rows name the lens as its shards do: logit, tuned-<hash8>
        # one read of every pending task's items, in their order, as the study has always batched
        chosen = [item for item in items if item.task in {unit.task for unit in pending}]
        readout = read_options(model, chosen, lens, batch_size=options.batch_size, progress=True)
        origin = provenance(model, lens_id)
        table = with_steps(layer_table(readout, origin, model.n_layers), chosen)
        table = table.assign(ladder=source, parameters=model.parameters)
        steps = step_readout_table(readout, origin, model.n_layers)
        steps = steps[steps["steps"].isin(arguments.probe_steps)]
        layers = list(range(model.n_layers + 1))
        for unit in pending:
            fields = {"n_items": len(unit.items), "lens": lens.name, **lens_fields(lens)}
            probe = stored_probe(store, unit, options)
            if probe is None:
                scores = []
                for k in arguments.probe_steps:
                    group = [item for item in probing[unit.task] if item.meta["steps"] == k]
                    residuals = final_residuals(model, group, layers, batch_size=options.batch_size)
                    scores.append(probe_step_items(residuals, group, layers))
                probe = pd.concat(scores, ignore_index=True).assign(
                    task=unit.task, readout="linear probe", **origin, n_layers=model.n_layers
                )
            # this unit's lens on the probe's own held-out items, for a like-for-like comparison
            held_ids = set(probe["item_id"])
            held = [item for item in probing[unit.task] if item.id in held_ids]
            same = step_readout_table(
                read_options(model, held, lens, batch_size=options.batch_size), origin, model.n_layers
            ).set_index(["item_id", "step", "layer"])["top"]
            keys = zip(probe["item_id"], probe["step"], probe["layer"])
            probe = probe.drop(columns="lens_correct", errors="ignore").assign(
                lens=lens_id, lens_correct=[float(same[key]) for key in keys]
            )
            yield Output(unit, probe, kind_of(STEP_PROBE, lens_id), fields=fields, done=False)
            mine = steps[steps["task"] == unit.task].reset_index(drop=True)
            yield Output(unit, mine, kind_of(STEP_READOUT, lens_id), fields=fields, done=False)
            yield Output(unit, table[table["task"] == unit.task].reset_index(drop=True), fields=fields)
        print(f"{model.name}: {model.n_layers} layers, {len(chosen)} items", flush=True)

    store = Store(options.out)
    store = execute(units, options, compute, "shards")
    return _of(store.read(), units), _step_readouts(store, units), _probe_items(store, units)


def stored_probe(store: Store, unit: Unit, options: ItemOptions) -> pd.DataFrame | None:
    """The unit's linear-probe scores as a logit-lens run of the same items and settings stored
    them, if one did: the probe reads the residual stream itself, whatever the lens, so a run
    under another lens shares them (``None``: none stored, or from other items or settings)."""
    path = store.shard_path(unit.model.label, unit.task, unit.variant, STEP_PROBE)
    if lens_id_of(unit) == "logit" or not path.is_file():
        return None
    logit = dataclasses.replace(unit, lens="logit", lens_weights=None)
    if store.verified_record(path).get("fingerprint") != fingerprint(
        logit, options.dtype, None, run_settings(options)
    ):
        return None
    return store.read_shard(path)


def _probe_items(store: Store, units: Sequence[Unit]) -> pd.DataFrame:
    """The probe's per-item rows of these units under every lens the store holds them for (the
    probe is the same under each; ``lens`` and ``lens_correct`` say which lens it is compared with)."""
    kinds = [kind for kind in store.kinds() if kind == STEP_PROBE or kind.startswith(f"{STEP_PROBE}-")]
    table = pd.concat([store.read(kind) for kind in kinds], ignore_index=True)
    return _of(table, units, every_lens=True)


def _step_readouts(store: Store, units: Sequence[Unit]) -> pd.DataFrame:
    """The step readouts of these units under every lens the store holds them for (this run's and
    any other lens run into the same ``--out``), the lens id in ``lens``."""
    kinds = [kind for kind in store.kinds() if kind == STEP_READOUT or kind.startswith(f"{STEP_READOUT}-")]
    table = pd.concat([store.read(kind) for kind in kinds], ignore_index=True)
    return _of(table, units, every_lens=True)


def _of(table: pd.DataFrame, units: Sequence[Unit], every_lens: bool = False) -> pd.DataFrame:
    """The rows of these units (of each unit's lens, or of every lens), models in ladder order
    (smallest first), tasks as asked."""
    if not every_lens:
        lens_of = {unit.model.label: lens_id_of(unit) for unit in units}
        table = table[[lens_of.get(model) == lens for model, lens in zip(table["model"], table["lens"])]]
    order = {(unit.model.label, unit.task): i for i, unit in enumerate(units)}
    rank = pd.Series([order.get(key, -1) for key in zip(table["model"], table["task"])], index=table.index)
    return (
        table[rank >= 0]
        .assign(_rank=rank)
        .sort_values("_rank", kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def fits_per_task(solvable: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (task, threshold): the depth fits on the uncensored models, and their curves (empty
    where too few)."""
    fits, curves = [], []
    for (task, threshold), rows in solvable.groupby(["task", "threshold"]):
        usable = rows[~rows["censored"]]
        try:
            fit = fit_relations(usable["n_layers"], usable["solvable_k"])
        except InvalidItemError as error:
            print(f"{task} at {threshold:g}: no depth fit ({error})")
            continue
        layers = sorted({*rows["n_layers"], *range(1, int(rows["n_layers"].max()) + 1)})
        fits.append(fit.assign(task=task, threshold=threshold, censored_left_out=int(rows["censored"].sum())))
        curves.append(relation_curve(fit, layers).assign(task=task, threshold=threshold))
    return (
        pd.concat(fits, ignore_index=True) if fits else pd.DataFrame(),
        pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
    )


def seeds_of(models: Sequence[str], ladder: str | None) -> dict[str, int]:
    """Each model's training seed, where a built-in ladder's catalogue states it (else none)."""
    try:
        rungs = builtin_catalogue(ladder).catalogue()["rungs"] if ladder else []
    except (KeyError, BuiltinWeightsError):  # not a built-in ladder: no seeds known
        return {}
    by_label = {f"{ladder}:{rung['rung'].removeprefix(f'{ladder}-')}": rung.get("seed") for rung in rungs}
    return {model: int(by_label[model]) for model in models if by_label.get(model) is not None}


def depth_models(per_item: pd.DataFrame) -> pd.DataFrame:
    """Per task: :func:`depth_logistic` (empty where too few models)."""
    frames = []
    for task, rows in per_item.groupby("task"):
        try:
            frames.append(depth_logistic(rows).assign(task=task))
        except InvalidItemError as error:
            print(f"{task}: no item-level depth model ({error})")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the study and write tables and figures."""
    arguments = parse_arguments(argv)
    out = arguments.out
    (out / "figures").mkdir(parents=True, exist_ok=True)
    table, lens_steps, probe_scores = measure(arguments)
    table.to_parquet(out / "layers.parquet", index=False)
    source = "models" if arguments.models else arguments.ladder

    per_item = last_layer_items(table)
    seeds = seeds_of(list(per_item["model"].unique()), None if arguments.models else arguments.ladder)
    if seeds:
        per_item = per_item.assign(seed=per_item["model"].map(seeds))
    accuracy = pd.concat(
        [accuracy_table(rows).assign(task=task) for task, rows in per_item.groupby("task")], ignore_index=True
    )
    solvable = pd.concat(
        [
            solvable_steps(rows, threshold).assign(task=task)
            for task, rows in per_item.groupby("task")
            for threshold in arguments.thresholds
        ],
        ignore_index=True,
    )
    fits, curves = fits_per_task(solvable)
    relation = depth_models(per_item)
    frames = ((accuracy, "accuracy"), (solvable, "solvable"), (fits, "fits"), (relation, "depth_model"))
    for frame, name in frames:
        frame.assign(ladder=source, toolkit_version=__version__).to_csv(out / f"{name}.csv", index=False)

    # the probe is the same under every lens: its scores once (this run's lens's copy)
    one_probe = probe_scores[probe_scores["lens"].map(lens_name) == arguments.lens]
    lens_items = lens_steps.assign(
        readout=lens_steps["lens"].map(lens_name) + " lens", correct=lens_steps["top"].astype(float)
    )
    scores = pd.concat(
        [
            *(
                lens_step_scores(step_readout_summary(rows).assign(readout=readout))
                for readout, rows in lens_items.groupby("readout", sort=True)
            ),
            probe_step_scores(one_probe.drop(columns="lens_correct")),
        ],
        ignore_index=True,
    )
    scores.to_csv(out / "step_scores.csv", index=False)
    keys = ["model", "task", "steps", "step", "readout", "n_layers", "item_id", "layer", "correct"]
    first = first_decodable_intervals(
        pd.concat([lens_items[keys], one_probe[keys]], ignore_index=True),
        arguments.decodable_at,
        keys=("model", "task", "steps", "step"),
    )
    first.to_csv(out / "step_first_layers.csv", index=False)
    against = probe_against_lens(
        probe_scores.assign(lens=probe_scores["lens"].map(lens_name)),
        arguments.decodable_at,
        keys=("model", "task", "steps", "step", "lens"),
    )
    against.to_csv(out / "probe_vs_lens.csv", index=False)
    reads = against[against["lens_reads"]]
    print(
        f"probe vs lens on the same held-out items: the lens reads ≥ {arguments.decodable_at:g} in "
        f"{len(reads)} (model, k, step, layer, lens) cells; the probe is below it in "
        f"{int((reads['probe_score'] < reads['lens_score']).sum())}, significantly (Holm, 5 %) in "
        f"{int(reads['probe_worse'].sum())}"
    )

    figures = {}
    for task in arguments.tasks:
        chance = float(table.loc[table["task"] == task, "options"].map(lambda o: 1 / len(o)).mean())
        figures[f"accuracy_{task}"] = accuracy_by_k(
            accuracy[accuracy["task"] == task], arguments.thresholds, chance
        )
        if not fits.empty and task in set(fits["task"]):
            figures[f"solvable_{task}"] = solvable_by_depth(
                solvable[solvable["task"] == task], fits[fits["task"] == task], curves[curves["task"] == task]
            )
        for k in arguments.probe_steps:
            rows = first[(first["task"] == task) & (first["steps"] == k)]
            if not rows.empty:
                figures[f"step_decodability_{task}_k{k}"] = step_decodability(rows, k)
    for name, figure in figures.items():
        figure.write_html(out / "figures" / f"{name}.html", include_plotlyjs=True)
    try:
        write_pngs(figures, out / "figures")
    except (PngExportError, BrowserNotFoundError) as error:
        print(f"PNG figures skipped: {error}")
    pd.set_option("display.width", 200)
    print(solvable.to_string(index=False))
    if not fits.empty:
        columns = ["task", "threshold", "relation", "intercept", "slope", "aicc", "akaike_weight", "loo_rmse"]
        print(fits[columns].to_string(index=False))
    if not relation.empty:
        columns = ["task", "model_form", "term", "estimate", "low", "high", "p_value"]
        print(relation[columns].to_string(index=False))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
