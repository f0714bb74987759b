"""Re-measure a tuned lens's held-out KL per layer, logit vs tuned: over free text, and at the read positions.

For each model (``--models``, or every rung of ``--ladder``) its tuned lens (shipped with a
built-in rung, or from ``--lens-dir``) is loaded, which checks the model's weights fingerprint.
Two divergences from the model's final distribution are measured at every layer under both lenses:

- **over tokens**: held-out windows sampled as `probes lens train` samples them (``--seed 0`` with
  the default sizes gives the very windows the shipped lenses were measured on; another seed gives
  fresh ones from the same source), the KL averaged over every position: what the lens was trained
  to minimise;
- **at the read positions**: per prompt variant of ``--tasks`` (default: the ladder's probe task,
  ``organism_negation`` on the organism ladder, the depth catalogue's task on the depth ladder),
  the KL at each item's last prompt token, the one position a probe reads
  (:func:`probes.lenses.tuned.training.read_position_kl`), its mean with a 95 % percentile
  bootstrap interval over items (1000 resamples, seed 0).

A lens can be close to the output over text yet far from it at the position read: the second
number is the one that bears on what the lens shows about a probe. Prints one table per model and,
with ``--out``, writes every number in long form (model, measure, variant, lens, layer, mean_kl,
low, high, n)::

    python -m experiments.tuned_lens.held_out_kl --out experiments/tuned_lens/read_position_kl.csv
    python -m experiments.tuned_lens.held_out_kl --models organism:4x96 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from probes.builtin.folders import builtin_catalogue
from probes.ladders import get_ladder
from probes.lenses.registry import choose_lens
from probes.lenses.tuned.text import training_windows
from probes.lenses.tuned.training import held_out_kl, read_position_kl
from probes.model.loading import load_model
from probes.tasks import load_items

#: The probe task of each built-in ladder whose catalogue does not name one.
PROBE_TASKS = {"organism": ["organism_negation"]}


def default_tasks(ladder: str, models: list[str] | None) -> list[str]:
    """The ladder's probe task(s), or none when models are given or the ladder names none."""
    if models:
        return []
    if ladder in PROBE_TASKS:
        return PROBE_TASKS[ladder]
    return list(builtin_catalogue(ladder).catalogue().get("tasks", [])) if ladder == "depth" else []


def mean_interval(values: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its 95 % percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(1)
    return float(values.mean()), float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


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
    parser.add_argument("--tasks", nargs="*", default=None, help="Tasks read at their read positions.")
    parser.add_argument("--variants", nargs="+", default=None, help="Prompt variants (default: every one).")
    parser.add_argument("--n-items", type=int, default=None, help="Items per variant (default: the task's).")
    parser.add_argument("--item-seed", type=int, default=0, help="Seed of the items (0: the probe set).")
    parser.add_argument("--out", type=Path, default=None, help="CSV of every number, in long form.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = args.models or [str(spec) for spec in get_ladder(args.ladder).model_specs()]
    tasks = default_tasks(args.ladder, args.models) if args.tasks is None else args.tasks
    items = load_items(tasks, args.variants, args.n_items, args.item_seed) if tasks else []
    variants = list(dict.fromkeys(item.variant for item in items))
    rows = []
    for spec in specs:
        model = load_model(spec)
        lens = choose_lens("tuned", model.name, args.lens_dir).build(model)
        windows = training_windows(
            model, args.train_sequences, args.held_out_sequences, args.sequence_length, args.seed
        )
        tokens = len(windows.held_out) * windows.held_out.shape[1]
        for name, which in (("logit", None), ("tuned", lens)):
            for layer, value in enumerate(held_out_kl(model, which, windows.held_out)):
                rows.append(
                    {"model": model.name, "measure": "tokens", "variant": "", "lens": name, "layer": layer}
                    | {"mean_kl": value, "low": np.nan, "high": np.nan, "n": tokens}
                )
            for variant in variants:
                chosen = [item for item in items if item.variant == variant]
                per_item = read_position_kl(model, which, chosen).numpy()
                for layer in range(model.n_layers + 1):
                    mean, low, high = mean_interval(per_item[:, layer])
                    rows.append(
                        {"model": model.name, "measure": "read", "variant": variant, "lens": name}
                        | {"layer": layer, "mean_kl": mean, "low": low, "high": high, "n": len(chosen)}
                    )
        table = pd.DataFrame([row for row in rows if row["model"] == model.name])
        table["column"] = np.where(
            table["measure"] == "tokens", table["lens"] + " tokens", table["lens"] + " " + table["variant"]
        )
        wide = table.pivot(index="layer", columns="column", values="mean_kl")
        order = [f"{lens_name} {what}" for what in ("tokens", *variants) for lens_name in ("logit", "tuned")]
        print(
            f"\n== {model.name} (lens {lens.weights_hash[:8]}, {len(windows.held_out)} windows, "
            f"seed {args.seed}; read positions: {', '.join(tasks) or 'none'})"
        )
        print(wide[order].to_string(float_format=lambda v: f"{v:.3f}"))
        shipped = lens.info.get("held_out_kl", {}).get("tuned")
        if shipped is not None:
            print(f"tuned KL over tokens when trained: {' '.join(f'{v:.4f}' for v in shipped)}")
    if args.out is not None:
        pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.6g")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
