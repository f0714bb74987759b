"""Train (or take already trained) tuned lenses for a built-in ladder's rungs and ship them in the package.

Each rung's lens goes to ``<ladder folder>/tuned-lenses/<rung>/`` and its files' sha256
into ``<ladder folder>/tuned_lenses.json``, which :mod:`probes.lenses.tuned.shipped` verifies
before handing a lens out. Training is `probes lens train`'s, on the rung's own samples
(the offline default), one CPU thread::

    python -m experiments.tuned_lens.ship organism                 # train and ship
    python -m experiments.tuned_lens.ship organism --trained DIR   # ship lenses trained into DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from probes.builtin.folders import builtin_catalogue, sha256_file
from probes.jobs.lens_training import LensTrainOptions, train_lenses
from probes.ladders import get_ladder
from probes.lenses.tuned.artifacts import INFO_FILE, WEIGHTS_FILE, load_lens
from probes.lenses.tuned.shipped import INDEX_FILE, LENS_FOLDER
from probes.store.store import slug


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ladder", help="A built-in ladder, e.g. organism.")
    parser.add_argument(
        "--trained", type=Path, default=None, help="Folder of lenses from `probes lens train`."
    )
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = [str(spec) for spec in get_ladder(args.ladder).model_specs()]  # organism:<rung>
    trained = args.trained
    if trained is None:
        trained = Path(tempfile.mkdtemp(prefix="lenses-"))
        train_lenses(
            LensTrainOptions(
                models=specs, out=trained, train_steps=args.train_steps, seed=args.seed, threads=1
            )
        )
    catalogue = builtin_catalogue(args.ladder)
    index_path = Path(catalogue.folder) / INDEX_FILE
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"lenses": {}}
    index["description"] = (
        "Tuned lenses shipped with the rungs: tuned-lenses/<rung>/ (lens.json, lens.safetensors); "
        "trained by experiments/tuned_lens/ship.py (probes lens train on the rung's own samples)."
    )
    names = {catalogue.catalogue_name(spec) for spec in specs}
    for stale in sorted(set(index["lenses"]) - names):  # rungs the ladder no longer has
        del index["lenses"][stale]
        shutil.rmtree(Path(catalogue.folder) / LENS_FOLDER / stale, ignore_errors=True)
    for spec in specs:
        source = trained / slug(spec)
        lens = load_lens(source)  # checks the weights against lens.json
        name = catalogue.catalogue_name(spec)
        target = Path(catalogue.folder) / LENS_FOLDER / name
        target.mkdir(parents=True, exist_ok=True)
        for file_name in (INFO_FILE, WEIGHTS_FILE):
            shutil.copyfile(source / file_name, target / file_name)
        index["lenses"][name] = {
            "files": {f: sha256_file(target / f) for f in (INFO_FILE, WEIGHTS_FILE)},
            "held_out_kl": lens.info.get("held_out_kl"),
            "steps": lens.info.get("steps"),
            "tokens_trained": lens.info.get("tokens_trained"),
            "training_seconds": lens.info.get("training_seconds"),
        }
        print(f"{spec}: {target}")
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    print(f"index: {index_path}")


if __name__ == "__main__":
    main()
