"""Re-measure a tuned lens's held-out KL per layer, logit vs tuned, on the current toolkit.

For each model (``--models``, or every rung of ``--ladder``) its tuned lens (shipped with a
built-in rung, or from ``--lens-dir``) is loaded, which checks the model's weights fingerprint;
held-out windows are sampled as `probes lens train` samples them (``--seed 0`` with the default
sizes gives the very windows the shipped lenses were measured on; another seed gives fresh ones
from the same source) and the mean KL from the model's final distribution is measured at every
layer under both lenses. Prints one table per model::

    python -m experiments.tuned_lens.held_out_kl --ladder organism
    python -m experiments.tuned_lens.held_out_kl --models organism:4x96 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from probes.ladders import get_ladder
from probes.lenses.registry import choose_lens
from probes.lenses.tuned.text import training_windows
from probes.lenses.tuned.training import held_out_kl
from probes.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ladder", default="organism")
    parser.add_argument("--models", nargs="+", default=None, help="Model specs instead of a ladder.")
    parser.add_argument("--lens-dir", type=Path, default=None, help="Lenses from `probes lens train`.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sampled windows (0: training's).")
    parser.add_argument("--train-sequences", type=int, default=256, help="As trained (sets the split).")
    parser.add_argument("--held-out-sequences", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = args.models or [str(spec) for spec in get_ladder(args.ladder).model_specs()]
    for spec in specs:
        model = load_model(spec)
        lens = choose_lens("tuned", model.name, args.lens_dir).build(model)
        windows = training_windows(
            model, args.train_sequences, args.held_out_sequences, args.sequence_length, args.seed
        )
        table = pd.DataFrame(
            {
                "logit_kl": held_out_kl(model, None, windows.held_out),
                "tuned_kl": held_out_kl(model, lens, windows.held_out),
            }
        )
        table.index.name = "layer"
        shipped = lens.info.get("held_out_kl", {}).get("tuned")
        print(
            f"\n== {model.name} (lens {lens.weights_hash[:8]}, "
            f"{len(windows.held_out)} windows, seed {args.seed})"
        )
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
        if shipped is not None:
            print(f"tuned KL when trained: {' '.join(f'{v:.4f}' for v in shipped)}")


if __name__ == "__main__":
    main()
