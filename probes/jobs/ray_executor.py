"""The Ray executor: every unit of a run's plan as a Ray task, on a local or a joined cluster.

``--executor ray`` hands the run layer's checked, planned units (:func:`probes.jobs.runner.execute`)
to :func:`execute_on_ray`. Each unit becomes one Ray task asking for the resources its model
needs (:mod:`probes.jobs.resources`: a share of GPUs by parameter count on ``--device cuda``, one
CPU otherwise). The task runs the run layer's own :func:`~probes.jobs.runner.execute_model` on its
one unit, so everything a serial run guarantees holds: finished shards are skipped, each unit
is claimed (``store.claim``) before it is computed, and each shard is written atomically with
its checksum and manifest. The store's folder must be one that every worker sees (a local
cluster's workers do; a cluster of several machines needs a shared file system).

A worker keeps the last model it loaded, so the units of one model that land on a worker
reuse it (the driver submits units model by model). A worker that dies (killed, out of
memory) has its unit retried, up to :data:`RETRIES` times, by another worker process: the
dead worker's claim is stale and recovered (on its machine: a unit whose claim a process of
another cluster machine holds is looked at again by a task placed there), and a shard
half-written by it never existed (writes are atomic). An error of ours in a task (a
:class:`~probes.errors.ProbesError`) stops the run with that error, as it would a serial run.
The driver draws the run's one progress bar as tasks finish.

Without ``--address`` a local Ray cluster is started for the run (``--workers`` CPUs; all
of this machine's by default) and shut down after it; an address joins a running cluster
(``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the others).
Ray is an optional extra: ``pip install 'probes[ray]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from probes.errors import ProbesError
from probes.jobs.progress import RunProgress, quiet_libraries
from probes.jobs.resources import catalogue_parameters, gpu_memory_gib, unit_resources
from probes.jobs.units import Compute, PlannedModel, Unit, load_planned, shard_path
from probes.jobs.validation import check_device, device_kind, import_ray
from probes.jobs.worker import execute_model
from probes.progress_bar import tqdm
from probes.store import claims
from probes.store.store import Store

T = TypeVar("T")

#: How often a unit whose worker died is run again before the run gives up.
RETRIES = 3

#: Seconds between looks at the claims of units other processes hold.
POLL_S = 1.0

#: The model a worker process loaded last: (model, device, dtype) and the model itself.
_LOADED: dict[tuple[str, str, str], Any] = {}


class ExecutorError(ProbesError):
    """Ray is missing, its cluster cannot be reached, or a unit's workers kept dying."""


