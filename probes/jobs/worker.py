"""What one process does with one model's units: skip the finished, claim, load once, compute, write.

The serial runner (:func:`probes.jobs.runner.execute`) calls :func:`execute_model` for each
model in turn; the Ray executor's tasks (:mod:`probes.jobs.ray_executor`) call it with one unit.
"""

from __future__ import annotations

import contextlib

from probes.jobs.fingerprint import is_finished, unit_fingerprint
from probes.jobs.manifest import manifest_record
from probes.jobs.options import RunOptions
from probes.jobs.progress import Progress
from probes.jobs.units import (
    Compute,
    Loader,
    Unit,
    catalogue_layers,
    load_planned,
    needs_layer_count,
    shard_path,
)
from probes.model.hooked import HookedModel
from probes.store.store import LENS, Store


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
    prints = {id(unit): unit_fingerprint(unit, options, n_layers) for unit in model_units}
    pending = [unit for unit in model_units if not is_finished(store, unit, prints[id(unit)], options)]
    progress.skip([unit for unit in model_units if all(unit is not p for p in pending)])
    held: list[Unit] = []
    with contextlib.ExitStack() as held_claims:
        mine = []
        for unit in pending:
            if not held_claims.enter_context(store.claim(shard_path(store, unit))):
                held.append(unit)
            elif is_finished(store, unit, prints[id(unit)], options, warn=False):  # written meanwhile
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
                model,
                unit.model,
                unit.task,
                unit.variant,
                options,
                fingerprint=prints[id(unit)],
                **output.fields,
            )
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
