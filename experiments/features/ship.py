"""Train sparse autoencoders for a built-in ladder's rungs with SAELens and ship them in the package.

One TopK SAE per rung and residual layer after each block (layers 1 … n_layers), trained on the
rung's own samples (:mod:`probes.features.training`), one CPU thread, seeded. Each goes to
``<ladder folder>/saes/<rung>/layer-<L>/`` (SAELens's ``cfg.json`` and ``sae_weights.safetensors``,
probes' ``quality.json``); their sha256 and quality figures go to ``<ladder folder>/saes.json``,
which :mod:`probes.features.sources` verifies before handing an SAE out::

    python -m experiments.features.ship organism
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from probes.builtin.folders import builtin_catalogue, sha256_file
from probes.features.sources import CONFIG_FILE, INDEX_FILE, SAE_FOLDER, WEIGHTS_FILE
from probes.features.training import QUALITY_FILE, SAETraining, train_saes
from probes.ladders import get_ladder
from probes.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ladder", help="A built-in ladder, e.g. organism.")
    parser.add_argument("--steps", type=int, default=SAETraining.steps)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = SAETraining(steps=args.steps, seed=args.seed)
    catalogue = builtin_catalogue(args.ladder)
    root = Path(catalogue.folder)
    index: dict = {
        "description": (
            "Sparse autoencoders shipped with the rungs: saes/<rung>/layer-<L>/ in SAELens's format "
            "(cfg.json, sae_weights.safetensors) with quality.json; trained by experiments/features/ship.py "
            "(SAELens's SAETrainer on the rung's own samples)."
        ),
        "settings": asdict(settings),
        "saes": {},
    }
    shutil.rmtree(root / SAE_FOLDER, ignore_errors=True)
    for spec in get_ladder(args.ladder).model_specs():
        model = load_model(str(spec))
        name = catalogue.catalogue_name(str(spec))
        started = time.perf_counter()
        layers = list(range(1, model.n_layers + 1))
        qualities = train_saes(model, layers, root / SAE_FOLDER / name, settings)
        entries = {}
        for quality in qualities:
            folder = root / SAE_FOLDER / name / f"layer-{quality.layer}"
            files = {f: sha256_file(folder / f) for f in (CONFIG_FILE, WEIGHTS_FILE, QUALITY_FILE)}
            entries[str(quality.layer)] = {"files": files, "quality": asdict(quality)}
            print(
                f"{name} layer {quality.layer}: FVE {quality.fve:.3f}, L0 {quality.l0:.1f}, "
                f"dead {quality.dead}/{quality.d_sae}, CE {quality.ce_clean:.3f} -> {quality.ce_spliced:.3f} "
                f"(zero {quality.ce_zero:.2f}), loss recovered {quality.loss_recovered:.3f}"
            )
        index["saes"][name] = entries
        print(f"{name}: {time.perf_counter() - started:.1f} s")
    (root / INDEX_FILE).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"index: {root / INDEX_FILE}")


if __name__ == "__main__":
    main()
