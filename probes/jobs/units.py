"""Units of work: the models a run covers and the shards it will write, one :class:`Unit` each.

A command (``probes run``, ``probes ablate``, ``probes perplexity``, ``probes lens train``, the
reasoning-depth study) plans units and hands them to :func:`probes.jobs.runner.execute` with a
:data:`Compute` function that turns a loaded model and its pending units into tables
(:class:`Output`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from probes.errors import InvalidOptionError, ProbesError
from probes.jobs.options import DEFAULT_LADDER, LadderOptions, LoadOptions, RunOptions
from probes.jobs.validation import parse_shard
from probes.model.loading import HookedModel, ModelSpec, load_model, parse_spec
from probes.model.placement import backend_options
from probes.store.store import LENS, Store
from probes.tasks import Item

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


def catalogue_layers(model: PlannedModel) -> int | None:
    """The model's layer count as its ladder's catalogue gives it (None when no ladder has it)."""
    from probes.ladders import get_ladder, ladder_names

    for name in ladder_names():
        rung = get_ladder(name).rung_for(model.text)
        if rung is not None and rung.layers:
            return int(rung.layers)
    return None


def shard_path(store: Store, unit: Unit) -> Path:
    """Where a unit's shard lives in the store (under its lens id: :meth:`Store.lens_shard_path`)."""
    return store.lens_shard_path(
        unit.model.label, unit.task, unit.variant, unit.kind, unit.lens, unit.lens_weights
    )
