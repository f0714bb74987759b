"""The run layer every command shares: options, units of work, fingerprints, manifests, one loop.

A command (``probes run``, ``probes ablate``, ``probes perplexity``, the reasoning-depth study)
is a client of this module. It plans :class:`Unit` s, one per table it will write (a model, a
task, a variant, a kind of table, the lens that reads it and the items), and hands them to
:func:`execute` with a function that computes tables from a loaded model. The loop here

1. checks every option (:func:`probes.run.validation.check_options`) and parses every model spec
   once (a bad one fails before any item is built or model loaded),
2. skips units whose shard is already written, whole, for the same inputs (their
   :func:`fingerprint`; a damaged shard is named and recomputed),
3. claims each pending unit (:meth:`probes.store.store.Store.claim`) so that concurrent runs into
   one store split the work, and loads each model once, only when it has units to compute,
4. computes them and writes each table as one shard, atomically, with a checksum and a
   manifest record (:func:`manifest_record`) of what produced it,
5. waits for the units other processes held, and computes those they left undone.

That is the serial executor. With ``executor="ray"`` the checked, planned units go to
:mod:`probes.run.ray_executor` instead, whose Ray tasks run :func:`execute_model` (steps 2-4)
one unit each on the cluster's workers.

Everything that changes a number (model, items, lens and its weights, layers, dtype, batch
size and device kind, which move numbers by float rounding, the command's own settings)
goes into the fingerprint; ``--layers -1`` and ``--layers N`` naming the same layer give the
same one.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch

from probes.analysis.scoring import SCORING
from probes.errors import InvalidOptionError, ProbesError
from probes.model.loading import HookedModel, ModelSpec, check_hub_model, load_model, parse_spec
from probes.model.placement import backend_options, backend_setting
from probes.run.options import DEFAULT_LADDER, LadderOptions, LoadOptions, RunOptions
from probes.run.progress import Progress, RunProgress, items_of, quiet_libraries
from probes.run.resources import set_torch_threads
from probes.run.resume import finished_or_damaged, wait_for
from probes.run.validation import check_options, device_kind
from probes.store.store import LENS, Store
from probes.tasks import Item
from probes.version import __version__, package_versions

T = TypeVar("T")


@dataclass(frozen=True)
class PlannedModel:
    """A model spec as written (for manifests) and parsed once (for loading and labels)."""

    text: str
    spec: ModelSpec

    @property
    def label(self) -> str:
        """The model's name as results show it."""
        return self.spec.label


