"""Restamp a built-in ladder's shipped tuned lenses with the current weights fingerprint.

The fingerprint once hashed every parameter the backend held, which under the TransformerLens
bridge includes the split copies it makes of fused weights (GPT-NeoX's qkv as q, k and v), so a
lens stamped under the bridge was refused under ``--backend nnsight``. It now hashes the weights
as loaded (:func:`probes.lenses.tuned.access.model_fingerprint`). This rewrites each shipped lens's
``model_fingerprint`` where it is the old fingerprint of its own rung (and refuses one that is
neither), and the index's file hashes; the lens weights are not touched::

    python experiments/tuned_lens/restamp.py organism
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from probes.builtin.folders import builtin_catalogue, sha256_file  # noqa: E402
from probes.ladders import get_ladder  # noqa: E402
from probes.lenses.tuned.access import legacy_fingerprint, model_fingerprint  # noqa: E402
from probes.lenses.tuned.artifacts import INFO_FILE, WEIGHTS_FILE  # noqa: E402
from probes.lenses.tuned.shipped import INDEX_FILE, LENS_FOLDER  # noqa: E402
from probes.model.loading import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ladder", help="A built-in ladder, e.g. organism.")
    args = parser.parse_args()
    catalogue = builtin_catalogue(args.ladder)
    index_path = Path(catalogue.folder) / INDEX_FILE
    index = json.loads(index_path.read_text())
    for spec in map(str, get_ladder(args.ladder).model_specs()):
        name = catalogue.catalogue_name(spec)
        folder = Path(catalogue.folder) / LENS_FOLDER / name
        info = json.loads((folder / INFO_FILE).read_text())
        model = load_model(spec)
        current, legacy = model_fingerprint(model), legacy_fingerprint(model)
        if info["model_fingerprint"] == current:
            print(f"{spec}: already current")
            continue
        if info["model_fingerprint"] != legacy:
            raise SystemExit(
                f"{folder}: its fingerprint is not {spec}'s, old or new; retrain it with ship.py"
            )
        info["model_fingerprint"] = current
        (folder / INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        index["lenses"][name]["files"] = {f: sha256_file(folder / f) for f in (INFO_FILE, WEIGHTS_FILE)}
        print(f"{spec}: restamped {legacy[:12]} -> {current[:12]}")
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