@contextlib.contextmanager
def cluster(options: Any) -> Iterator[Any]:
    """Ray, connected for the block: to ``options.address``, to a cluster this process already
    joined, or to a local cluster of ``options.workers`` CPUs started here and shut down after."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    package_root = str(Path(__file__).resolve().parents[1])  # workers import this copy of probes
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    settings: dict[str, Any] = {"logging_level": logging.ERROR, "include_dashboard": False}
    if options.address:
        settings["address"] = options.address
    else:
        settings["num_cpus"] = options.workers or os.cpu_count() or 1
        settings["runtime_env"] = {"env_vars": {"PYTHONPATH": python_path}}
    try:
        ray.init(**settings)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {options.address}" if options.address else "a local Ray cluster"
        raise ExecutorError(
            f"cannot start or join {where} ({err}); check `ray status` (or the address)."
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def execute_on_ray(
    store: Store, units: Sequence[Unit], options: Any, compute: Compute, description: str
) -> Store:
    """Run the units as Ray tasks (retried when their worker dies); the store they were written to.

    A unit another process holds is submitted again once its claim is gone or stale; a claim
    held on another machine of the cluster is looked at by a task placed on that machine (only
    there can a dead owner be told and its claim recovered).

    Raises:
        ProbesError: The first error of ours a task raised (Ray's traceback left out).
        ExecutorError: A unit's workers died more than :data:`RETRIES` times.
    """
    progress = RunProgress(units, description, enabled=options.progress)
    memory = gpu_memory_gib(options.gpu_memory_gib)
    parameters = {text: catalogue_parameters(u.model.spec) for text, u in _by_model(units).items()}
    with cluster(options) as ray:
        run_unit = ray.remote(_run_unit)
        shared_options, shared_compute = ray.put(options), ray.put(compute)
        ready: list[tuple[Unit, dict[str, Any]]] = [(unit, {}) for unit in units]
        waiting: list[Unit] = []
        told = False
        while ready or waiting:
            tasks = {}
            for unit, placement in ready:  # model by model: a worker's next unit tends to reuse its model
                needs = unit_resources(parameters[unit.model.text], options.dtype, options.device, memory)
                task = run_unit.options(
                    **needs.as_ray_options(), **placement, max_retries=RETRIES, retry_exceptions=False
                ).remote(str(store.root), unit, shared_options, shared_compute)
                tasks[task] = unit
            ready = []
            for unit, outcome in _as_finished(ray, tasks):
                progress.model(unit.model.label, f"{unit.task}/{unit.variant}")
                if outcome == "held":
                    waiting.append(unit)
                elif outcome == "skipped":
                    progress.skip([unit])
                else:
                    progress.done(unit)
            if waiting:
                time.sleep(POLL_S)
                ready, waiting = _look_again(ray, store, waiting)
                told = told or _tell_waiting(store, waiting)
    progress.close()
    store.clean_temporary()  # temporary files of workers killed mid-write
    return store


def _look_again(
    ray: Any, store: Store, held: list[Unit]
) -> tuple[list[tuple[Unit, dict[str, Any]]], list[Unit]]:
    """Of units others held: those to submit again (with where), and those still to wait for."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = {node["NodeManagerHostname"]: node["NodeID"] for node in ray.nodes() if node["Alive"]}
    ready, waiting = [], []
    for unit in held:
        lock = claims.lock_path(shard_path(store, unit))
        owner = claims.owner_of(lock)
        if not lock.exists() or claims.stale(lock):
            ready.append((unit, {}))
        elif owner is not None and owner.host != claims.HOST and owner.host in nodes:
            strategy = NodeAffinitySchedulingStrategy(nodes[owner.host], soft=True)
            ready.append((unit, {"scheduling_strategy": strategy}))
        else:
            waiting.append(unit)
    return ready, waiting


def _tell_waiting(store: Store, waiting: list[Unit]) -> bool:
    """Say once that the run waits for shards other processes hold; whether it said so."""
    if not waiting:
        return False
    lock = claims.lock_path(shard_path(store, waiting[0]))
    owner = claims.owner_of(lock)
    remote = owner is not None and owner.alive() is None
    hint = f" (delete {lock} if that process is gone)" if remote else ""
    print(
        f"probes: waiting for {len(waiting)} shard(s) that {owner or 'another process'} is computing{hint}.",
        file=sys.stderr,
    )
    return True


def map_models(
    function: Callable[[PlannedModel], T], models: Sequence[PlannedModel], options: Any, what: str
) -> list[T]:
    """``function`` of every model, one Ray task each (retried when its worker dies), in order.

    For per-model work outside the unit loop (``probes lens train``): each task gets the
    resources of its model as a unit would.
    """
    memory = gpu_memory_gib(options.gpu_memory_gib)
    results: dict[int, T] = {}
    with cluster(options) as ray:
        remote = ray.remote(_call)
        shared = ray.put(function)
        tasks = {}
        for index, model in enumerate(models):
            needs = unit_resources(catalogue_parameters(model.spec), options.dtype, options.device, memory)
            task = remote.options(**needs.as_ray_options(), max_retries=RETRIES, retry_exceptions=False)
            tasks[task.remote(shared, model)] = index
        bar = tqdm(total=len(models), desc=what, unit="model", disable=not options.progress)
        for index, result in _as_finished(ray, tasks):
            results[index] = result
            bar.update(1)
            bar.set_postfix_str(models[index].label)
        bar.close()
    return [results[index] for index in range(len(models))]


def _as_finished(ray: Any, tasks: dict[Any, T]) -> Iterator[tuple[T, Any]]:
    """(key, result) of each task as it finishes; our errors re-raised as they are."""
    waiting = list(tasks)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            if waiting:  # and every other one finished by now, in one call (plans of 10^4 units)
                more, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0)
                ready += more
            for task in ready:
                yield tasks[task], _result(ray, task, tasks[task])
    finally:
        for task in waiting:  # after an error: the rest is not wanted
            ray.cancel(task)


def _result(ray: Any, task: Any, key: Any) -> Any:
    """A task's result; a ProbesError it raised, as itself; a worker that kept dying, as ours."""
    try:
        return ray.get(task)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, ProbesError):
            raise err.cause from None
        raise
    except ray.exceptions.RayError as err:  # the worker (or its node) died, RETRIES + 1 times
        name = getattr(key, "model", None)
        what = f"{name.label} {key.task}/{key.variant}" if name is not None else str(key)
        raise ExecutorError(
            f"the worker of {what} died {RETRIES + 1} times ({type(err).__name__}); "
            "re-run the same command to resume (finished shards are kept)."
        ) from None


def _by_model(units: Sequence[Unit]) -> dict[str, Unit]:
    return {unit.model.text: unit for unit in units}


class _Tally:
    """A worker's progress: what became of its unit."""

    def __init__(self) -> None:
        self.skipped = self.done_count = 0

    def model(self, label: str, state: str = "") -> None:
        pass

    def skip(self, units: Sequence[Any]) -> None:
        self.skipped += len(units)

    def done(self, unit: Any) -> None:
        self.done_count += 1


def _run_unit(root: str, unit: Unit, options: Any, compute: Compute) -> str:
    """In a worker: skip, or claim, compute and write one unit; ``done``, ``skipped`` or ``held``."""
    options = _on_this_worker(options)
    tally = _Tally()
    with quiet_libraries(not options.verbose):
        held = execute_model(Store(root), [unit], options, compute, tally, load=_load_kept)
    if held:
        return "held"
    return "done" if tally.done_count else "skipped"


def _call(function: Callable[[PlannedModel], T], model: PlannedModel) -> T:
    return function(model)


def _on_this_worker(options: Any) -> Any:
    """The options as this worker runs them: its device checked; a GPU as Ray made it visible."""
    check_device(str(options.device) if device_kind(options.device) != "cuda" else "cuda")
    if device_kind(options.device) == "cuda" and options.device != "cuda":
        options = dataclasses.replace(options, device="cuda")  # Ray numbers the visible GPUs from 0
    return options


def _load_kept(model: PlannedModel, options: Any) -> Any:
    """The model, loaded once per worker: the last one loaded is kept for the worker's next unit."""
    key = (model.text, str(options.device), str(options.dtype))
    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: free the last before loading the next
        _LOADED[key] = load_planned(model, options)
    return _LOADED[key]
