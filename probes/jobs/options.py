"""The options every command shares, as dataclasses with a help text per field.

``LadderOptions`` says which models a run covers, ``ExecutorOptions`` where the run's units of
work run (this process, or a Ray cluster), ``LoadOptions`` how each model is loaded (device or
device map, dtype, backend), ``RunOptions`` adds what every command that loads
models and writes a store needs, ``ItemOptions`` what a run over tasks' items needs.
Each command's own options class (:class:`probes.jobs.sweep.SweepOptions`,
:class:`probes.ablate.study.AblateOptions`, :class:`probes.jobs.perplexity.PerplexityOptions`)
extends one of them; the command line turns the fields into flags. No heavy imports here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


#: Executors that run a plan's units: this process one after another, or tasks on a Ray cluster.
EXECUTORS = ("serial", "ray")


@dataclass
class ExecutorOptions:
    """Where a run's units of work run: in this process, or as tasks on a Ray cluster."""

    executor: str = field(
        default="serial",
        metadata={
            "help": "serial (this process, one unit after another) or ray (one Ray task per unit; "
            "pip install 'probes[ray]')."
        },
    )
    address: str | None = field(
        default=None,
        metadata={
            "help": "With --executor ray: the cluster to join (e.g. auto, or HOST:6379 of `ray start "
            "--head`); a local cluster is started when omitted."
        },
    )
    workers: int | None = field(
        default=None,
        metadata={"help": "CPUs of the local Ray cluster started without --address (all by default)."},
    )
    gpu_memory_gib: float | None = field(
        default=None,
        metadata={
            "help": "Memory of each cluster GPU, to size models' GPU shares (default: this machine's "
            "first GPU, else 80)."
        },
    )


@dataclass
class LoadOptions:
    """How each model is loaded: its device (or a device map over several), dtype and backend."""

    device: str = field(default="cpu", metadata={"help": "Torch device, e.g. cpu, cuda, cuda:1, mps."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype: float32, bfloat16 or float16."})
    backend: str = field(
        default="auto",
        metadata={
            "help": "How models are run and read: auto (the bridge where TransformerLens can run the "
            "model, else nnsight, said in one line), bridge (TransformerLens) or nnsight (pip install "
            "'probes[nnsight]'); the numbers agree to float rounding (docs/models.md)."
        },
    )
    device_map: str | None = field(
        default=None,
        metadata={
            "help": "Spread a model over devices as it loads (accelerate): auto, or a JSON map "
            "{module: device}; overrides --device."
        },
    )
    memory_check: bool = field(
        default=True,
        metadata={
            "help": "Refuse a model (or tuned lens) whose config asks for more memory than the device has "
            "free, before allocating it; --no-memory-check loads it anyway."
        },
    )


@dataclass
class RunOptions(LoadOptions, ExecutorOptions, LadderOptions):
    """The options every command that loads models and writes a store shares."""

    out: Path = field(default=Path("probes-results"), metadata={"help": "Folder of the result store."})
    batch_size: int = field(
        default=8, metadata={"help": "Sequences per forward pass; lower it when memory runs out."}
    )
    remote: bool = field(
        default=False,
        metadata={
            "help": "With --backend nnsight: run hub models on NDIF (NDIF_API_KEY from the environment)."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace finished shards made from other inputs instead of refusing."},
    )
    progress: bool = field(
        default=True, metadata={"help": "Show the run's progress bar (items/s, ETA, model and units done)."}
    )
    verbose: bool = field(
        default=False,
        metadata={
            "help": "Let transformers and TransformerLens print their own loading bars, logs and warnings."
        },
    )


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
