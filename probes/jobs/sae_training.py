"""`probes sae train`: train sparse autoencoders per model of a ladder (or per model given) with SAELens.

One TopK SAE per model and residual layer, on the model's own samples by default (or a text
file, or a dataset online), as :mod:`probes.features.training` does for the shipped ones; each
goes to ``OUT/<model>/layer-<L>/`` in SAELens's format with its ``quality.json``.
``probes features --sae OUT`` then reads every model with its own SAEs (each carries its model's
fingerprint). Models are trained one after another in this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from probes.errors import ProbesError
from probes.features.training import SAEQuality, SAETraining
from probes.jobs.options import LadderOptions, LoadOptions
from probes.store.store import slug


@dataclass
class SAETrainOptions(LoadOptions, LadderOptions):
    """What `probes sae train` trains and where it writes (one folder per model under ``out``)."""

    out: Path = field(
        default=Path("probes-saes"),
        metadata={"help": "Folder of SAEs: OUT/<model>/layer-<L>/ (pass it to probes features --sae)."},
    )
    layers: list[int] | None = field(
        default=None,
        metadata={"help": "Residual layers (0 = embeddings, -1 = last); every block's output by default."},
    )
    expansion: int = field(
        default=SAETraining.expansion, metadata={"help": "Features per residual dimension."}
    )
    k: int = field(
        default=SAETraining.k, metadata={"help": "Active features per vector (at most d_model / 4)."}
    )
    train_steps: int = field(default=SAETraining.steps, metadata={"help": "Training steps."})
    train_batch_size: int = field(default=SAETraining.batch_size, metadata={"help": "Vectors per step."})
    lr: float = field(default=SAETraining.lr, metadata={"help": "Learning rate (decays to a tenth)."})
    windows: int = field(default=SAETraining.windows, metadata={"help": "Token windows to train on."})
    held_out_windows: int = field(
        default=SAETraining.held_out_windows, metadata={"help": "Windows held out for the quality figures."}
    )
    window_length: int = field(
        default=SAETraining.window_length,
        metadata={"help": "Tokens per window (at most the model's context)."},
    )
    text: Path | None = field(default=None, metadata={"help": "A UTF-8 text file to train on."})
    dataset: str | None = field(
        default=None, metadata={"help": "A datasets.load_dataset name to train on instead (online)."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the text, the SAE's initialisation and its batches."}
    )
    batch_size: int = field(
        default=64, metadata={"help": "Windows per forward pass when reading the residual stream."}
    )

    def settings(self) -> SAETraining:
        """The training settings these options ask for."""
        return SAETraining(
            expansion=self.expansion, k=self.k, steps=self.train_steps, batch_size=self.train_batch_size,
            lr=self.lr, windows=self.windows, held_out_windows=self.held_out_windows,
            window_length=self.window_length, seed=self.seed,
        )  # fmt: skip


def train_model_saes(options: SAETrainOptions) -> dict[str, list[SAEQuality]]:
    """Train the SAEs of every model the options name; their quality by model name."""
    from probes.features.saelens import sae_lens
    from probes.features.training import train_saes
    from probes.jobs.resources import set_torch_threads
    from probes.jobs.units import load_planned, model_specs
    from probes.jobs.validation import check_options
    from probes.lenses.tuned.text import training_windows

    sae_lens()  # installed, before anything loads
    settings = options.settings()
    if min(settings.expansion, settings.k, settings.steps, settings.batch_size, settings.windows) < 1:
        raise ProbesError(
            "--expansion, --k, --train-steps, --train-batch-size and --windows must be at least 1."
        )
    if settings.held_out_windows < 1 or settings.window_length < 2:
        raise ProbesError("--held-out-windows must be at least 1 and --window-length at least 2.")
    check_options(options)
    models = model_specs(options)
    set_torch_threads()
    found = {}
    for planned in models:
        model = load_planned(planned, options)
        layers = list(range(1, model.n_layers + 1)) if options.layers is None else options.layers
        layers = sorted({layer + model.n_layers + 1 if layer < 0 else layer for layer in layers})
        if not set(layers) <= set(range(model.n_layers + 1)):
            raise ProbesError(
                f"--layers {options.layers}: {model.name} has residual layers 0…{model.n_layers}."
            )
        windows = training_windows(
            model, settings.windows, settings.held_out_windows, settings.window_length, settings.seed,
            text=options.text, dataset=options.dataset,
        )  # fmt: skip
        folder = sae_folder(options.out, model.name)
        found[model.name] = train_saes(model, layers, folder, settings, windows, options.batch_size)
    return found


def sae_folder(out: Path, model_label: str) -> Path:
    """Where the SAEs of one model live in an SAE folder."""
    return Path(out) / slug(model_label)


def quality_table(model: str, qualities: list[SAEQuality], folder: Path) -> str:
    """The quality of one model's SAEs, as `probes sae train` prints it."""
    import pandas as pd

    table = pd.DataFrame([{f.name: getattr(q, f.name) for f in fields(q)} for q in qualities])
    columns = [
        "layer",
        "d_sae",
        "k",
        "fve",
        "l0",
        "dead",
        "ce_clean",
        "ce_spliced",
        "ce_zero",
        "loss_recovered",
    ]
    return (
        f"\n== {model}: SAE quality on held-out windows (FVE, L0, dead features, next-token CE)\n"
        f"{table[columns].to_string(index=False, float_format=lambda v: f'{v:.3f}')}\n"
        f"SAEs: {folder}"
    )
