"""The ablation study of a ladder: attribution, ablation and patching per model, into the store.

For every model of the ladder and every task, on the items of one variant (``prize`` by
default) it writes four tables of their own kind to the result store, each shard with a
manifest record like the lens sweep's (model, rung, options, versions, a fingerprint):

* ``attribution``: per item and part, the direct logit attribution (:mod:`.attribution`);
* ``ablation``: per item, log-odds and correctness with components ablated: every block,
  attention layer and MLP alone (``selection == "single"``) with each method, the user's set
  (``"chosen"``), the top-k distractor-promoting heads (``"top"``) and random k heads
  (``"random"``);
* ``patching``: per item and site, patching from the ``no_distractor`` twin;
* ``patching_unpaired``: items without a usable twin, with the reason.

The study is a client of :mod:`probes.jobs.runner`: one unit per (model, task, kind of table), run
by the shared loop, so a re-run skips the shards already written for the same inputs;
``overwrite`` replaces them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from probes.ablate.ablation import METHODS, Method, Reference, ablate, clean_answers, ranked_search
from probes.ablate.attribution import attribute, mean_head_attribution
from probes.ablate.components import Component, Kind, parse_component
from probes.ablate.patching import POSITIONS, TWIN_VARIANT, Positions, pair_items, patch
from probes.ablate.prompts import encode_prompts
from probes.errors import ProbesError, UnknownTaskError
from probes.jobs.manifest import provenance
from probes.jobs.options import ItemOptions
from probes.jobs.runner import execute
from probes.jobs.units import Output, Unit, model_specs, my_slice
from probes.jobs.validation import check_options
from probes.model.loading import HookedModel
from probes.store.store import Store
from probes.tasks import Item, load_items
from probes.tasks.items import task_and_variant

#: The analyses, in the order they run.
ANALYSES: tuple[str, ...] = ("attribution", "ablation", "patching")

#: Kind of the table of items patching could not pair.
UNPAIRED = "patching_unpaired"


@dataclass
class AblateOptions(ItemOptions):
    """What an ablation study runs and where it writes."""

    variant: str = field(default="prize", metadata={"help": "Prompt variant whose items are analysed."})
    analyses: list[str] = field(
        default_factory=lambda: list(ANALYSES),
        metadata={"help": f"Which analyses to run, of {list(ANALYSES)}."},
    )
    methods: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata={"help": "Ablation methods for single components and --components: zero, mean, resample."},
    )
    components: list[str] | None = field(
        default=None,
        metadata={
            "help": "A set of components ablated together (e.g. L1H3 L2.mlp L0), besides the single ones."
        },
    )
    search_method: str = field(
        default="mean", metadata={"help": "Ablation method of the top-k vs random-k head search."}
    )
    ks: list[int] = field(
        default_factory=lambda: [1, 2, 4, 8, 16],
        metadata={
            "help": "Numbers of heads ablated together in the search (those above the head count skip)."
        },
    )
    draws: int = field(default=5, metadata={"help": "Random head sets per k (seeds seed, seed+1, ...)."})
    positions: list[str] = field(
        default_factory=lambda: ["answer", "suffix"],
        metadata={"help": "Patched positions: answer, suffix (positions shared back from the answer), all."},
    )
    patch_heads: bool = field(
        default=True, metadata={"help": "Also patch every head's output, not only layers."}
    )
    batch_size: int = field(default=16, metadata={"help": "Prompts per forward pass."})

    def check(self) -> None:
        """Raise :class:`ProbesError` naming the first option that cannot work."""
        unknown = sorted(set(self.analyses) - set(ANALYSES))
        if unknown:
            raise ProbesError(f"unknown analyses {unknown}; choose among {list(ANALYSES)}.")
        methods = sorted(set(self.methods) | {self.search_method})
        if set(methods) - set(METHODS):
            raise ProbesError(f"unknown ablation methods in {methods}; use {list(METHODS)}.")
        if not self.positions or set(self.positions) - set(POSITIONS):
            raise ProbesError(f"--positions {self.positions}: choose among {list(POSITIONS)}.")
        if self.variant == TWIN_VARIANT:
            raise ProbesError(f"--variant {TWIN_VARIANT} is the twin of patching; analyse prize or one_shot.")
        for name in self.components or []:
            parse_component(name)
        if not self.ks or min(self.ks) < 1:
            raise ProbesError(f"--ks {self.ks}: give numbers of heads of at least 1, e.g. --ks 1 2 4 8.")
        if self.draws < 0 or self.batch_size < 1:
            raise ProbesError("--draws must be 0 or more and --batch-size at least 1.")
        if self.n_items is not None and self.n_items < 2:
            raise ProbesError(
                f"--n-items {self.n_items}: ablation means and resampling need at least 2 items."
            )


#: The options that set each kind of table's numbers, besides the model, items and dtype.
_SETTINGS = {
    "attribution": (),
    "ablation": ("methods", "components", "search_method", "ks", "draws", "seed"),
    "patching": ("positions", "patch_heads"),
}


def _units(options: AblateOptions) -> list[tuple[str, list[Item], list[Item]]]:
    """Per task: its name, the analysed items and their twins (none if the task has no twins)."""
    units = []
    for task in options.tasks:
        analysed = load_items([task], [options.variant], options.n_items, options.seed)
        try:
            twins = load_items([task], [TWIN_VARIANT], options.n_items, options.seed)
        except UnknownTaskError:
            twins = []
        units.append((analysed[0].task, analysed, twins))
    return units


def _single_components(model: HookedModel) -> list[list[Component]]:
    """Every block, attention layer and MLP, each alone."""
    kinds: tuple[Kind, ...] = ("layer", "attn", "mlp")
    return [[Component(layer, kind)] for layer in range(model.n_layers) for kind in kinds]


def _ablation_table(
    model: HookedModel, items: list[Item], attribution: pd.DataFrame | None, options: AblateOptions
) -> pd.DataFrame:
    """Single components and the chosen set with each method, then the top-k vs random-k search."""
    prompts = encode_prompts(items, model)
    if attribution is None:
        attribution = attribute(model, items, options.batch_size)
    means = mean_head_attribution(attribution)
    ranking = [parse_component(name) for name in means["component"]]
    sets = [("single", c) for c in _single_components(model)]
    if options.components:
        sets.append(("chosen", [parse_component(name) for name in options.components]))
    components = [c for _, chosen in sets for c in chosen] + ranking
    names = sorted({name for c in components for name in c.hook_names()})
    # one clean pass and one reference pass serve every ablated set and the search
    clean = clean_answers(model, prompts, options.batch_size)
    reference = Reference.collect(model, prompts, names, options.batch_size)
    tables = []
    for selection, chosen in sets:
        for method in options.methods:
            table = ablate(
                model,
                prompts,
                chosen,
                cast(Method, method),
                reference,
                options.seed,
                options.batch_size,
                clean,
            )
            labels = " ".join(c.label for c in chosen)
            tables.append(
                table.assign(selection=selection, k=len(chosen), draw=0, components=labels, method=method)
            )
    search = ranked_search(
        model, prompts, ranking, options.ks, options.draws, cast(Method, options.search_method),
        options.seed, options.batch_size, reference, clean,
    )  # fmt: skip
    # beyond this many, the "top" set also holds heads whose mean attribution favours the true answer
    tables.append(search.assign(distractor_heads=int((means["attribution"] < 0).sum())))
    return pd.concat(tables, ignore_index=True)


def _patching_tables(
    model: HookedModel, items: list[Item], twins: list[Item], options: AblateOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patching rows for every positions mode, and the items each mode could not pair."""
    tables, unpaired_tables = [], []
    for mode in options.positions:
        positions = cast(Positions, mode)
        pairs, unpaired = pair_items(model, items, twins, positions)
        if not twins:
            unpaired = unpaired.assign(reason=f"the task has no {TWIN_VARIANT} variant")
        tables.append(patch(model, pairs, positions, options.patch_heads, options.batch_size))
        unpaired_tables.append(unpaired.assign(positions=mode))
    return pd.concat(tables, ignore_index=True), pd.concat(unpaired_tables, ignore_index=True)


