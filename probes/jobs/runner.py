"""The run layer every command shares: one loop from planned units to written shards.

A command (``probes run``, ``probes ablate``, ``probes perplexity``, the reasoning-depth study)
is a client of this module. It plans :class:`~probes.jobs.units.Unit` s, one per table it will
write (a model, a
task, a variant, a kind of table, the lens that reads it and the items), and hands them to
:func:`execute` with a function that computes tables from a loaded model. The loop here

1. checks every option (:func:`probes.jobs.validation.check_options`) and parses every model spec
   once (a bad one fails before any item is built or model loaded),
2. skips units whose shard is already written, whole, for the same inputs (their
   :mod:`probes.jobs.fingerprint`; a damaged shard is named and recomputed),
3. claims each pending unit (:meth:`probes.store.store.Store.claim`) so that concurrent runs into
   one store split the work, and loads each model once, only when it has units to compute,
4. computes them and writes each table as one shard, atomically, with a checksum and a
   manifest record (:func:`probes.jobs.manifest.manifest_record`) of what produced it,
5. waits for the units other processes held, and computes those they left undone.

That is the serial executor. With ``executor="ray"`` the checked, planned units go to
:mod:`probes.jobs.ray_executor` instead, whose Ray tasks run
:func:`probes.jobs.worker.execute_model` (steps 2-4)
one unit each on the cluster's workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from probes.jobs.options import RunOptions
from probes.jobs.progress import RunProgress, items_of, quiet_libraries
from probes.jobs.resources import set_torch_threads
from probes.jobs.resume import wait_for
from probes.jobs.units import Compute, Unit, shard_path
from probes.jobs.validation import check_options
from probes.jobs.worker import execute_model
from probes.model.loading import check_hub_model
from probes.store.store import Store


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
        work: A unit's share of the bar (:class:`~probes.jobs.progress.RunProgress`); its items by default.
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
        from probes.jobs.ray_executor import execute_on_ray

        return execute_on_ray(store, units, options, compute, description)
    set_torch_threads()  # the CPUs other work leaves free (probes.jobs.resources)
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
