"""The depth catalogue seen as a ladder: ``depth``, its rungs shallow to deep."""

from __future__ import annotations

from probes.depth_ladder.registry import MODEL_PREFIX, NAME_PREFIX, TRAINER, catalogue, rung_names
from probes.ladders import Ladder
from probes.shipped import shipped_rung

#: Name of the ladder.
DEPTH_LADDER = "depth"

_SOURCE = f"computed by {TRAINER}; probes/depth_ladder/catalogue.json"


def model_spec(name: str) -> str:
    """The model spec that loads the catalogue entry ``name`` (``"depth:3x64"``)."""
    return MODEL_PREFIX + name.removeprefix(NAME_PREFIX)


def depth_ladder() -> Ladder:
    """The depth ladder: one width, data and token count; only the number of layers changes."""
    data = catalogue()
    entries = {entry["name"]: entry for entry in data["rungs"]}
    rungs = [
        shipped_rung(
            entries[name],
            model_spec(name),
            name.removeprefix(NAME_PREFIX),
            data["vocabulary"],
            data["context_length"],
            _SOURCE,
        )
        for name in rung_names()
    ]
    return Ladder(
        name=DEPTH_LADDER,
        description=f"Built-in, offline: {data['description']}",
        family="gpt_neox",
        rungs=rungs,
        notes="Same width, data, order and tokens for every rung; see probes/depth_ladder/catalogue.json.",
    )