def plan(options: AblateOptions) -> list[Unit]:
    """One unit per (model, task, kind of table), then this process's slice of them."""
    models = model_specs(options)  # a bad spec fails before any item is built
    kinds = [k for k in ANALYSES if k in options.analyses]
    tasks = _units(options)
    units = []
    for model in models:
        for task, items, twins in tasks:
            for kind in kinds:
                settings = {"settings": {name: getattr(options, name) for name in _SETTINGS[kind]}}
                twins_used = tuple(twins) if kind == "patching" else ()
                units.append(
                    Unit(
                        model,
                        task,
                        options.variant,
                        tuple(items),
                        kind,
                        "output",
                        twins=twins_used,
                        settings=settings,
                    )
                )
    return my_slice(units, options.shard)


#: Layers and heads assumed for the progress estimate of a model no ladder catalogue describes.
UNKNOWN_SHAPE = (12, 12)


def _shape(unit: Unit) -> tuple[int, int]:
    """A unit's model's layers and heads as its ladder's catalogue gives them (else :data:`UNKNOWN_SHAPE`)."""
    from probes.ladders import get_ladder, ladder_names

    for name in ladder_names():
        rung = get_ladder(name).rung_for(unit.model.text)
        if rung is not None and rung.layers and rung.heads:
            return int(rung.layers), int(rung.heads)
    return UNKNOWN_SHAPE


