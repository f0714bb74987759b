"""The organism catalogue seen as ladders: one over sizes, one over training steps per checkpointed rung.

``organism`` is the size ladder (the default job). Each rung that was checkpointed during
training also gives a ladder of its own over training steps, ``<rung>-training`` (e.g.
``organism-4x96-training``), whose rungs are the checkpoints and the final weights: "training
checkpoints of one model" is a ladder like any other, so the same sweep, tables and figures
ask whether the U also appears over training.
"""

from __future__ import annotations

from typing import Any

from probes.ladders import Ladder, Rung
from probes.organism.registry import MODEL_PREFIX, catalogue, rung_names
from probes.shipped import shipped_rung

#: Name of the size ladder.
SIZE_LADDER = "organism"

#: Suffix of the training-step ladders' names.
TRAINING_SUFFIX = "-training"

_SOURCE = "computed by experiments/organism/train.py; probes/organism/catalogue.json"


def model_spec(name: str) -> str:
    """The model spec that loads the catalogue entry ``name`` (``"organism:1x32-step300"``)."""
    return MODEL_PREFIX + name.removeprefix("organism-")


def _rung(entry: dict[str, Any], vocabulary: int, context: int) -> Rung:
    display_name = entry["name"].removeprefix("organism-")
    return shipped_rung(entry, model_spec(entry["name"]), display_name, vocabulary, context, _SOURCE)


def organism_ladders() -> list[Ladder]:
    """The size ladder, then one training-step ladder per checkpointed rung."""
    data = catalogue()
    entries = {entry["name"]: entry for entry in data["rungs"]}
    vocabulary = data["world_summary"]["vocabulary"]
    context = 2 * data["rungs"][0]["training_config"]["training"]["sequence_length"]
    description = data["description"]
    sizes = Ladder(
        name=SIZE_LADDER,
        description=f"Built-in, offline: {description}",
        family="gpt_neox",
        rungs=[_rung(entries[name], vocabulary, context) for name in rung_names()],
        notes="Trained with the same data and order for every rung; see catalogue.json for the mix.",
    )
    ladders = [sizes]
    for rung in rung_names():
        steps = sorted((e for e in entries.values() if e["rung"] == rung), key=lambda entry: entry["step"])
        if len(steps) > 1:
            ladders.append(
                Ladder(
                    name=rung + TRAINING_SUFFIX,
                    description=f"Training checkpoints of the built-in {rung} (steps "
                    f"{', '.join(str(e['step']) for e in steps)}).",
                    family="gpt_neox",
                    rungs=[_rung(entry, vocabulary, context) for entry in steps],
                )
            )
    return ladders
