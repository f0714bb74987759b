"""`probes lens train`: train a tuned lens per model of a ladder (or per model given) and save it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from probes.jobs.options import ExecutorOptions, LadderOptions, LoadOptions
from probes.jobs.resources import set_torch_threads
from probes.jobs.units import PlannedModel, load_planned, model_specs
from probes.lenses.tuned.artifacts import save_lens
from probes.lenses.tuned.text import training_windows
from probes.lenses.tuned.training import TrainingSettings, train_lens
from probes.store.store import slug


@dataclass
class LensTrainOptions(TrainingSettings, LoadOptions, ExecutorOptions, LadderOptions):
    """What `probes lens train` trains and where it writes (one folder per model under ``out``)."""

    out: Path = field(
        default=Path("probes-lenses"),
        metadata={"help": "Folder of lenses: one subfolder per model (pass it to --lens-dir later)."},
    )
    text: Path | None = field(default=None, metadata={"help": "A UTF-8 text file to train on."})
    dataset: str | None = field(
        default=None,
        metadata={"help": "A datasets.load_dataset name to train on instead (online), e.g. wikitext."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    split: str = field(default="train", metadata={"help": "The dataset's split."})
    column: str = field(default="text", metadata={"help": "The dataset's text column (rows joined)."})
    sequence_length: int = field(
        default=64, metadata={"help": "Tokens per window (at most the model's context)."}
    )
    train_sequences: int = field(default=256, metadata={"help": "Windows to train on."})
    held_out_sequences: int = field(default=32, metadata={"help": "Windows to measure held-out KL on."})
    threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads (default: the CPUs the load leaves free, docs/cpu-threads.md)."},
    )
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})


def lens_folder(out: Path, model_label: str) -> Path:
    """Where the lens of one model lives in a lens folder."""
    return Path(out) / slug(model_label)


def train_lenses(options: LensTrainOptions) -> list[Path]:
    """Train and save a lens for every model the options name; returns their folders.

    With ``--executor ray`` each model's training is one Ray task
    (:func:`probes.jobs.ray_executor.map_models`,
    retried when its worker dies), without the per-model bars.
    """
    from probes.jobs.validation import check_options

    check_options(options)  # device, dtype, backend, device map, executor: before any loading
    models = model_specs(options)  # every spec parsed (and checked) before any loading
    if options.executor == "ray":
        from probes.jobs.ray_executor import map_models

        quiet = dataclasses.replace(options, progress=False)
        return map_models(_TrainOne(quiet), models, options, "lenses")
    return [_TrainOne(options)(planned) for planned in models]


@dataclass(frozen=True)
class _TrainOne:
    """Train and save the lens of one model (a picklable callable, for Ray tasks)."""

    options: LensTrainOptions

    def __call__(self, planned: PlannedModel) -> Path:
        options = self.options
        if options.threads:
            torch.set_num_threads(options.threads)
        else:  # the CPUs other work leaves free, as every computing command (probes.jobs.resources)
            set_torch_threads()
        settings = TrainingSettings(**{k: getattr(options, k) for k in TrainingSettings.__dataclass_fields__})
        model = load_planned(planned, options)
        windows = training_windows(
            model,
            options.train_sequences,
            options.held_out_sequences,
            options.sequence_length,
            options.seed,
            text=options.text,
            dataset=options.dataset,
            dataset_config=options.dataset_config,
            split=options.split,
            column=options.column,
        )
        lens = train_lens(model, windows, settings, progress=options.progress)
        lens.info["spec"] = planned.text
        return save_lens(lens, lens_folder(options.out, model.name))


def held_out_table(folder: Path) -> str:
    """A lens folder's held-out KL per layer under both lenses, as `probes lens train` prints it."""
    import pandas as pd

    from probes.lenses.tuned.artifacts import read_info

    info = read_info(folder)
    kl = info.get("held_out_kl", {})
    table = pd.DataFrame({"logit_kl": kl.get("logit"), "tuned_kl": kl.get("tuned")})
    table.index.name = "layer"
    return (
        f"\n== {info['model']}: held-out KL to the final distribution (nats/token), {info['text']}\n"
        f"{table.to_string(float_format=lambda v: f'{v:.4f}')}\n"
        f"lens: {folder} ({info['training_seconds']} s, {info['tokens_trained']} tokens)"
    )
