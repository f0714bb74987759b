"""Sweeps: ladder × tasks × variants, each item read through a lens at every layer, into a store.

The unit of work and of storage is one (model, task, variant) shard. A re-run
skips finished shards (and does not even load a model whose shards are all
done); ``shard="i/N"`` gives process ``i`` a contiguous slice of the work list,
so N independent processes (a SLURM array, Ray tasks) fill one store.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from probes.cot import MAX_NEW_TOKENS, write_rationales
from probes.errors import ProbesError
from probes.lens import LogitLens, read_options
from probes.metrics import layer_table
from probes.models import HookedModel, load_model, parse_spec
from probes.store import Store
from probes.tasks import Item, load_items
from probes.tasks.variants import needs_rationale
from probes.version import __version__, package_versions

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
class SweepOptions(LadderOptions):
    """What a sweep runs and where it writes."""

    tasks: list[str] = field(
        default_factory=lambda: list(DEFAULT_TASKS),
        metadata={"help": "Task names (see `probes tasks`) or item files (.jsonl/.csv)."},
    )
    variants: list[str] | None = field(
        default=None, metadata={"help": "Prompt variants to run; every variant a task offers by default."}
    )
    n_items: int | None = field(
        default=None, metadata={"help": "Items per task and variant; the task's default when omitted."}
    )
    layers: list[int] | None = field(
        default=None, metadata={"help": "Layers to read (0 = embeddings, -1 = last); all by default."}
    )
    out: Path = field(default=Path("probes-results"), metadata={"help": "Folder of the result store."})
    device: str = field(default="cpu", metadata={"help": "Torch device, e.g. cpu, cuda, cuda:1, mps."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype: float32, bfloat16 or float16."})
    batch_size: int = field(
        default=8, metadata={"help": "Sequences per forward pass; lower it when memory runs out."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of item generation and of bootstrap intervals."})
    shard: str = field(
        default="0/1", metadata={"help": "i/N: run the i-th of N contiguous slices of the work list."}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace finished shards made from other inputs instead of refusing."},
    )
    max_new_tokens: int = field(
        default=MAX_NEW_TOKENS,
        metadata={
            "help": "Longest rationale a model may write for a chain-of-thought (cot) item, in tokens."
        },
    )
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})


@dataclass(frozen=True)
class WorkUnit:
    """One shard to compute: a model, a task, a variant and its items."""

    model: str
    task: str
    variant: str
    items: tuple[Item, ...]


def model_specs(options: LadderOptions) -> list[str]:
    """The model specs a sweep covers, smallest rung first."""
    from probes.ladders import get_ladder

    if options.models:
        if options.steps:
            return [f"{m}@step{s}" for m in options.models for s in options.steps]
        return list(options.models)
    return get_ladder(options.ladder or DEFAULT_LADDER).model_specs(steps=options.steps)


def plan(options: SweepOptions) -> list[WorkUnit]:
    """Every (model, task, variant) unit of the sweep, then this process's slice of it."""
    index, count = parse_shard(options.shard)
    specs = model_specs(options)
    for spec in specs:
        parse_spec(spec)  # a bad path fails here, before any item is built or model loaded
    items = load_items(options.tasks, options.variants, options.n_items, options.seed)
    groups: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        groups.setdefault((item.task, item.variant), []).append(item)
    units = [
        WorkUnit(spec, task, variant, tuple(group))
        for spec in specs
        for (task, variant), group in groups.items()
    ]
    return units[len(units) * index // count : len(units) * (index + 1) // count]


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/N"`` as ``(i, N)``, checked."""
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ProbesError(f"--shard {shard!r} is not of the form i/N (e.g. 0/4).") from None
    if not 0 <= index < count:
        raise ProbesError(f"--shard {shard!r}: i must be in 0..N-1.")
    return index, count


def fingerprint(unit: WorkUnit, options: SweepOptions, lens_name: str) -> str:
    """Hash of everything that determines a shard's numbers."""
    payload = {
        "model": parse_spec(unit.model).label,
        "items": [item.to_dict() for item in unit.items],
        "lens": lens_name,
        "layers": options.layers,
        "dtype": options.dtype,
    }
    if any(map(needs_rationale, unit.items)):
        payload["max_new_tokens"] = options.max_new_tokens
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_sweep(options: SweepOptions) -> tuple[Store, list[WorkUnit]]:
    """Run (or resume) a sweep; returns the store and the units this process covered."""
    lens = LogitLens()
    store = Store(options.out)
    units = plan(options)
    by_model: dict[str, list[WorkUnit]] = {}
    for unit in units:
        by_model.setdefault(unit.model, []).append(unit)
    bar = tqdm(total=len(units), desc="shards", disable=not options.progress)
    for spec, model_units in by_model.items():
        pending = [u for u in model_units if not _finished(store, u, options, lens.name)]
        bar.update(len(model_units) - len(pending))
        if not pending:
            continue
        model = load_model(spec, device=options.device, dtype=options.dtype)
        for unit in pending:
            bar.set_postfix_str(f"{model.name} {unit.task}/{unit.variant}")
            items = write_rationales(
                model, unit.items, options.max_new_tokens, options.batch_size, options.progress
            )
            readout = read_options(model, items, lens, options.layers, options.batch_size, options.progress)
            provenance = {
                "model": model.name,
                "revision": model.spec.revision or "",
                "lens": lens.name,
                "toolkit_version": __version__,
            }
            table = layer_table(readout, provenance, model.n_layers)
            store.write(table, _manifest_record(model, unit, options, lens.name))
            bar.update(1)
        del model
    bar.close()
    return store, units


def _finished(store: Store, unit: WorkUnit, options: SweepOptions, lens_name: str) -> bool:
    label = parse_spec(unit.model).label
    if options.overwrite:
        return False
    return store.finished(label, unit.task, unit.variant, fingerprint(unit, options, lens_name))


def _manifest_record(
    model: HookedModel, unit: WorkUnit, options: SweepOptions, lens_name: str
) -> dict[str, Any]:
    return manifest_record(
        model,
        unit.model,
        unit.task,
        unit.variant,
        options,
        fingerprint=fingerprint(unit, options, lens_name),
        n_items=len(unit.items),
        lens=lens_name,
        layers=options.layers,
    )


def manifest_record(
    model: HookedModel, spec: str, task: str, variant: str, options: Any, **fields: Any
) -> dict[str, Any]:
    """What produced one shard: the model and its rung, the task, the options, versions and time.

    ``options`` is the run's options dataclass (its ``seed`` and ``batch_size`` are copied out);
    ``fields`` (a ``fingerprint``, ``n_items`` ...) are added as they are.
    """
    from probes.ladders import rung_metadata

    return {
        **model.describe(),
        **rung_metadata(spec),
        "spec": spec,
        "task": task,
        "variant": variant,
        "seed": options.seed,
        "batch_size": options.batch_size,
        **fields,
        "toolkit_version": __version__,
        "packages": package_versions(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
    }


def results_of(store: Store, units: Sequence[WorkUnit]) -> pd.DataFrame:
    """The store's per-layer rows of just these units."""
    table = store.read()
    keys = {(parse_spec(u.model).label, u.task, u.variant) for u in units}
    mask = [key in keys for key in zip(table["model"], table["task"], table["variant"])]
    return table[mask].reset_index(drop=True)


def run(**options: Any) -> pd.DataFrame:
    """Run a sweep from Python and return its per-layer rows (options as in :class:`SweepOptions`)."""
    known = set(SweepOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ProbesError(f"unknown sweep option(s) {unknown}; known: {sorted(known)}.")
    if "out" in options:
        options["out"] = Path(options["out"])
    store, units = run_sweep(SweepOptions(**options))
    return results_of(store, units)