@dataclass(frozen=True)
class Unit:
    """One shard to compute: a model, a task, a variant, a kind of table, its lens and items.

    Attributes:
        model: The model, parsed once.
        task: Task name.
        variant: Prompt variant.
        items: The items the shard's numbers come from.
        kind: Kind of table (:data:`probes.store.store.LENS` for per-layer lens readouts).
        lens: Name of the lens that reads the residual stream (``output`` for analyses of the
            model's own output).
        lens_weights: SHA-256 of a trained lens's weights; None for a lens without weights.
        layers: Layers read as asked (negative ones count from the end); None for all.
        twins: Items whose numbers also enter the table (patching's donors).
        settings: The command's own options that change the table's numbers.
    """

    model: PlannedModel
    task: str
    variant: str
    items: tuple[Item, ...]
    kind: str = LENS
    lens: str = "logit"
    lens_weights: str | None = None
    layers: tuple[int, ...] | None = None
    twins: tuple[Item, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Output:
    """One table a computation produced for a unit (a unit may give a second table of another kind)."""

    unit: Unit
    table: pd.DataFrame
    kind: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    done: bool = True


#: Computes the tables of a model's pending units.
Compute = Callable[[HookedModel, list[Unit]], Iterable[Output]]

#: Loads a planned model for a run (the Ray executor's keeps it for the worker's next unit).
Loader = Callable[[PlannedModel, RunOptions], HookedModel]


def load_planned(model: PlannedModel, options: LoadOptions) -> HookedModel:
    """Load a planned model as the run's options say: device or device map, dtype, backend, remote."""
    return load_model(model.spec, device=options.device, dtype=options.dtype, **backend_options(options))


def model_specs(options: LadderOptions) -> list[PlannedModel]:
    """The models a run covers, smallest rung first, each spec parsed (and checked) once."""
    from probes.ladders import get_ladder

    if options.models:
        if options.steps:
            texts = [f"{m}@step{s}" for m in options.models for s in options.steps]
        else:
            texts = list(options.models)
    else:
        texts = get_ladder(options.ladder or DEFAULT_LADDER).model_specs(steps=options.steps)
    return [planned(text) for text in texts]


def planned(spec: str | ModelSpec) -> PlannedModel:
    """A spec parsed once (a bad path fails here, before anything is loaded)."""
    if isinstance(spec, ModelSpec):
        return PlannedModel(spec.label, spec)
    return PlannedModel(spec, parse_spec(spec))


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/N"`` as ``(i, N)``, checked."""
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise InvalidOptionError(f"--shard {shard!r} is not of the form i/N (e.g. 0/4).") from None
    if not 0 <= index < count:
        raise InvalidOptionError(f"--shard {shard!r}: i must be in 0..N-1 (and N at least 1).")
    return index, count


def my_slice(units: Sequence[T], shard: str) -> list[T]:
    """This process's contiguous slice of the work list (``shard="i/N"``).

    Raises:
        InvalidOptionError: The slice is empty (N is larger than the work list).
    """
    index, count = parse_shard(shard)
    mine = list(units[len(units) * index // count : len(units) * (index + 1) // count])
    if units and not mine:
        raise InvalidOptionError(
            f"--shard {shard} selects none of the {len(units)} unit(s) of work: N is larger than the "
            f"work list; use at most --shard i/{len(units)}."
        )
    return mine


def canonical_layers(layers: Sequence[int] | None, n_layers: int | None) -> list[int] | None:
    """Layers as sorted indices ``0..n_layers`` (None: all), negative ones resolved.

    Raises:
        ProbesError: A negative layer with no layer count to resolve it against.
    """
    if layers is None:
        return None
    if any(layer < 0 for layer in layers) and n_layers is None:
        raise ProbesError("negative layers need the model's layer count; load the model first.")
    return sorted({layer + (n_layers or 0) + 1 if layer < 0 else layer for layer in layers})


def needs_layer_count(unit: Unit) -> bool:
    """Whether the unit's layers can only be resolved against the model's layer count."""
    return unit.layers is not None and any(layer < 0 for layer in unit.layers)


def fingerprint(
    unit: Unit, dtype: str, n_layers: int | None = None, run: Mapping[str, Any] | None = None
) -> str:
    """Hash of everything that determines a unit's numbers (and nothing else, so adding a task,
    a model or a kind of table to a run resumes it instead of refusing it).

    ``run`` holds the run's settings that move numbers by float rounding (:func:`run_settings`:
    batch size, device kind); without it the hash is the one shards had before they counted.
    """
    payload: dict[str, Any] = {
        "model": unit.model.label,
        "items": [item.to_dict() for item in unit.items],
        "dtype": dtype,
        **unit.settings,
        **(run or {}),
    }
    if unit.kind == LENS:
        payload["lens"] = unit.lens
        payload["layers"] = canonical_layers(unit.layers, n_layers)
        payload["scoring"] = SCORING
    else:
        payload["kind"] = unit.kind
    if unit.lens_weights is not None:
        payload["lens_weights"] = unit.lens_weights
    if unit.twins:
        payload["twins"] = [twin.to_dict() for twin in unit.twins]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_settings(options: RunOptions) -> dict[str, Any]:
    """The run's settings that change numbers only by float rounding, yet change them.

    Batches of other sizes pad and reduce differently (log-probs moved by ~1e-5 on the built-in
    ladder between --batch-size 1, 3 and 8; a rationale's greedy token can flip), and so do
    other kinds of device, and other backends. Device indices (cuda:0 vs cuda:1) do not count.
    """
    kind = device_kind(options.device)
    return {"batch_size": options.batch_size, "device_kind": kind, **backend_setting(options)}


def provenance(model: HookedModel, lens: str) -> dict[str, Any]:
    """What every result row says of its origin: model, revision, lens and toolkit version."""
    return {
        "model": model.name,
        "revision": model.spec.revision or "",
        "lens": lens,
        "toolkit_version": __version__,
    }


def manifest_record(
    model: HookedModel, spec: str | PlannedModel, task: str, variant: str, options: Any, **fields: Any
) -> dict[str, Any]:
    """What produced one shard: the model and its rung, the task, the options, versions and time.

    A :class:`PlannedModel` from a ladder gets the rung metadata of the ladder it was planned from
    (its :class:`~probes.model.specs.ModelSpec` carries ladder and rung); a plain string is looked up.

    ``options`` is the run's options dataclass (its ``seed`` and ``batch_size`` are copied out);
    ``fields`` (a ``fingerprint``, ``n_items`` ...) are added as they are.
    """
    from probes.ladders import rung_metadata

    return {
        **model.describe(),
        **rung_metadata(spec.spec if isinstance(spec, PlannedModel) else spec),
        "spec": spec.text if isinstance(spec, PlannedModel) else spec,
        "task": task,
        "variant": variant,
        "seed": getattr(options, "seed", None),
        "batch_size": options.batch_size,
        **fields,
        "toolkit_version": __version__,
        "packages": package_versions(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
    }


def catalogue_layers(model: PlannedModel) -> int | None:
    """The model's layer count as its ladder's catalogue gives it (None when no ladder has it)."""
    from probes.ladders import get_ladder, ladder_names

    for name in ladder_names():
        rung = get_ladder(name).rung_for(model.text)
        if rung is not None and rung.layers:
            return int(rung.layers)
    return None


def execute(
    units: Sequence[Unit],
    options: RunOptions,
    compute: Compute,
    description: str,
    work: Callable[[Unit], float] = items_of,
    unit_name: str = "item",
) -> Store:
    """Check → skip finished → claim → load each model once → compute → write each shard atomically.

    Args:
        units: The units of this process, grouped by model in the order given.
        options: The run's options (store folder, device, dtype, overwrite, progress ...).
        compute: Given a loaded model and its pending units, yields their tables.
        description: The progress bar's label.
        work: A unit's share of the bar (:class:`~probes.run.progress.RunProgress`); its items by default.
        unit_name: What ``work`` counts.

    Returns:
        The store the shards were written to.

    Raises:
        StoreError: A shard holds results of other settings (without ``overwrite``).
    """
    check_options(options)
    for spec in {unit.model.text: unit.model.spec for unit in units}.values():
        if spec.source == "hub":
            check_hub_model(spec)  # uncached while offline: fail now, not after other models ran
    store = Store(options.out)
    store.clean_temporary()
    if getattr(options, "executor", "serial") == "ray":
        from probes.run.ray_executor import execute_on_ray

        return execute_on_ray(store, units, options, compute, description)
    set_torch_threads()  # the CPUs other work leaves free (probes.run.resources)
    progress = RunProgress(units, description, enabled=options.progress, work=work, unit_name=unit_name)
    held, first = list(units), True
    with quiet_libraries(not options.verbose):
        while held:  # after the first pass: the units other processes held, once they let go
            if not first:
                wait_for([shard_path(store, unit) for unit in held])
            first = False
            by_model: dict[str, list[Unit]] = {}
            for unit in held:
                by_model.setdefault(unit.model.text, []).append(unit)
            held = [
                u
                for group in by_model.values()
                for u in execute_model(store, group, options, compute, progress)
            ]
    progress.close()
    return store


def execute_model(
    store: Store,
    model_units: list[Unit],
    options: RunOptions,
    compute: Compute,
    progress: Progress,
    load: Loader = load_planned,
) -> list[Unit]:
    """Compute one model's pending units that this process can claim (``load`` loads the model
    when one is left); returns the ones it cannot."""
    planned_model = model_units[0].model
    model: HookedModel | None = None
    n_layers = None
    if any(map(needs_layer_count, model_units)):
        n_layers = catalogue_layers(planned_model)
        if n_layers is None:
            progress.model(planned_model.label, "loading")
            model = load(planned_model, options)
            n_layers = model.n_layers
    prints = {id(unit): _prints(unit, options, n_layers) for unit in model_units}
    pending = [unit for unit in model_units if not _finished(store, unit, prints[id(unit)], options)]
    progress.skip([unit for unit in model_units if all(unit is not p for p in pending)])
    held: list[Unit] = []
    with contextlib.ExitStack() as claims:
        mine = []
        for unit in pending:
            if not claims.enter_context(store.claim(shard_path(store, unit))):
                held.append(unit)
            elif _finished(store, unit, prints[id(unit)], options, warn=False):  # written meanwhile
                progress.skip([unit])
            else:
                mine.append(unit)
        if not mine:
            return held
        if model is None:
            progress.model(planned_model.label, "loading")
            model = load(planned_model, options)
        progress.model(planned_model.label, unit_state(mine[0]))
        following = {id(unit): after for unit, after in zip(mine, mine[1:])}
        for output in compute(model, mine):
            unit = output.unit
            record = manifest_record(
                model, unit.model, unit.task, unit.variant, options,
                fingerprint=prints[id(unit)][0], **output.fields,
            )  # fmt: skip
            if unit.lens_weights is not None:  # the store names the shard by lens and weights
                record["lens_weights"] = unit.lens_weights
            kind = output.kind or unit.kind
            store.write(output.table, record, kind, replace=options.overwrite)
            if output.done:
                progress.done(unit)
                if id(unit) in following:
                    after = following[id(unit)]
                    progress.model(planned_model.label, unit_state(after))
        del model
    return held


def unit_state(unit: Unit) -> str:
    """What the bar says a unit computes: ``task/variant``, after its kind when that is not the lens."""
    where = f"{unit.task}/{unit.variant}"
    return where if unit.kind == LENS else f"{unit.kind} {where}"


def _prints(unit: Unit, options: RunOptions, n_layers: int | None) -> tuple[str, str]:
    """A unit's fingerprint, and the one a shard written before run settings counted carries."""
    legacy = fingerprint(unit, options.dtype, n_layers)
    return fingerprint(unit, options.dtype, n_layers, run_settings(options)), legacy


def shard_path(store: Store, u: Unit) -> Path:
    """Where a unit's shard lives in the store (under its lens id: :meth:`Store.lens_shard_path`)."""
    return store.lens_shard_path(u.model.label, u.task, u.variant, u.kind, u.lens, u.lens_weights)


def _finished(
    store: Store, unit: Unit, prints: tuple[str, str], options: RunOptions, warn: bool = True
) -> bool:
    return finished_or_damaged(
        store, shard_path(store, unit), *prints, options.overwrite, options.batch_size, options.device, warn
    )
