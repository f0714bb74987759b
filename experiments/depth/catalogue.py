"""Join the depth ladder's trained rungs into its catalogue and install it as the built-in ladder.

``experiments/depth/train.py`` writes one folder and one ``<rung>.json`` entry per rung under its
``--out``; this joins the entries (shallow to deep, then by seed) into ``catalogue.json`` there
and, with ``--install``, copies catalogue and weights into ``probes/builtin/depth/``.

Example::

    python -m experiments.depth.catalogue depth-out --install
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from experiments.depth.train import MAX_POSITIONS, TASK, vocabulary
from probes.builtin.training import provides_block

#: The built-in ladder folder ``--install`` writes into (catalogue and ``weights/``).
PACKAGE_FOLDER = Path(__file__).resolve().parents[2] / "probes" / "builtin" / "depth"

#: Notes of the ladder in its catalogue's ``provides`` block.
NOTES = (
    "Same width, data stream, curriculum, optimiser and stopping rule for every rung, two seeds per "
    "depth; each rung trained until its curriculum was done or its validation accuracy plateaued (or "
    "its step or time budget ran out: the rung's `stopped` field says which); steps, curve, device "
    "and seconds per rung in probes/builtin/depth/catalogue.json."
)

#: What the ladder is, for its catalogue.
DESCRIPTION = (
    "Depth ladder: GPT-NeoX models of one width that differ only in their number of layers, trained "
    "on pointer chasing over 16 names (follow k arrows around a cycle whose arrows are stated in "
    "shuffled order; k = 1-6), k = 1 and 2 mixed from the first step, then a curriculum over k; "
    "probe = the task's held-out items (true = the node k arrows on, distractor = the node one "
    "arrow short)."
)


def join_catalogue(out: Path) -> dict[str, Any]:
    """The ladder's catalogue from the ``<rung>.json`` entries under ``out``, shallow to deep."""
    entries = [json.loads(path.read_text("utf-8")) for path in sorted(out.glob("depth-*.json"))]
    entries.sort(key=lambda entry: (entry["layers"], entry["seed"]))
    return {
        "description": DESCRIPTION,
        "provides": provides_block(
            "depth",
            DESCRIPTION,
            NOTES,
            entries,
            "experiments/depth/train.py",
            len(vocabulary()),
            MAX_POSITIONS,
            "after_hub",
        ),
        "conventions": {
            "training_flops": "6 * parameters * tokens_seen (total parameters)",
            "training_flops_non_embedding": "6 * non_embedding_parameters * tokens_seen",
            "tokens_seen": "non-padding input tokens over all steps (prompts, follow-ups and answers)",
            "held_out_perplexity": "exp of the mean answer-token cross-entropy on the held-out probe items",
            "accuracy": "per k, last-layer share of held-out probe items whose true answer is the top "
            "option, plain HF forward",
            "training_curve": "every eval_every steps: curriculum level, validation accuracy at that "
            "level (seed 1), probe accuracy per k on the first curve_items probe items of each k",
            "training_seconds": "wall seconds of the rung's training loop (one CPU thread; the GPU, when "
            "`device` names one, shared with the other rungs trained at the same time), summed over runs "
            "resumed from its checkpoint; the final save and evaluation are not counted",
            "training_seconds_total": "the sum of the rungs' training_seconds; rungs trained at the same "
            "time overlap, so it is more than the wall time of the whole ladder",
            "device": "where the rung was trained; GPU training is not bit-reproducible (non-deterministic "
            "attention backward), CPU training is; weights are saved and evaluated on the CPU",
            "stopped": "why training ended: solved (curriculum at the largest k and validation accuracy "
            "at or above advance_at), plateau (no gain of min_gain at the current level for "
            "patience_steps), step budget (steps) or time budget (the run's deadline)",
            "training_config_sha256": "sha256 of the canonical JSON of training_config",
        },
        "tasks": [TASK],
        "vocabulary": len(vocabulary()),
        "context_length": MAX_POSITIONS,
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "training_seconds_total": round(sum(entry["training_seconds"] for entry in entries), 1),
        "rungs": entries,
    }


def install(out: Path, catalogue: dict[str, Any]) -> None:
    """Replace the built-in depth ladder (catalogue and weights) with the rungs trained under ``out``."""
    weights = PACKAGE_FOLDER / "weights"
    if weights.exists():
        shutil.rmtree(weights)
    for entry in catalogue["rungs"]:
        shutil.copytree(out / entry["name"], weights / entry["name"])
    (PACKAGE_FOLDER / "catalogue.json").write_text(json.dumps(catalogue, indent=1) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the trainer's --out folder")
    parser.add_argument(
        "--install",
        action="store_true",
        help="copy the catalogue and the rung folders into probes/builtin/depth/",
    )
    args = parser.parse_args()
    catalogue = join_catalogue(args.out)
    (args.out / "catalogue.json").write_text(json.dumps(catalogue, indent=1) + "\n", "utf-8")
    if args.install:
        install(args.out, catalogue)


if __name__ == "__main__":
    main()
