"""The run layer every command shares: options, units of work, fingerprints, manifests, one loop.

A command (``probes run``, ``probes ablate``, ``probes perplexity``, the reasoning-depth study)
is a client of this module. It plans :class:`Unit` s, one per table it will write (a model, a
task, a variant, a kind of table, the lens that reads it and the items), and hands them to
:func:`execute` with a function that computes tables from a loaded model. The loop here

1. parses every model spec once (a bad one fails before any item is built or model loaded),
2. skips units whose shard is already written for the same inputs (their :func:`fingerprint`),
3. loads each model once, only when some unit of it is pending,
4. computes the pending units and writes each table as one shard, atomically, with a
   manifest record (:func:`manifest_record`) of what produced it.

Everything that changes a number (model, items, lens and its weights, layers, dtype, the
command's own settings) goes into the fingerprint; ``--layers -1`` and ``--layers N`` naming
the same layer give the same one.
"""

from __future__ import annotations

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
from tqdm.auto import tqdm

from probes.errors import ProbesError
from probes.models import HookedModel, ModelSpec, load_model, parse_spec
from probes.store import LENS, Store
from probes.tasks import Item
from probes.version import __version__, package_versions

T = TypeVar("T")

#: The built-in ladder and task: the default job.
DEFAULT_LADDER = "organism"
DEFAULT_TASKS = ("organism_negation",)


@dataclass
class LadderOptions:
    """Which models a run covers: explicit specs, or a ladder, optionally at training steps."""

    models: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Model specs (hub id[@revision], folder, .gguf, organism:<rung>); overrides --ladder."
        },
    )
    ladder: str | None = field(
        default=None,
        metadata={
            "help": "A named ladder (see `probes ladders`); the built-in one when no --models are given."
        },
    )
    steps: list[int] | None = field(
        default=None,
        metadata={"help": "Training steps to take each rung at, for ladders with a checkpoint axis."},
    )


@dataclass
class RunOptions(LadderOptions):
    """The options every command that loads models and writes a store shares."""

    out: Path = field(default=Path("probes-results"), metadata={"help": "Folder of the result store."})
    device: str = field(default="cpu", metadata={"help": "Torch device, e.g. cpu, cuda, cuda:1, mps."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype: float32, bfloat16 or float16."})
    batch_size: int = field(
        default=8, metadata={"help": "Sequences per forward pass; lower it when memory runs out."}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace finished shards made from other inputs instead of refusing."},
    )
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})


@dataclass
class ItemOptions(RunOptions):
    """A run over the items of tasks: which tasks, how many items, which seed."""

    tasks: list[str] = field(
        default_factory=lambda: list(DEFAULT_TASKS),
        metadata={"help": "Task names (see `probes tasks`) or item files (.jsonl/.csv)."},
    )
    n_items: int | None = field(
        default=None, metadata={"help": "Items per task and variant; the task's default when omitted."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of item generation and of every random draw."})
    shard: str = field(
        default="0/1", metadata={"help": "i/N: run the i-th of N contiguous slices of the work list."}
    )


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
        kind: Kind of table (:data:`probes.store.LENS` for per-layer lens readouts).
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
        raise ProbesError(f"--shard {shard!r} is not of the form i/N (e.g. 0/4).") from None
    if not 0 <= index < count:
        raise ProbesError(f"--shard {shard!r}: i must be in 0..N-1.")
    return index, count


def my_slice(units: Sequence[T], shard: str) -> list[T]:
    """This process's contiguous slice of the work list (``shard="i/N"``)."""
    index, count = parse_shard(shard)
    return list(units[len(units) * index // count : len(units) * (index + 1) // count])


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


def fingerprint(unit: Unit, dtype: str, n_layers: int | None = None) -> str:
    """Hash of everything that determines a unit's numbers (and nothing else, so adding a task,
    a model or a kind of table to a run resumes it instead of refusing it)."""
    payload: dict[str, Any] = {
        "model": unit.model.label,
        "items": [item.to_dict() for item in unit.items],
        "dtype": dtype,
        **unit.settings,
    }
    if unit.kind == LENS:
        payload["lens"] = unit.lens
        payload["layers"] = canonical_layers(unit.layers, n_layers)
    else:
        payload["kind"] = unit.kind
    if unit.lens_weights is not None:
        payload["lens_weights"] = unit.lens_weights
    if unit.twins:
        payload["twins"] = [twin.to_dict() for twin in unit.twins]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


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
    (its :class:`~probes.specs.ModelSpec` carries ladder and rung); a plain string is looked up.

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


def execute(units: Sequence[Unit], options: RunOptions, compute: Compute, description: str) -> Store:
    """Plan → skip finished → load each model once → compute → write each shard atomically.

    Args:
        units: The units of this process, grouped by model in the order given.
        options: The run's options (store folder, device, dtype, overwrite, progress ...).
        compute: Given a loaded model and its pending units, yields their tables.
        description: The progress bar's label.

    Returns:
        The store the shards were written to.
    """
    store = Store(options.out)
    by_model: dict[str, list[Unit]] = {}
    for unit in units:
        by_model.setdefault(unit.model.text, []).append(unit)
    bar = tqdm(total=len(units), desc=description, disable=not options.progress)
    for model_units in by_model.values():
        planned_model = model_units[0].model
        model: HookedModel | None = None
        n_layers = None
        if any(map(needs_layer_count, model_units)):
            n_layers = catalogue_layers(planned_model)
            if n_layers is None:
                model = load_model(planned_model.spec, device=options.device, dtype=options.dtype)
                n_layers = model.n_layers
        prints = [fingerprint(unit, options.dtype, n_layers) for unit in model_units]
        pending = [
            (unit, print_)
            for unit, print_ in zip(model_units, prints)
            if options.overwrite
            or not store.finished(unit.model.label, unit.task, unit.variant, print_, unit.kind, unit.lens)
        ]
        bar.update(len(model_units) - len(pending))
        if not pending:
            continue
        if model is None:
            model = load_model(planned_model.spec, device=options.device, dtype=options.dtype)
        by_unit = {id(unit): print_ for unit, print_ in pending}
        for output in compute(model, [unit for unit, _ in pending]):
            unit = output.unit
            bar.set_postfix_str(f"{model.name} {unit.task}/{unit.variant}")
            record = manifest_record(
                model, unit.model, unit.task, unit.variant, options,
                fingerprint=by_unit[id(unit)], **output.fields,
            )  # fmt: skip
            if unit.lens_weights is not None:
                record["lens_weights"] = unit.lens_weights
            kind = output.kind or unit.kind
            store.write(output.table, record) if kind == LENS else store.write(output.table, record, kind)
            bar.update(int(output.done))
        del model
    bar.close()
    return store
