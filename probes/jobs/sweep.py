"""Sweeps: ladder × tasks × variants, each item read through a lens at every layer, into a store.

The unit of work and of storage is one (lens, model, task, variant) shard, run by the shared
loop of :mod:`probes.jobs.runner`: a re-run skips finished shards (and does not even load a model
whose shards are all done); ``shard="i/N"`` gives process ``i`` a contiguous slice of the work
list, so N independent processes (a SLURM array, Ray tasks) fill one store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from probes.analysis.metrics import layer_table
from probes.errors import InvalidOptionError, ProbesError
from probes.jobs.cot import GENERATION_VERSION, MAX_NEW_TOKENS, write_rationales
from probes.jobs.manifest import provenance
from probes.jobs.options import ItemOptions
from probes.jobs.runner import execute
from probes.jobs.units import Compute, Output, Unit, model_specs, my_slice, shard_path
from probes.jobs.validation import check_options
from probes.lenses.base import Lens, LensChoice, lens_fields
from probes.lenses.reading import read_options
from probes.lenses.registry import choose_lens
from probes.model.loading import HookedModel
from probes.store.store import Store, lens_store_name
from probes.tasks import Item, load_items
from probes.tasks.variants import needs_rationale

__all__ = [
    "SweepOptions",
    "plan",
    "results_of",
    "run",
    "run_sweep",
    "sweep_compute",
    "unwritten",
]


@dataclass
class SweepOptions(ItemOptions):
    """What a sweep runs and where it writes."""

    variants: list[str] | None = field(
        default=None, metadata={"help": "Prompt variants to run; every variant a task offers by default."}
    )
    layers: list[int] | None = field(
        default=None, metadata={"help": "Layers to read (0 = embeddings, -1 = last); all by default."}
    )
    max_new_tokens: int = field(
        default=MAX_NEW_TOKENS,
        metadata={
            "help": "Longest rationale a model may write for a chain-of-thought (cot) item, in tokens."
        },
    )
    lens: str = field(
        default="logit",
        metadata={
            "help": "Lens: logit, or tuned (from --lens-dir, else the one shipped with a built-in rung)."
        },
    )
    lens_dir: Path | None = field(
        default=None,
        metadata={
            "help": "Folder of tuned lenses (the --out of `probes lens train`: one subfolder per model)."
        },
    )


def plan(options: SweepOptions, lens: Lens | None = None) -> list[Unit]:
    """Every (model, task, variant) unit of the sweep, then this process's slice.

    The lens is ``lens`` when given (Python callers), else ``options.lens`` chosen per model
    (a tuned lens's weights hash enters each unit, so finished shards skip without loading).
    """
    models = model_specs(options)  # a bad path fails here, before any item is built or model loaded
    choices = {model.label: _choice(options, model.label, lens) for model in models}
    items = load_items(options.tasks, options.variants, options.n_items, options.seed)
    groups: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        groups.setdefault((item.task, item.variant), []).append(item)
    layers = tuple(options.layers) if options.layers is not None else None
    units = []
    for model in models:
        choice = choices[model.label]
        for (task, variant), group in groups.items():
            settings: dict[str, int] = {}
            if any(map(needs_rationale, group)):
                settings = {"max_new_tokens": options.max_new_tokens, "generation": GENERATION_VERSION}
            units.append(
                Unit(
                    model,
                    task,
                    variant,
                    tuple(group),
                    lens=choice.name,
                    lens_weights=choice.weights_hash,
                    layers=layers,
                    settings=settings,
                )
            )
    return my_slice(units, options.shard)


def _choice(options: SweepOptions, label: str, lens: Lens | None) -> LensChoice:
    if lens is not None:
        return LensChoice(lens.name, getattr(lens, "weights_hash", None), lens=lens)
    return choose_lens(options.lens, label, options.lens_dir)


def run_sweep(options: SweepOptions, lens: Lens | None = None) -> tuple[Store, list[Unit]]:
    """Run (or resume) a sweep through ``lens`` (by default ``options.lens``); the store and its units."""
    check_options(options)  # before any item is built or model loaded
    check_sweep_lists(options)
    units = plan(options, lens)
    store = execute(units, options, sweep_compute(options, lens), "shards")
    return store, units


def check_sweep_lists(options: SweepOptions) -> None:
    """Refuse list options of the wrong shape (Python callers can pass anything).

    Raises:
        InvalidOptionError: ``models``, ``tasks`` or ``variants`` is not a list of names (``tasks``
            also empty), or ``layers`` is not a list of whole numbers.
    """
    for name in ("models", "tasks", "variants"):
        value = getattr(options, name)
        if value is None and name == "variants":
            continue
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise InvalidOptionError(f"{name}={value!r:.80} must be a list of names, e.g. {name}=['...'].")
        if not all(isinstance(v, str) and v for v in value):
            raise InvalidOptionError(f"{name}={list(value)!r:.80} must hold non-empty names (strings).")
        if not value and name != "models":
            raise InvalidOptionError(f"{name}=[] names nothing to run; give at least one, or leave it out.")
    layers = options.layers
    if layers is not None and (
        isinstance(layers, str)
        or not isinstance(layers, (list, tuple))
        or not layers
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers)
    ):
        raise InvalidOptionError(
            f"layers={layers!r:.80} must be a non-empty list of whole layer numbers (0 = embeddings, "
            "-1 = last), or None for every layer."
        )


def sweep_compute(options: SweepOptions, lens: Lens | None = None) -> Compute:
    """The sweep's computation of a loaded model's pending units: each unit's per-layer table."""

    def compute(model: HookedModel, pending: list[Unit]) -> Iterator[Output]:
        model_lens = _choice(options, model.name, lens).build(model)  # a tuned lens checks the model here
        fields: dict[str, Any] = {"lens": model_lens.name, "layers": options.layers}
        fields.update(lens_fields(model_lens))
        for unit in pending:  # no bars of their own: the run's one bar (probes.jobs.progress) counts units
            items = write_rationales(model, unit.items, options.max_new_tokens, options.batch_size, False)
            readout = read_options(model, items, model_lens, options.layers, options.batch_size, False)
            # rows name the lens as its shards do: tuned-<hash8> for a trained lens
            table = layer_table(
                readout, provenance(model, lens_store_name(unit.lens, unit.lens_weights)), model.n_layers
            )
            yield Output(unit, table, fields={"n_items": len(unit.items), **fields})

    return compute


def unwritten(options: SweepOptions, lens: Lens | None = None) -> list[Unit]:
    """The units of the whole run, every shard of it, that have no shard in the store yet.

    The process of a sharded run that finds none missing after its own slice is the last one
    and writes the run's report.
    """
    store = Store(options.out)
    units = plan(dataclasses.replace(options, shard="0/1"), lens)
    return [u for u in units if not shard_path(store, u).is_file()]


def results_of(store: Store, units: Sequence[Unit]) -> pd.DataFrame:
    """The store's per-layer rows of just these units (read from their own shards)."""
    paths = sorted({path for path in (shard_path(store, unit) for unit in units) if path.is_file()})
    if not paths:
        return store.read().iloc[0:0]
    return pd.concat([store.read_shard(path) for path in paths], ignore_index=True)


def run(**options: Any) -> pd.DataFrame:
    """Run a sweep from Python and return its per-layer rows (options as in :class:`SweepOptions`)."""
    known = set(SweepOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ProbesError(f"unknown sweep option(s) {unknown}; known: {sorted(known)}.")
    if "out" in options:
        options["out"] = Path(options["out"])
    for name in ("models", "tasks", "variants"):  # one name is a list of one
        if isinstance(options.get(name), str):
            options[name] = [options[name]]
    store, units = run_sweep(SweepOptions(**options))
    return results_of(store, units)