def forward_passes(kind: str, n_layers: int, n_heads: int, options: AblateOptions) -> int:
    """Forward passes per item one analysis takes (what the progress bar counts).

    Attribution: one cached pass. Ablation: the clean and reference passes, one per single
    component (block, attention, MLP of every layer) and chosen set per method, then the
    top-k set and the random draws of every k that fits the heads (plus the attribution it
    ranks heads by, when this run does not compute it). Patching, per positions mode: the
    twin's cached pass, the clean pass, one per residual site (every layer and the embedding)
    and one per head when heads are patched.
    """
    if kind == "attribution":
        return 1
    if kind == "ablation":
        pool = n_layers * n_heads
        sets = 3 * n_layers + (1 if options.components else 0)
        search = sum(1 + (options.draws if k < pool else 0) for k in options.ks if 0 < k <= pool)
        ranking = 0 if "attribution" in options.analyses else 1
        return 2 + sets * len(options.methods) + search + ranking
    sites = (n_layers + 1) + (n_layers * n_heads if options.patch_heads else 0)
    return len(options.positions) * (2 + sites)


def run_ablation_study(options: AblateOptions) -> Store:
    """Run (or resume) the study; returns the store it wrote to."""
    options.check()
    check_options(options)
    units = plan(options)

    def compute(model: HookedModel, pending: list[Unit]) -> Iterator[Output]:
        for name in options.components or []:  # before any analysis runs
            parse_component(name).check(model)
        attributions: dict[str, pd.DataFrame] = {}
        for unit in pending:
            items, twins = list(unit.items), list(unit.twins)
            if unit.kind == "attribution":
                table = attributions[unit.task] = attribute(model, items, options.batch_size)
            elif unit.kind == "ablation":
                table = _ablation_table(model, items, attributions.get(unit.task), options)
            else:
                table, unpaired = _patching_tables(model, items, twins, options)
                yield _output(model, unit, UNPAIRED, unpaired, done=False)
            yield _output(model, unit, unit.kind, table)

    def work(unit: Unit) -> float:  # item-passes: the analyses differ by ~100× per item
        return len(unit.items) * forward_passes(unit.kind, *_shape(unit), options)

    return execute(units, options, compute, "ablations", work=work, unit_name="pass")


def analyse_model(
    model: HookedModel,
    items: list[Item],
    twins: list[Item] | None = None,
    options: AblateOptions | None = None,
) -> dict[str, pd.DataFrame]:
    """The study's tables of one already-loaded model on one task's items, without a store.

    What :func:`run_ablation_study` computes per (model, task), for a notebook that loads a
    large model once (:func:`probes.load_model`) and runs the lens on it too. ``options`` says
    which analyses run and how (its model, ladder, task and store fields are not used); ``twins``
    are the items' ``no_distractor`` twins, for patching. Returns the tables by kind
    (``attribution``, ``ablation``, ``patching`` and ``patching_unpaired``, as asked), each row
    with the store's provenance columns, so :mod:`probes.ablate.summary` takes them as they are.
    """
    options = options or AblateOptions()
    options.check()
    task, variant = task_and_variant(items, "analyse_model")
    for name in options.components or []:
        parse_component(name).check(model)
    found: dict[str, pd.DataFrame] = {}
    if "attribution" in options.analyses:
        found["attribution"] = attribute(model, items, options.batch_size)
    if "ablation" in options.analyses:
        found["ablation"] = _ablation_table(model, items, found.get("attribution"), options)
    if "patching" in options.analyses:
        found["patching"], found[UNPAIRED] = _patching_tables(model, items, list(twins or []), options)
    return {kind: _with_origin(model, "output", task, variant, kind, table) for kind, table in found.items()}


def _with_origin(
    model: HookedModel, lens: str, task: str, variant: str, kind: str, table: pd.DataFrame
) -> pd.DataFrame:
    """``table`` with its rows' provenance (lens ``output``: the model's own output, no per-layer lens)."""
    origin = provenance(model, lens)
    context = {"task": task, "variant": variant, "analysis": kind}
    return table.assign(model=origin.pop("model"), revision=origin.pop("revision"), **context, **origin)


def _output(model: HookedModel, unit: Unit, kind: str, table: pd.DataFrame, done: bool = True) -> Output:
    """A table with its rows' provenance, as the unit's shard of kind ``kind``."""
    rows = _with_origin(model, unit.lens, unit.task, unit.variant, kind, table)
    return Output(unit, rows, kind, fields={"analysis": kind, "n_rows": len(rows)}, done=done)
